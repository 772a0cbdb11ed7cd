//! Settlement of reliable deliveries: acks, releases and extensions from many deliveries are
//! coalesced into one store call (acks are batched, DESIGN "Batching"), and the set of
//! deliveries a consumer holds is tracked so it can extend or release them (and counted in
//! the `busmq_in_flight` gauge).

use super::coalesce::{Coalescer, Start};
use super::due::DueTimes;
use super::retry::RetryPolicy;
use crate::context::BusInner;
use crate::error::{Error, Result};
use crate::id_map::IdMap;
use crate::name::QueueName;
use crate::observability::ConsumerMetrics;
use crate::store::{NewEntry, Receipt, Settle, Settled, Settlement, StoreHandle};
use crate::util::lock;
use futures::future::BoxFuture;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::Instrument;

type Waiter = Option<oneshot::Sender<Result<Settled>>>;

/// The longest a stopping consumer waits for settlements nobody awaits (see
/// [`Settler::drained`]): a stop stays prompt when the store is away.
const DRAIN_AT_MOST: Duration = Duration::from_secs(5);

/// Where a reliable consumer's dead letters go: its dead-letter queue (`dead_letters.rs`,
/// which works through a queue handle; this trait keeps the settler below the handle).
pub(crate) trait DeadLetterSink: Send + Sync {
    /// Pushes `message` (its payload and headers) with why it is dead; the caller acknowledges
    /// it only afterwards.
    fn push(
        &self,
        id: u64,
        deliveries: u32,
        message: NewEntry,
        reason: String,
    ) -> BoxFuture<'_, Result<()>>;

    /// Lets the dead-letter queue go when the consumer ends.
    fn detach(&self) -> BoxFuture<'_, ()>;

    /// The dead-letter queue's name (for logs).
    fn name(&self) -> &str;
}

/// Makes the dead-letter sink of a consumer of `source`: (bus, source, dead-letter queue, ttl).
pub(crate) type DeadLetterFactory =
    fn(Arc<BusInner>, QueueName, QueueName, Duration) -> Box<dyn DeadLetterSink>;

/// Most settlements per store call.
const BATCH: usize = 1024;

/// Settles the reliable deliveries of one consumer.
pub(crate) struct Settler {
    pub(crate) store: StoreHandle,
    pub(crate) queue: QueueName,
    pub(crate) visibility: Duration,
    pub(crate) dead_letters: Box<dyn DeadLetterSink>,
    pub(crate) metrics: Arc<ConsumerMetrics>,
    /// When unprocessed deliveries come back (SPEC P9).
    pub(crate) retry: RetryPolicy,
    /// Deliveries after which a message is dead-lettered.
    pub(crate) max_deliveries: u32,
    /// When this consumer's delayed releases come due (its task takes again then).
    pub(crate) due: DueTimes,
    /// Held by delayed releases while they unhold (shared) and by the heartbeat's extension of
    /// held deliveries across its store call (exclusive), so that an extension to the
    /// visibility timeout that read a delivery as held never lands after its delayed release
    /// and undoes the delay.
    pub(crate) extending: tokio::sync::RwLock<()>,
    pending: Coalescer<(Settle, Waiter)>,
    /// Deliveries handed to user code and not yet settled: id -> (delivery number, receipt).
    held: Mutex<IdMap<(u32, Receipt)>>,
}

impl fmt::Debug for Settler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settler").field("queue", &self.queue).finish_non_exhaustive()
    }
}

impl Settler {
    pub(crate) fn new(
        store: StoreHandle,
        queue: QueueName,
        visibility: Duration,
        dead_letters: Box<dyn DeadLetterSink>,
        metrics: Arc<ConsumerMetrics>,
        retry: RetryPolicy,
        max_deliveries: u32,
    ) -> Arc<Self> {
        Arc::new(Settler {
            store,
            queue,
            visibility,
            dead_letters,
            metrics,
            retry,
            max_deliveries,
            due: DueTimes::default(),
            extending: tokio::sync::RwLock::new(()),
            pending: Coalescer::new(),
            held: Mutex::new(IdMap::default()),
        })
    }

    pub(crate) fn hold(&self, id: u64, delivery: u32, receipt: &Receipt) {
        if lock(&self.held).insert(id, (delivery, receipt.clone())).is_none() {
            self.metrics.in_flight(1);
        }
    }

    fn unhold(&self, id: u64, delivery: u32) {
        if let Entry::Occupied(held) = lock(&self.held).entry(id)
            && held.get().0 == delivery
        {
            held.remove();
            self.metrics.in_flight(-1);
        }
    }

    /// Every delivery currently held by user code, as settlements of `action`.
    pub(crate) fn held(&self, action: Settlement) -> Vec<Settle> {
        lock(&self.held)
            .iter()
            .map(|(id, (delivery, receipt))| Settle {
                id: *id,
                delivery: *delivery,
                receipt: receipt.clone(),
                action,
            })
            .collect()
    }

    /// Forgets every held delivery (the consumer stopped) and returns them as settlements of
    /// `action`.
    pub(crate) fn take_held(&self, action: Settlement) -> Vec<Settle> {
        let held: Vec<Settle> = lock(&self.held)
            .drain()
            .map(|(id, (delivery, receipt))| Settle { id, delivery, receipt, action })
            .collect();
        self.metrics.in_flight(-(held.len() as i64));
        held
    }

    /// Settles one delivery and waits for the store's answer.
    pub(crate) async fn settle(self: &Arc<Self>, op: Settle) -> Result<()> {
        let (id, delivery) = (op.id, op.delivery);
        let finishes = !matches!(op.action, Settlement::Extend(_));
        if finishes {
            // Unheld before it is sent: a consumer that stops while this ack waits out a
            // reconnect must not give the delivery back over it (a duplicate), and whatever
            // the outcome, the delivery is no longer this consumer's to extend. Unheld and
            // queued with no await in between, so a caller that stops waiting (a timeout, a
            // select) still sends it. Not ordered with the heartbeat: an extension that read
            // the delivery as held and lands after this settlement finds it settled (stale,
            // no effect); only `release_after`, which is itself an extension, needs the order.
            self.unhold(id, delivery);
        }
        let (tx, rx) = oneshot::channel();
        self.enqueue(op, Some(tx));
        let outcome = rx.await.unwrap_or_else(|_| {
            Err(Error::Shutdown { operation: "settle", queue: self.queue.to_string() })
        });
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                self.metrics.error(&error);
                // The settlement may not have happened. A delivery whose ack, nack or return
                // failed was unheld above: it comes back after its visibility timeout instead
                // of staying held (and renewed) for ever. A failed extension changes nothing:
                // the delivery is still held.
                return Err(error);
            }
        };
        match outcome {
            Settled::Done => Ok(()),
            Settled::Stale => {
                self.unhold(id, delivery);
                let error = Error::StaleDelivery { queue: self.queue.to_string(), id, delivery };
                self.metrics.error(&error);
                Err(error)
            }
        }
    }

    /// Gives a delivery back after `delay` (SPEC P9): its visibility deadline becomes
    /// `now + delay` and the consumer stops holding (and extending) it, so that it comes back
    /// to any consumer once the deadline passes, with its delivery count. Unheld before the
    /// store call, and ordered with the heartbeat's extensions (`extending`): an extension
    /// that read it as held has landed before it is unheld, and later ones do not see it. The
    /// lock is not held across this release's own store call, so a slow store delays only the
    /// release, never the heartbeat that keeps the other held deliveries visible.
    pub(crate) async fn release_after(
        self: &Arc<Self>,
        id: u64,
        delivery: u32,
        receipt: Receipt,
        delay: Duration,
    ) -> Result<()> {
        {
            let _ordered = self.extending.read().await;
            self.unhold(id, delivery);
        }
        let op = Settle { id, delivery, receipt, action: Settlement::Extend(delay) };
        self.settle(op).await?;
        self.due.add(delay);
        Ok(())
    }

    /// Settles without waiting (a dropped delivery is released this way).
    pub(crate) fn settle_later(self: &Arc<Self>, op: Settle) {
        self.unhold(op.id, op.delivery);
        self.enqueue(op, None);
    }

    /// Waits, for at most [`DRAIN_AT_MOST`] (and half the visibility timeout), until the
    /// settlements queued so far were sent: a stopping consumer lets acknowledgements nobody
    /// awaits (after a dead-letter move, for a dropped delivery) ride out a blip before it
    /// reports itself stopped, so that a process that exits after the stop does not lose
    /// them. Past the bound they go on in the background.
    pub(crate) async fn drained(&self) {
        let bound = (self.visibility / 2).min(DRAIN_AT_MOST);
        let _ = tokio::time::timeout(bound, self.pending.drained()).await;
    }

    /// Hands `op` to the settling worker without waiting for its outcome: it is batched and
    /// retried through blips like any settlement, and a failure is left to the visibility
    /// timeout. For acknowledgements whose caller must not stall (a consumer's take loop).
    pub(crate) fn settle_detached(self: &Arc<Self>, op: Settle) {
        self.enqueue(op, None);
    }

    /// Settles `ops` once, without retrying: for the heartbeat's extensions (which hold the
    /// ordering lock) and a stopping consumer's give-back (which must not delay the stop); what
    /// fails comes back after the visibility timeout. Returns the store's answers, in order
    /// (a consumer's confirmation of its buffered entries reads them: see `consumer/pipe.rs`).
    pub(crate) async fn settle_all(&self, ops: &[Settle]) -> Result<Vec<Settled>> {
        let mut outcomes = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(BATCH) {
            let span = self.span(chunk.len());
            let answered = self.store.settle(&self.queue, chunk).instrument(span).await?;
            outcomes.extend(self.one_each(chunk, answered)?);
        }
        Ok(outcomes)
    }

    /// The store's answers, checked against the contract (one per settlement, in order): the
    /// callers pair them with their settlements, and a store that answered for fewer or more
    /// would mark the wrong deliveries done or stale.
    fn one_each(&self, ops: &[Settle], outcomes: Vec<Settled>) -> Result<Vec<Settled>> {
        if outcomes.len() == ops.len() {
            return Ok(outcomes);
        }
        Err(Error::Store {
            backend: self.store.backend(),
            operation: "settle",
            message: format!("{} answers for {} settlements", outcomes.len(), ops.len()),
            retryable: false,
            source: None,
        })
    }

    fn span(&self, settlements: usize) -> tracing::Span {
        tracing::trace_span!("settle", queue = self.queue.as_str(), settlements)
    }

    fn enqueue(self: &Arc<Self>, op: Settle, waiter: Waiter) {
        if tokio::runtime::Handle::try_current().is_err() {
            // Dropped outside a runtime: the delivery comes back after its visibility timeout.
            return;
        }
        let never_refused = |_: &_| Ok::<(), std::convert::Infallible>(());
        if let Ok(Start::Worker) = self.pending.push((op, waiter), never_refused) {
            tokio::spawn(self.clone().run());
        }
    }

    /// Settles `ops`, retrying while the store answers that it did not run the call
    /// (`Error::is_unapplied`: offline, reconnecting, a retryable refusal), with backoff, for up
    /// to half the visibility timeout: an ack made while the connection is re-established
    /// lands instead of failing and letting the message come again (a duplicate). Past that
    /// the deliveries are about to be given to others anyway, and the error is returned.
    async fn settle_through_blips(&self, ops: &[Settle]) -> Result<Vec<Settled>> {
        // A visibility timeout too long for the clock: retried for as long as it takes.
        let give_up = tokio::time::Instant::now().checked_add(self.visibility / 2);
        let mut pause = Duration::from_millis(20);
        loop {
            let span = self.span(ops.len());
            match self.store.settle(&self.queue, ops).instrument(span).await {
                Err(e)
                    if e.is_unapplied()
                        && give_up.is_none_or(|at| tokio::time::Instant::now() + pause < at) =>
                {
                    tracing::debug!(queue = self.queue.as_str(), error = %e, "settling again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                other => return other.and_then(|outcomes| self.one_each(ops, outcomes)),
            }
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let mut counted = 0;
            let Some(batch) = self.pending.next_batch(|_| {
                counted += 1;
                counted <= BATCH
            }) else {
                return;
            };
            let (ops, waiters): (Vec<Settle>, Vec<Waiter>) = batch.into_iter().unzip();
            match self.settle_through_blips(&ops).await {
                Ok(outcomes) => {
                    for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                        if let Some(tx) = waiter {
                            let _ = tx.send(Ok(outcome));
                        }
                    }
                }
                Err(error) => {
                    // Settlements nobody awaits (a dropped delivery's release, the ack after a
                    // dead-letter move) have no caller to tell: logged and counted here. They
                    // come back after their visibility timeout.
                    let unawaited = waiters.iter().filter(|w| w.is_none()).count();
                    if unawaited > 0 {
                        crate::observability::log_error(
                            "settlements nobody awaits failed; their messages come back after \
                             their visibility timeout",
                            Some(self.queue.as_str()),
                            &error,
                        );
                        self.metrics.error(&error);
                    }
                    for tx in waiters.into_iter().flatten() {
                        let _ = tx.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}
