//! [`MemoryStore`]: one client handle on a [`Memory`], implementing busmq's `Store` trait.

use crate::link::Link;
use crate::memory::Memory;
use crate::slot::{Ctx, Slot};
use crate::watch::notices;
use async_trait::async_trait;
use busmq_core::store::{
    Attachment, BlockingTake, ConsumerOp, Entry, Inspect, Metadata, MetadataOp, Notice, ObjectOp,
    ObjectReply, Position, PushBatch, QueuePage, QueueSpec, QueueStat, ReadBatch, Receipt, Renewal,
    Restored, ScheduleBatch, Scheduled, Session, Settle, Settled, StoreEvent, StoreState, TakeMode,
    Taken, Topics,
};
use busmq_core::{Error, ObjectName, QueueName, Result, Store, TopicName};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::fmt;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};

/// A [`Store`] in process memory. Each store is one client of its [`Memory`] with its own
/// connection state, events and streams; stores made from the same `Memory` share all data.
pub struct MemoryStore {
    memory: Memory,
    link: Link,
}

impl MemoryStore {
    /// A store over its own fresh [`Memory`].
    pub fn new() -> Self {
        MemoryStore::with_memory(Memory::new())
    }

    /// A store over `memory` (same as [`Memory::store`]).
    pub fn with_memory(memory: Memory) -> Self {
        MemoryStore { memory, link: Link::new() }
    }

    /// The data this store works on, to make more stores over it.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }
}

impl Memory {
    /// A new, unconnected store over this data.
    pub fn store(&self) -> MemoryStore {
        MemoryStore::with_memory(self.clone())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

/// Dropping a store disconnects it, so that its subscriptions stop counting as receivers.
impl Drop for MemoryStore {
    fn drop(&mut self) {
        self.link.disconnect(|session| self.memory.shared.topics.end_session(session));
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("state", &*self.link.state().borrow())
            .field("memory", &self.memory)
            .finish()
    }
}

#[async_trait]
impl Session for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn connect(&self) -> Result<StoreState> {
        Ok(self.link.connect(|| self.memory.next_session()))
    }

    async fn disconnect(&self) -> Result<()> {
        self.link.disconnect(|session| self.memory.shared.topics.end_session(session));
        Ok(())
    }

    fn state(&self) -> watch::Receiver<StoreState> {
        self.link.state()
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.link.events()
    }
}

#[async_trait]
impl Topics for MemoryStore {
    async fn publish(&self, topic: &TopicName, payload: Bytes) -> Result<u64> {
        self.link.ensure()?;
        Ok(self.memory.shared.topics.publish(topic, payload))
    }

    async fn subscribe(&self, topic: &TopicName) -> Result<BoxStream<'static, Bytes>> {
        let topics = &self.memory.shared.topics;
        let rx = self.link.within_session(|session| topics.subscribe(topic, session))?;
        Ok(rx.boxed())
    }
}

#[async_trait]
impl BlockingTake for MemoryStore {
    async fn take_wait(
        &self,
        queue: &QueueName,
        max: u32,
        wait: Duration,
        cancel: &Notify,
        _resume: &Receipt,
    ) -> Result<Taken> {
        self.link.ensure()?;
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before the first take, so a push in between wakes the wait.
        let mut signals = self.memory.with_slot(queue, |slot, _| slot.watch());
        loop {
            signals.borrow_and_update();
            let taken = self.take(queue, max, TakeMode::AtMostOnce).await?;
            if !taken.entries.is_empty() {
                return Ok(taken);
            }
            // A delayed message coming due ends the wait too (SPEC P8): it is taken then.
            let due =
                taken.next_due.map(|d| crate::clock::deadline(tokio::time::Instant::now(), d));
            let wake = due.map_or(deadline, |due| due.min(deadline));
            tokio::select! {
                changed = signals.changed() => {
                    if changed.is_err() {
                        return Ok(taken);
                    }
                }
                _ = cancel.notified() => return Ok(taken),
                _ = tokio::time::sleep_until(wake) => {
                    if wake >= deadline {
                        return Ok(taken);
                    }
                }
            }
        }
    }
}

/// The cursor of a listing is `>` and the last name of the previous page: names come in order.
#[async_trait]
impl Inspect for MemoryStore {
    async fn list_queues(&self, cursor: Option<&str>, count: u32) -> Result<QueuePage> {
        self.link.ensure()?;
        let after = match cursor {
            None => None,
            Some(cursor) => Some(cursor.strip_prefix('>').ok_or_else(|| {
                Error::invalid_option(
                    "cursor",
                    format!("{cursor:?} is not a cursor this store gave"),
                )
            })?),
        };
        let (queues, more) = self.memory.live_queues(after, count.max(1) as usize);
        let next = match queues.last() {
            Some(last) if more => Some(format!(">{last}")),
            // Every live queue after the cursor was looked at.
            _ => None,
        };
        Ok(QueuePage { queues, next })
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn blocking(&self) -> Option<&dyn BlockingTake> {
        Some(self)
    }

    fn inspect(&self) -> Option<&dyn Inspect> {
        Some(self)
    }

    async fn attach(&self, queue: &QueueName, spec: &QueueSpec) -> Result<Attachment> {
        self.link.ensure()?;
        self.memory.with_slot(queue, |slot, ctx| slot.attach(spec, ctx))
    }

    async fn renew(&self, queue: &QueueName, generation: u64, spec: &QueueSpec) -> Result<Renewal> {
        self.link.ensure()?;
        self.memory.with_slot(queue, |slot, ctx| slot.renew(generation, spec, ctx))
    }

    async fn detach(&self, queue: &QueueName, generation: u64) -> Result<()> {
        self.link.ensure()?;
        self.memory.with_existing(queue, |slot, ctx| slot.detach(generation, ctx.now));
        Ok(())
    }

    async fn close(&self, queue: &QueueName, generation: Option<u64>) -> Result<bool> {
        self.link.ensure()?;
        let close = |slot: &mut Slot, ctx: &Ctx<'_>| slot.close(generation, ctx.now);
        // A tombstone for a given generation needs a slot even when the queue is gone.
        Ok(match generation {
            Some(_) => self.memory.with_slot(queue, close),
            None => self.memory.with_existing(queue, close).unwrap_or(false),
        })
    }

    async fn push(&self, queue: &QueueName, batch: &PushBatch<'_>) -> Result<u64> {
        self.link.ensure()?;
        self.memory.with_slot(queue, |slot, ctx| slot.push(queue, batch, ctx))
    }

    async fn schedule(&self, queue: &QueueName, batch: &ScheduleBatch<'_>) -> Result<Scheduled> {
        self.link.ensure()?;
        let scheduled =
            self.memory.with_slot(queue, |slot, ctx| slot.schedule(queue, batch, ctx))?;
        // Watchers are woken when it comes due, like the Redis store's consumers are by their
        // next take.
        let due = crate::clock::deadline(tokio::time::Instant::now(), batch.delay);
        self.memory.promote_at(queue, due);
        Ok(scheduled)
    }

    async fn cancel(&self, queue: &QueueName, scheduled: &Scheduled) -> Result<bool> {
        self.link.ensure()?;
        let cancelled = self.memory.with_existing(queue, |slot, ctx| slot.cancel(scheduled, ctx));
        Ok(cancelled.unwrap_or(false))
    }

    async fn take(&self, queue: &QueueName, max: u32, mode: TakeMode) -> Result<Taken> {
        self.link.ensure()?;
        let taken = self.memory.with_existing(queue, |slot, ctx| {
            slot.promote(ctx);
            let Some(q) = slot.live() else { return Taken::default() };
            let taken = q.take(max, mode, ctx.now);
            if q.passed_gates() {
                slot.notify_available();
            }
            taken
        });
        Ok(taken.unwrap_or_default())
    }

    async fn restore(
        &self,
        queue: &QueueName,
        generation: u64,
        entries: &[Entry],
    ) -> Result<Restored> {
        self.link.ensure()?;
        if entries.is_empty() {
            return Ok(Restored::Done);
        }
        let restored = self
            .memory
            .with_existing(queue, |slot, ctx| slot.restore(generation, entries, ctx.now));
        Ok(restored.unwrap_or(Restored::Gone))
    }

    async fn settle(&self, queue: &QueueName, ops: &[Settle]) -> Result<Vec<Settled>> {
        self.link.ensure()?;
        let outcomes = self.memory.with_existing(queue, |slot, ctx| {
            let (outcomes, returned) = slot.live()?.settle(ops, ctx.now);
            if returned {
                slot.notify_available();
            }
            Some(outcomes)
        });
        Ok(outcomes.flatten().unwrap_or_else(|| vec![Settled::Stale; ops.len()]))
    }

    async fn read(&self, queue: &QueueName, from: Position, max: u32) -> Result<ReadBatch> {
        self.link.ensure()?;
        let batch = self.memory.with_existing(queue, |slot, ctx| {
            slot.promote(ctx);
            slot.live().map(|q| q.read(from, max, ctx.now)).unwrap_or_default()
        });
        Ok(batch.unwrap_or_default())
    }

    async fn consumers(&self, queue: &QueueName, op: ConsumerOp) -> Result<()> {
        self.link.ensure()?;
        match op {
            ConsumerOp::Unregister { .. } => {
                let outcome = self
                    .memory
                    .with_existing(queue, |slot, ctx| slot.consumers(queue, op, ctx.now));
                outcome.unwrap_or(Ok(()))
            }
            _ => self.memory.with_slot(queue, |slot, ctx| slot.consumers(queue, op, ctx.now)),
        }
    }

    async fn stat(&self, queue: &QueueName) -> Result<QueueStat> {
        self.link.ensure()?;
        let stat = self.memory.with_existing(queue, |slot, ctx| {
            slot.promote(ctx);
            let consumers = slot.consumer_count();
            let stat = slot.live().map(|q| q.stat(ctx.now));
            stat.map(|stat| QueueStat { consumers, ..stat }).unwrap_or_default()
        });
        Ok(stat.unwrap_or_default())
    }

    async fn flush(&self, queue: &QueueName) -> Result<()> {
        self.link.ensure()?;
        self.memory.with_existing(queue, |slot, _| {
            if let Some(q) = slot.live() {
                q.flush();
            }
        });
        Ok(())
    }

    async fn metadata(&self, queue: &QueueName, op: MetadataOp) -> Result<Metadata> {
        self.link.ensure()?;
        let missing = match &op {
            MetadataOp::Get(_) => Ok(Metadata::Value(None)),
            MetadataOp::GetAll => Ok(Metadata::All(Vec::new())),
            MetadataOp::Set(_) => Err(Error::NotAttached { queue: queue.to_string() }),
        };
        let outcome = self.memory.with_existing(queue, move |slot, _| slot.metadata(queue, op));
        outcome.unwrap_or(missing)
    }

    async fn watch(&self, queue: &QueueName) -> Result<BoxStream<'static, Notice>> {
        // The epoch first: a disconnect after this point ends the stream.
        let (epoch, started) = self.link.epoch()?;
        let signals = self.memory.with_slot(queue, |slot, _| slot.watch());
        Ok(notices(signals, epoch, started))
    }

    async fn object(&self, object: &ObjectName, op: ObjectOp) -> Result<ObjectReply> {
        self.link.ensure()?;
        self.memory.object(object, op)
    }
}
