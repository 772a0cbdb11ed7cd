//! A consumer: a background task takes batches from the store into a small buffer, and the
//! user's `Stream` hands them out one by one. Whatever was taken but not handed out when the
//! consumer stops, is dropped or detaches goes back to the head of the queue (SPEC Q12), or is
//! returned to the store in reliable mode.

use super::dead_letters::DeadLetters;
use super::delivery::{Delivery, Receipt};
use super::lifecycle::{Held, Phase};
use super::options::{ConsumeMode, ConsumeOptions, ReliableOptions, dead_letter_name};
use super::settler::Settler;
use super::{QueueEvent, QueueInner};
use crate::error::{Error, Result};
use crate::store::{ConsumerId, ConsumerKind, ConsumerOp, Entry, Position, Settle, TakeMode};
use busmq_codec::{Codec, CodecError};
use bytes::Bytes;
use futures::Stream;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a consumer registration lives without renewal (for the mixing rule).
const CONSUMER_LEASE: Duration = Duration::from_secs(15);
/// The longest a consumer waits without checking the store (a safety net for lost wake-ups,
/// and how expired reliable deliveries of dead consumers are noticed).
const MAX_IDLE: Duration = Duration::from_secs(5);
/// How long one waiting take may wait in a store that waits natively; a stop cancels it sooner.
const BLOCK_FOR: Duration = Duration::from_secs(1);

#[derive(Default)]
struct PipeState {
    buffer: VecDeque<Entry>,
    errors: VecDeque<Error>,
    handed: u64,
    stop: bool,
    finished: bool,
    waker: Option<Waker>,
}

/// State shared by a consumer's stream and its task.
pub(crate) struct ConsumerShared {
    pub(crate) id: ConsumerId,
    state: Mutex<PipeState>,
    wake_task: Notify,
    /// Cancels a waiting take (see `Store::take_wait`) when consuming stops.
    cancel_wait: Notify,
    done: watch::Sender<bool>,
    max: Option<u64>,
    prefetch: usize,
    settler: Option<Arc<Settler>>,
}

impl fmt::Debug for ConsumerShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerShared").field("id", &self.id).finish_non_exhaustive()
    }
}

impl ConsumerShared {
    /// Asks the task to stop; it returns what it holds and then finishes.
    pub(crate) fn request_stop(&self) {
        self.state.lock().expect("consumer lock").stop = true;
        self.wake_task.notify_one();
        self.cancel_wait.notify_one();
    }

    /// Waits until the task has finished (its messages are back in the store).
    pub(crate) async fn finished(&self) {
        let mut done = self.done.subscribe();
        let _ = done.wait_for(|done| *done).await;
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.lock().expect("consumer lock").finished
    }

    fn stop_requested(&self) -> bool {
        self.state.lock().expect("consumer lock").stop
    }

    /// How many more entries the task should fetch now.
    fn wanted(&self) -> usize {
        let state = self.state.lock().expect("consumer lock");
        if state.stop {
            return 0;
        }
        let buffered = state.buffer.len();
        if buffered > self.prefetch / 2 {
            return 0;
        }
        let room = self.prefetch - buffered;
        match self.max {
            Some(max) => room.min(max.saturating_sub(state.handed + buffered as u64) as usize),
            None => room,
        }
    }

    fn deliver(&self, entries: Vec<Entry>) {
        let mut state = self.state.lock().expect("consumer lock");
        state.buffer.extend(entries);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    fn report(&self, error: Error) {
        let mut state = self.state.lock().expect("consumer lock");
        state.errors.push_back(error);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    fn finish(&self) -> Vec<Entry> {
        let mut state = self.state.lock().expect("consumer lock");
        state.finished = true;
        state.stop = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        state.buffer.drain(..).collect()
    }

    /// Whether consuming ended because `max` deliveries were handed out.
    fn reached_max(&self) -> bool {
        let state = self.state.lock().expect("consumer lock");
        self.max.is_some_and(|max| state.handed >= max)
    }

    fn buffered_ids(&self) -> Vec<(u64, u32)> {
        let state = self.state.lock().expect("consumer lock");
        state.buffer.iter().map(|e| (e.id, e.deliveries)).collect()
    }
}

type Decoder<T> = fn(Codec, &Bytes) -> std::result::Result<T, CodecError>;

/// A stream of deliveries from one queue (SPEC Q10-Q14). It ends when consuming stops: after
/// `max` deliveries, on [`Queue::stop`](crate::Queue::stop), on detach or close, or when the bus
/// disconnects. Dropping it stops consuming; messages it had taken and not yielded go back to
/// the head of the queue.
///
/// Items are `Err` only for messages that do not decode into `T` (SPEC E2: reported with their
/// id, not dropped) and for a consumer that could not start (`MixedConsumers`).
pub struct Consumer<T> {
    shared: Arc<ConsumerShared>,
    queue: Arc<QueueInner>,
    codec: Codec,
    decode: Decoder<T>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.queue.name)
            .field("id", &self.shared.id)
            .finish()
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.shared.request_stop();
    }
}

impl<T> Consumer<T> {
    /// Stops consuming and waits until undelivered messages are back in the queue.
    pub async fn stop(&self) {
        self.shared.request_stop();
        self.shared.finished().await;
    }

    /// This consumer's id in the store.
    pub fn id(&self) -> &str {
        self.shared.id.as_str()
    }
}

impl<T> Stream for Consumer<T> {
    type Item = Result<Delivery<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let entry = {
            let mut state = this.shared.state.lock().expect("consumer lock");
            if let Some(error) = state.errors.pop_front() {
                return Poll::Ready(Some(Err(error)));
            }
            if this.shared.max.is_some_and(|max| state.handed >= max) {
                return Poll::Ready(None);
            }
            match state.buffer.pop_front() {
                Some(entry) => {
                    state.handed += 1;
                    if this.shared.max == Some(state.handed) {
                        state.stop = true;
                        this.shared.wake_task.notify_one();
                    } else if state.buffer.len() <= this.shared.prefetch / 2 {
                        this.shared.wake_task.notify_one();
                    }
                    entry
                }
                None if state.finished => return Poll::Ready(None),
                None => {
                    state.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        this.queue.consumed.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(Some(this.to_delivery(entry)))
    }
}

impl<T> Consumer<T> {
    fn to_delivery(&self, entry: Entry) -> Result<Delivery<T>> {
        let receipt = self
            .shared
            .settler
            .as_ref()
            .map(|s| Receipt::new(s.clone(), entry.id, entry.deliveries));
        match (self.decode)(self.codec, &entry.payload) {
            Ok(body) => Ok(Delivery::new(
                entry.id,
                entry.deliveries,
                body,
                entry.payload,
                entry.dead,
                receipt,
            )),
            Err(source) => {
                // Reliable: the receipt is dropped here, which releases the message so that it
                // is not acknowledged and eventually reaches the dead-letter queue (SPEC E2).
                drop(receipt);
                Err(Error::Decode {
                    target: format!("queue {:?}", self.queue.name.as_str()),
                    id: entry.id,
                    source,
                })
            }
        }
    }
}

fn decode_typed<T: serde::de::DeserializeOwned>(
    codec: Codec,
    payload: &Bytes,
) -> std::result::Result<T, CodecError> {
    codec.decode(payload)
}

fn decode_raw(_codec: Codec, payload: &Bytes) -> std::result::Result<Bytes, CodecError> {
    Ok(payload.clone())
}

/// Starts a consumer on `queue`. Registration happens now when attached (so that
/// `MixedConsumers` is returned here), else when the queue gets attached.
pub(crate) async fn start<T: 'static>(
    queue: &Arc<QueueInner>,
    options: ConsumeOptions,
    decode: Decoder<T>,
) -> Result<Consumer<T>> {
    options.validate(&queue.name)?;
    let kind = match options.mode {
        ConsumeMode::Replay(_) => ConsumerKind::Replaying,
        _ => ConsumerKind::Removing,
    };
    let mut slot = queue.consumer.lock().await;
    // A consumer that was dropped or stopped (or reached its `max`) is still giving back what
    // it holds: wait for it rather than refuse, so that a new consumer starts after the
    // give-back and sees those messages first.
    while let Some(active) = slot.clone().filter(|active| !active.is_finished()) {
        if !active.stop_requested() {
            return Err(Error::AlreadyConsuming { queue: queue.name.to_string() });
        }
        drop(slot);
        active.finished().await;
        slot = queue.consumer.lock().await;
    }
    let phase = *queue.phase.borrow();
    phase.can_consume(&queue.name)?;
    let id = queue.bus.next_consumer_id();
    let registered = if let Phase::Attached(_) = phase {
        queue.bus.ensure_connected()?;
        let op = ConsumerOp::Register { id: id.clone(), kind, lease: CONSUMER_LEASE };
        queue.bus.store.consumers(&queue.name, op).await?;
        true
    } else {
        false
    };
    let settler = match &options.mode {
        ConsumeMode::Reliable(reliable) => Some(make_settler(queue, reliable, &phase)?),
        _ => None,
    };
    let shared = Arc::new(ConsumerShared {
        id,
        state: Mutex::new(PipeState::default()),
        wake_task: Notify::new(),
        cancel_wait: Notify::new(),
        done: watch::Sender::new(false),
        max: options.max,
        prefetch: options.prefetch as usize,
        settler,
    });
    *slot = Some(shared.clone());
    drop(slot);
    if registered {
        queue.emit(QueueEvent::Consuming(true));
    }
    tokio::spawn(run(shared.clone(), queue.clone(), options, kind, registered));
    Ok(Consumer {
        shared,
        queue: queue.clone(),
        codec: queue.bus.config.codec,
        decode,
        _marker: PhantomData,
    })
}

pub(crate) fn typed<T: serde::de::DeserializeOwned>() -> Decoder<T> {
    decode_typed::<T>
}

pub(crate) fn raw() -> Decoder<Bytes> {
    decode_raw
}

fn make_settler(
    queue: &Arc<QueueInner>,
    reliable: &ReliableOptions,
    phase: &Phase,
) -> Result<Arc<Settler>> {
    let dlq = dead_letter_name(&queue.name, reliable)?;
    let ttl = phase.held().map(|h| h.spec.ttl).unwrap_or(Duration::from_secs(30));
    let dead_letters = DeadLetters::new(queue.bus.clone(), queue.name.clone(), dlq, ttl);
    Ok(Settler::new(
        queue.bus.store.clone(),
        queue.name.clone(),
        reliable.visibility_timeout,
        dead_letters,
    ))
}

async fn run(
    shared: Arc<ConsumerShared>,
    queue: Arc<QueueInner>,
    options: ConsumeOptions,
    kind: ConsumerKind,
    registered: bool,
) {
    let mut phase = queue.phase.subscribe();
    let mut closed = false;
    let mut held = match wait_attached(&shared, &mut phase).await {
        Some(held) => held,
        None => {
            closed = matches!(*phase.borrow(), Phase::Closed);
            finish(&shared, &queue, &options, closed, None).await;
            return;
        }
    };
    if !registered {
        let op = ConsumerOp::Register { id: shared.id.clone(), kind, lease: CONSUMER_LEASE };
        if let Err(error) = queue.bus.store.consumers(&queue.name, op).await {
            shared.report(error);
            finish(&shared, &queue, &options, false, None).await;
            return;
        }
        queue.emit(QueueEvent::Consuming(true));
    }
    let mut available = queue.available.subscribe();
    // Where a replaying consumer continues.
    let mut cursor = match options.mode {
        ConsumeMode::Replay(position) => position,
        _ => Position::Start,
    };
    let heartbeat_every = match &options.mode {
        ConsumeMode::Reliable(r) => (r.visibility_timeout / 3).min(MAX_IDLE),
        _ => MAX_IDLE,
    };
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_every, heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // An idle at-most-once consumer on a store that waits natively waits inside the store (one
    // round trip per wake-up instead of a notice and then a take).
    let blocking =
        matches!(options.mode, ConsumeMode::AtMostOnce) && queue.bus.store.waits_natively();
    // Set when a take returned less than it asked for: the queue is drained, so take again only
    // after a notice (or a heartbeat), not each time the stream hands a message out.
    let mut idle = false;
    let mut last_beat = tokio::time::Instant::now();
    let mut failures: u32 = 0;
    loop {
        match *phase.borrow_and_update() {
            Phase::Attached(now) => held = now,
            Phase::Closed => {
                closed = true;
                break;
            }
            _ => break,
        }
        if shared.stop_requested() {
            break;
        }
        let want = shared.wanted();
        if want > 0 && (!idle || blocking) {
            available.borrow_and_update();
            let fetched = if blocking && idle {
                if last_beat.elapsed() >= heartbeat_every {
                    beat(&shared, &queue, kind).await;
                    last_beat = tokio::time::Instant::now();
                }
                wait_and_take(&shared, &queue, want).await
            } else {
                fetch(&shared, &queue, &options, &mut cursor, want).await
            };
            match fetched {
                Ok(got) => {
                    failures = 0;
                    idle = got < want;
                    if !idle || blocking {
                        continue;
                    }
                }
                Err(error) => {
                    if failures == 0 {
                        queue.emit(QueueEvent::Error(error));
                    }
                    failures = failures.saturating_add(1);
                    let pause = crate::util::backoff(
                        failures,
                        Duration::from_millis(20),
                        Duration::from_secs(2),
                    );
                    // The keeper signals `available` when the store is back, so a consumer
                    // in a long backoff resumes at once instead of sleeping on.
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shared.wake_task.notified() => {}
                        _ = phase.changed() => {}
                        changed = available.changed() => {
                            if changed.is_err() {
                                break;
                            }
                        }
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            _ = shared.wake_task.notified() => {}
            changed = available.changed() => {
                if changed.is_err() {
                    break;
                }
                idle = false;
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                beat(&shared, &queue, kind).await;
                idle = false;
            }
        }
    }
    finish(&shared, &queue, &options, closed, Some(held)).await;
}

/// Takes, waiting in the store for messages when none is ready; never abandoned half-way, so
/// whatever the store took reaches the buffer (and goes back to the queue if consuming stops).
async fn wait_and_take(
    shared: &ConsumerShared,
    queue: &Arc<QueueInner>,
    want: usize,
) -> Result<usize> {
    let want = want.min(u32::MAX as usize) as u32;
    let store = &queue.bus.store;
    let taken =
        store.take_wait(&queue.name, &shared.id, want, BLOCK_FOR, &shared.cancel_wait).await?;
    let n = taken.entries.len() + report_foreign(queue, taken.foreign);
    shared.deliver(taken.entries);
    Ok(n)
}

/// Reports entries the store found it did not write (each once: the store moved them aside,
/// or a replaying read names each once) and returns how many, which count as taken: a take
/// of `want` that met some is not a sign that the queue is drained.
fn report_foreign(queue: &QueueInner, foreign: Vec<String>) -> usize {
    let n = foreign.len();
    for detail in foreign {
        queue.emit(QueueEvent::Error(Error::ForeignData { queue: queue.name.to_string(), detail }));
    }
    n
}

/// Waits for the queue to be attached (a consume before attach is deferred, SPEC Q7 test 10).
async fn wait_attached(
    shared: &ConsumerShared,
    phase: &mut watch::Receiver<Phase>,
) -> Option<Held> {
    loop {
        match *phase.borrow_and_update() {
            Phase::Attached(held) => return Some(held),
            Phase::Closed => return None,
            _ => {}
        }
        if shared.stop_requested() {
            return None;
        }
        tokio::select! {
            changed = phase.changed() => changed.ok()?,
            _ = shared.wake_task.notified() => {}
        }
    }
}

async fn fetch(
    shared: &ConsumerShared,
    queue: &Arc<QueueInner>,
    options: &ConsumeOptions,
    cursor: &mut Position,
    want: usize,
) -> Result<usize> {
    let store = &queue.bus.store;
    let want = want.min(u32::MAX as usize) as u32;
    match &options.mode {
        ConsumeMode::AtMostOnce => {
            let taken = store.take(&queue.name, &shared.id, want, TakeMode::AtMostOnce).await?;
            let n = taken.entries.len() + report_foreign(queue, taken.foreign);
            shared.deliver(taken.entries);
            Ok(n)
        }
        ConsumeMode::Reliable(reliable) => {
            let mode = TakeMode::Reliable {
                visibility: reliable.visibility_timeout,
                max_deliveries: reliable.max_deliveries,
            };
            let taken = store.take(&queue.name, &shared.id, want, mode).await?;
            let n = taken.entries.len() + taken.dead.len() + report_foreign(queue, taken.foreign);
            if let Some(settler) = &shared.settler {
                for entry in taken.dead {
                    dead_letter(settler, entry).await;
                }
            }
            shared.deliver(taken.entries);
            Ok(n)
        }
        ConsumeMode::Replay(_) => {
            if *cursor == Position::End {
                let batch = store.read(&queue.name, Position::End, 1).await?;
                *cursor = batch.last_id.map_or(Position::Start, Position::AfterId);
            }
            let batch = store.read(&queue.name, *cursor, want).await?;
            // Not counted: the cursor moves only with entries, so they are no progress.
            report_foreign(queue, batch.foreign);
            if let Some(last) = batch.entries.last() {
                *cursor = Position::AfterId(last.id);
            }
            let n = batch.entries.len();
            shared.deliver(batch.entries);
            Ok(n)
        }
    }
}

/// Moves an entry claimed for dead-lettering to the DLQ, then acknowledges it. On failure it
/// stays pending and is offered again after its visibility timeout.
async fn dead_letter(settler: &Arc<Settler>, entry: Entry) {
    let delivered = entry.deliveries.saturating_sub(1);
    let moved = settler
        .dead_letters
        .push(entry.id, delivered, entry.payload, "max_deliveries".into())
        .await;
    if moved.is_ok() {
        let _ = settler
            .settle_all(vec![Settle::Ack { id: entry.id, delivery: entry.deliveries }])
            .await;
    }
}

/// Periodic work of a running consumer: keep the registration alive and, in reliable mode,
/// extend what it holds.
async fn beat(shared: &ConsumerShared, queue: &Arc<QueueInner>, kind: ConsumerKind) {
    let op = ConsumerOp::Renew { id: shared.id.clone(), kind, lease: CONSUMER_LEASE };
    if let Err(error) = queue.bus.store.consumers(&queue.name, op).await {
        queue.emit(QueueEvent::Error(error));
    }
    let Some(settler) = &shared.settler else {
        return;
    };
    let by = settler.visibility;
    let ops: Vec<Settle> = settler
        .held()
        .into_iter()
        .chain(shared.buffered_ids())
        .map(|(id, delivery)| Settle::Extend { id, delivery, by })
        .collect();
    if !ops.is_empty() {
        if let Err(error) = settler.settle_all(ops).await {
            queue.emit(QueueEvent::Error(error));
        }
    }
}

/// Returns what the consumer holds and unregisters it.
async fn finish(
    shared: &Arc<ConsumerShared>,
    queue: &Arc<QueueInner>,
    options: &ConsumeOptions,
    closed: bool,
    held: Option<Held>,
) {
    let leftover = shared.finish();
    if !closed {
        if let Some(held) = held {
            if let Err(error) = give_back(shared, queue, options, &held, leftover).await {
                queue.emit(QueueEvent::Error(error));
            }
        }
        let op = ConsumerOp::Unregister { id: shared.id.clone() };
        let _ = queue.bus.store.consumers(&queue.name, op).await;
    }
    if let Some(settler) = &shared.settler {
        settler.dead_letters.detach().await;
    }
    {
        let mut slot = queue.consumer.lock().await;
        if slot.as_ref().is_some_and(|active| Arc::ptr_eq(active, shared)) {
            *slot = None;
        }
    }
    // `send` would drop the value when nobody is subscribed yet (a `stop()` that comes later
    // would then wait forever); `send_replace` stores it whoever listens.
    shared.done.send_replace(true);
    queue.emit(QueueEvent::Consuming(false));
}

async fn give_back(
    shared: &ConsumerShared,
    queue: &Arc<QueueInner>,
    options: &ConsumeOptions,
    held: &Held,
    leftover: Vec<Entry>,
) -> Result<()> {
    match &options.mode {
        ConsumeMode::AtMostOnce if !leftover.is_empty() => {
            let mut attempt = 0;
            loop {
                match queue.bus.store.restore(&queue.name, &held.spec, &leftover).await {
                    Ok(()) => return Ok(()),
                    // Retrying a put-back that may have run would deliver its entries twice;
                    // at most once means they are lost instead (and the error is reported).
                    Err(error) if error.is_unapplied() && attempt < 5 => {
                        attempt += 1;
                        tokio::time::sleep(crate::util::backoff(
                            attempt,
                            Duration::from_millis(50),
                            Duration::from_secs(1),
                        ))
                        .await;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        ConsumeMode::Reliable(_) => {
            let Some(settler) = &shared.settler else {
                return Ok(());
            };
            let mut ops: Vec<Settle> = leftover
                .iter()
                .map(|e| Settle::Return { id: e.id, delivery: e.deliveries })
                .collect();
            // Deliveries handed out before `max` was reached stay with their holder, who acks
            // them after the stream ended; a stop, drop or detach gives them back (SPEC Q13).
            if !shared.reached_max() {
                ops.extend(
                    settler
                        .take_held()
                        .into_iter()
                        .map(|(id, delivery)| Settle::Release { id, delivery }),
                );
            }
            if ops.is_empty() {
                return Ok(());
            }
            settler.settle_all(ops).await
        }
        _ => Ok(()),
    }
}
