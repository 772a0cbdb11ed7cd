//! Everything kept under one queue name: the live incarnation (if any), the tombstones of
//! closed generations, consumer leases and the watchers' notifier. One `Slot` is one lock, so
//! each `Store` method is one locked section on one queue.

use crate::clock::{IdClock, deadline};
use crate::consumers::Consumers;
use crate::queue_state::{QueueState, room_for};
use crate::watch::{Notifier, Signal};
use busmq_core::store::{
    Attachment, ConsumerOp, Entry, MAX_DELAY, Metadata, MetadataOp, PushBatch, QueueSpec, Renewal,
    Restored, ScheduleBatch, Scheduled, check_retention,
};
use busmq_core::{Error, QueueName, Result};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The shortest time a tombstone is kept, whatever the ttl.
const MIN_TOMBSTONE: Duration = Duration::from_secs(10);

/// What an operation on a slot needs besides the slot.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) ids: &'a IdClock,
}

#[derive(Clone, Copy, Debug)]
struct Tombstone {
    generation: u64,
    until: Instant,
}

#[derive(Debug)]
pub(crate) struct Slot {
    /// Set by the sweep when it drops this slot from the map; whoever locks a removed slot
    /// looks the name up again.
    pub(crate) removed: bool,
    live: Option<QueueState>,
    tombstones: Vec<Tombstone>,
    consumers: Consumers,
    notifier: Notifier,
}

impl Slot {
    pub(crate) fn new() -> Self {
        Slot {
            removed: false,
            live: None,
            tombstones: Vec::new(),
            consumers: Consumers::default(),
            notifier: Notifier::new(),
        }
    }

    /// Drops what has expired; every operation calls this first, so an expired queue is never
    /// seen.
    pub(crate) fn refresh(&mut self, now: Instant) {
        if self.live.as_ref().is_some_and(|q| q.is_expired(now)) {
            self.live = None;
            self.consumers.clear();
        }
        self.tombstones.retain(|t| t.until > now);
        self.consumers.prune(now);
    }

    /// Whether the slot holds nothing worth keeping (after [`Slot::refresh`]).
    pub(crate) fn is_idle(&self) -> bool {
        self.live.is_none()
            && self.tombstones.is_empty()
            && self.consumers.is_empty()
            && !self.notifier.has_watchers()
    }

    /// The live incarnation.
    pub(crate) fn live(&mut self) -> Option<&mut QueueState> {
        self.live.as_mut()
    }

    /// Whether a live incarnation exists (after [`Slot::refresh`]).
    pub(crate) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Registered consumers whose lease has not lapsed (after [`Slot::refresh`]).
    pub(crate) fn consumer_count(&self) -> u64 {
        self.consumers.count()
    }

    fn is_closed(&self, generation: u64) -> bool {
        self.tombstones.iter().any(|t| t.generation == generation)
    }

    fn closed_error(queue: &QueueName) -> Error {
        Error::Closed { queue: queue.to_string() }
    }

    /// The live incarnation, created from `spec` with a fresh generation when there is none.
    fn live_or_create(&mut self, spec: &QueueSpec, ctx: &Ctx<'_>) -> Result<&mut QueueState> {
        let state = match self.live.take() {
            Some(state) => state,
            None => {
                check_spec(spec)?;
                QueueState::new(ctx.ids.next(1), *spec, ctx.now)
            }
        };
        Ok(self.live.insert(state))
    }

    pub(crate) fn attach(&mut self, spec: &QueueSpec, ctx: &Ctx<'_>) -> Result<Attachment> {
        let existed = self.live.is_some();
        let queue = self.live_or_create(spec, ctx)?;
        queue.touch(ctx.now);
        Ok(Attachment { existed, spec: queue.spec, generation: queue.generation })
    }

    pub(crate) fn renew(
        &mut self,
        generation: u64,
        spec: &QueueSpec,
        ctx: &Ctx<'_>,
    ) -> Result<Renewal> {
        if self.is_closed(generation) {
            return Ok(Renewal::Closed);
        }
        let queue = self.live_or_create(spec, ctx)?;
        queue.touch(ctx.now);
        if queue.generation == generation {
            Ok(Renewal::Alive)
        } else {
            Ok(Renewal::Recreated { generation: queue.generation, spec: queue.spec })
        }
    }

    pub(crate) fn detach(&mut self, generation: u64, now: Instant) {
        if let Some(queue) = self.live.as_mut().filter(|q| q.generation == generation) {
            queue.touch(now);
        }
    }

    /// Destroys the live incarnation and tombstones both the caller's generation and the one
    /// destroyed, so that nobody holding either recreates a headless queue by pushing.
    pub(crate) fn close(&mut self, generation: Option<u64>, now: Instant) -> bool {
        let destroyed = self.live.take();
        let ttl = destroyed.as_ref().map_or(Duration::ZERO, |q| q.spec.ttl);
        let until = deadline(now, ttl.saturating_mul(2).max(MIN_TOMBSTONE));
        let generations = [generation, destroyed.as_ref().map(|q| q.generation)];
        for generation in generations.into_iter().flatten() {
            self.tombstones.retain(|t| t.generation != generation);
            self.tombstones.push(Tombstone { generation, until });
        }
        self.consumers.clear();
        if destroyed.is_some() || generation.is_some() {
            self.notifier.closed();
        }
        destroyed.is_some()
    }

    pub(crate) fn push(
        &mut self,
        queue: &QueueName,
        batch: &PushBatch<'_>,
        ctx: &Ctx<'_>,
    ) -> Result<u64> {
        let PushBatch { generation, spec, entries, dedupe, .. } = *batch;
        // Typed refusals first, as the Redis store makes them before its script runs.
        for entry in entries {
            entry.check_routing()?;
        }
        check_retention(spec, entries)?;
        if self.is_closed(generation) {
            return Err(Self::closed_error(queue));
        }
        // The live queue's retention too: the caller's spec is its attach's, and that
        // incarnation may have expired since.
        if let Some(state) = self.live.as_ref() {
            check_retention(&state.spec, entries)?;
        }
        if entries.is_empty() {
            return Err(Error::invalid_option("entries", "a push needs at least one entry"));
        }
        // Messages that came due go before this push (SPEC P8: due order among due messages).
        self.promote(ctx);
        if let (Some(d), Some(state)) = (dedupe, self.live.as_mut()) {
            if let Some(id) = state.dedupe.seen(d.key, ctx.now) {
                return Ok(id);
            }
        }
        // Check room before creating anything: a rejected batch writes nothing at all.
        let fits = match self.live.as_mut() {
            Some(state) => state.has_room(entries.len(), ctx.now),
            None => room_for(0, entries.len(), spec.maxsize),
        };
        if !fits {
            let maxsize = self.live.as_ref().map_or(spec.maxsize, |q| q.spec.maxsize);
            return Err(Error::QueueFull {
                queue: queue.to_string(),
                maxsize: maxsize.unwrap_or(0),
            });
        }
        let state = self.live_or_create(spec, ctx)?;
        let first = ctx.ids.next(entries.len() as u64);
        state.append(entries, first, ctx.now);
        if let Some(d) = dedupe {
            state.dedupe.remember(d.key, first, d.window, ctx.now);
        }
        self.notifier.available();
        Ok(first)
    }

    /// Schedules `entry` to come due `delay` from now (SPEC P8); creates the queue if it
    /// vanished, like a push. Watchers are told, so idle consumers learn the new due time.
    pub(crate) fn schedule(
        &mut self,
        queue: &QueueName,
        batch: &ScheduleBatch<'_>,
        ctx: &Ctx<'_>,
    ) -> Result<Scheduled> {
        batch.entry.check_routing()?;
        check_retention(batch.spec, [batch.entry])?;
        if self.is_closed(batch.generation) {
            return Err(Self::closed_error(queue));
        }
        if batch.delay > MAX_DELAY {
            return Err(Error::invalid_option("delay", "a message is delayed by at most 30 days"));
        }
        let state = self.live_or_create(batch.spec, ctx)?;
        check_retention(&state.spec, [batch.entry])?;
        let seq = state.delayed.add(batch.entry.clone(), deadline(ctx.now, batch.delay));
        let scheduled = Scheduled::new(state.generation, seq, 0);
        self.notifier.available();
        Ok(scheduled)
    }

    /// Withdraws a scheduled message of the live incarnation if it still waits.
    pub(crate) fn cancel(&mut self, scheduled: &Scheduled, ctx: &Ctx<'_>) -> bool {
        match self.live.as_mut() {
            Some(state) if state.generation == scheduled.generation() => {
                // A message past its due time counts as delivered, promoted yet or not.
                state.delayed.cancel_waiting(scheduled.seq(), ctx.now)
            }
            _ => false,
        }
    }

    /// Promotes the delayed messages that came due (see [`QueueState::promote`]) and wakes
    /// watchers when there were any.
    pub(crate) fn promote(&mut self, ctx: &Ctx<'_>) {
        let promoted = self.live.as_mut().is_some_and(|q| q.promote(ctx.ids, ctx.now));
        if promoted {
            self.notifier.available();
        }
    }

    /// Puts taken entries back into the caller's generation, each at its id's place; a
    /// generation that was closed or is gone (expired, perhaps created again) gets nothing.
    pub(crate) fn restore(&mut self, generation: u64, entries: &[Entry], now: Instant) -> Restored {
        if self.is_closed(generation) {
            return Restored::Closed;
        }
        let Some(state) = self.live.as_mut().filter(|q| q.generation == generation) else {
            return Restored::Gone;
        };
        if state.restore(entries, now) {
            self.notifier.available();
        }
        Restored::Done
    }

    /// Wakes watchers after messages went back to ready.
    pub(crate) fn notify_available(&self) {
        self.notifier.available();
    }

    pub(crate) fn consumers(
        &mut self,
        queue: &QueueName,
        op: ConsumerOp,
        now: Instant,
    ) -> Result<()> {
        self.consumers.apply(queue, op, now)
    }

    pub(crate) fn metadata(&mut self, queue: &QueueName, op: MetadataOp) -> Result<Metadata> {
        let live = self.live.as_mut();
        Ok(match op {
            MetadataOp::Get(key) => {
                Metadata::Value(live.and_then(|q| q.metadata.get(&key).cloned()))
            }
            MetadataOp::GetAll => Metadata::All(live.map_or_else(Vec::new, |q| {
                q.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            })),
            MetadataOp::Set(pairs) => {
                let Some(q) = live else {
                    return Err(Error::NotAttached { queue: queue.to_string() });
                };
                q.metadata.extend(pairs);
                Metadata::Written
            }
        })
    }

    pub(crate) fn watch(&self) -> watch::Receiver<Signal> {
        self.notifier.subscribe()
    }
}

/// A queue is never created with a spec that would make it expire at once.
fn check_spec(spec: &QueueSpec) -> Result<()> {
    if spec.ttl.is_zero() {
        return Err(Error::invalid_option("ttl", "a queue's ttl must be greater than zero"));
    }
    Ok(())
}
