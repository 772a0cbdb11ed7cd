//! Pushes: encoded when `push` is called, buffered until the queue is attached (SPEC Q7), and
//! written by one worker per queue handle that coalesces concurrent pushes into one store call,
//! one batch in flight at a time so that order is kept (SPEC Q6, Q9); on a store that pipelines
//! pushes, two linked batches (`pipeline.rs`).

use super::coalesce::{Coalescer, Start};
use super::event::QueueEvent;
use super::lifecycle::{Held, Phase, PushTarget};
use super::pending::{Pending, Push, PushAll};
use super::push_options::Keyed;
use crate::error::{Error, Result};
use crate::name::QueueName;
use crate::observability::{QueueMetrics, background_error};
use crate::store::StoreState;
use crate::store::{Dedupe, NewEntry, PushBatch, QueueSpec, StoreHandle, check_retention};
use crate::util::backoff;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot, watch};
use tracing::Instrument;

/// Pushes waiting (for an attach or for the store) beyond which `push` fails with
/// `Backpressure` instead of growing memory without bound.
pub(crate) const MAX_BUFFERED: usize = 100_000;
/// Most entries written by one store call (a bigger `push_all` is still written whole).
const BATCH_ENTRIES: usize = 1024;
/// Most payload and header bytes written by one store call.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

enum Reply {
    One(oneshot::Sender<Result<u64>>),
    Many(oneshot::Sender<Result<Vec<u64>>>),
}

/// A unit's entries: a single push keeps its entry inline, so that it costs no vector of its
/// own on the way to the batch.
enum Entries {
    One(NewEntry),
    Many(Vec<NewEntry>),
}

impl Entries {
    fn as_slice(&self) -> &[NewEntry] {
        match self {
            Entries::One(entry) => std::slice::from_ref(entry),
            Entries::Many(entries) => entries,
        }
    }

    /// Moves the entries to the end of `out` (the batch's store call), without copying them.
    fn move_into(self, out: &mut Vec<NewEntry>) {
        match self {
            Entries::One(entry) => out.push(entry),
            Entries::Many(entries) => out.extend(entries),
        }
    }
}

pub(super) struct Unit {
    entries: Entries,
    /// A dedupe key and window (SPEC P10), perhaps a retry deadline: such a unit is written in
    /// a store call of its own. (Levels and ordering keys travel in the entries: units of any
    /// routing share a store call.) Boxed: units are moved several times on their way to the
    /// store call, and most have none.
    dedupe: Option<Box<Keyed>>,
    bytes: usize,
    waiter: Waiter,
}

/// Who waits for a unit, once its entries went into a store call.
pub(super) struct Waiter {
    /// The unit's entries.
    pub(super) n: usize,
    reply: Reply,
    /// When `push` was called, if pushes are timed (a metrics recorder is installed).
    started: Option<Instant>,
}

/// What an entry adds to a store call, for [`BATCH_BYTES`]: an ordering key travels twice
/// (its route and the entry's attributes).
fn size(entry: &NewEntry) -> usize {
    let key = entry.ordering_key.as_ref().map_or(0, |k| 2 * k.len());
    entry.payload.len() + entry.headers.as_ref().map_or(0, |h| h.size()) + key
}

/// The push side of one queue handle.
pub(crate) struct Producer {
    name: QueueName,
    units: Coalescer<Unit>,
    /// Entries waiting in `units` (kept apart so that admission does not count them each time).
    buffered: AtomicUsize,
    pushed: AtomicU64,
    /// The newest id this handle's pushes got (0: none yet), proposed to the store as the floor
    /// of the next push's ids.
    last_id: AtomicU64,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("buffered", &self.buffered.load(Ordering::Relaxed))
            .field("pushed", &self.pushed.load(Ordering::Relaxed))
            .finish()
    }
}

/// What the worker needs, without keeping the queue handle alive.
pub(crate) struct Target {
    pub(crate) store: StoreHandle,
    pub(crate) name: QueueName,
    pub(crate) phase: watch::Receiver<Phase>,
    pub(crate) events: broadcast::Sender<QueueEvent>,
    pub(crate) metrics: Arc<QueueMetrics>,
}

impl Producer {
    pub(crate) fn new(name: QueueName) -> Arc<Self> {
        Arc::new(Producer {
            name,
            units: Coalescer::new(),
            buffered: AtomicUsize::new(0),
            pushed: AtomicU64::new(0),
            last_id: AtomicU64::new(0),
        })
    }

    /// Messages this handle has written.
    pub(crate) fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Queues one push; the worker is started if idle.
    pub(crate) fn enqueue_one(
        self: &Arc<Self>,
        entry: NewEntry,
        dedupe: Option<Keyed>,
        started: Option<Instant>,
        target: impl FnOnce() -> Target,
    ) -> Push {
        let (tx, rx) = oneshot::channel();
        let bytes = size(&entry);
        let waiter = Waiter { n: 1, reply: Reply::One(tx), started };
        let dedupe = dedupe.map(Box::new);
        let unit = Unit { entries: Entries::One(entry), dedupe, bytes, waiter };
        match self.enqueue(unit, target) {
            Ok(()) => Push(Pending::Waiting(rx, self.name.clone())),
            Err(e) => Push(Pending::done(Err(e))),
        }
    }

    /// Queues one atomic batch.
    pub(crate) fn enqueue_all(
        self: &Arc<Self>,
        entries: Vec<NewEntry>,
        started: Option<Instant>,
        target: impl FnOnce() -> Target,
    ) -> PushAll {
        if entries.is_empty() {
            return PushAll(Pending::done(Ok(Vec::new())));
        }
        let (tx, rx) = oneshot::channel();
        let bytes = entries.iter().map(size).sum();
        let waiter = Waiter { n: entries.len(), reply: Reply::Many(tx), started };
        let unit = Unit { entries: Entries::Many(entries), dedupe: None, bytes, waiter };
        match self.enqueue(unit, target) {
            Ok(()) => PushAll(Pending::Waiting(rx, self.name.clone())),
            Err(e) => PushAll(Pending::done(Err(e))),
        }
    }

    fn enqueue(self: &Arc<Self>, unit: Unit, target: impl FnOnce() -> Target) -> Result<()> {
        let n = unit.waiter.n;
        let admit = |_: &_| {
            let waiting = self.buffered.load(Ordering::Relaxed);
            if waiting + n > MAX_BUFFERED && waiting > 0 {
                return Err(waiting);
            }
            self.buffered.fetch_add(n, Ordering::Relaxed);
            Ok(())
        };
        match self.units.push(unit, admit) {
            Ok(Start::Worker) => {
                tokio::spawn(self.clone().run(target()));
                Ok(())
            }
            Ok(Start::Running) => Ok(()),
            Err(pending) => Err(Error::Backpressure { queue: self.name.to_string(), pending }),
        }
    }

    /// Waits until every push accepted so far has been written or has failed.
    pub(crate) async fn drained(&self) {
        self.units.drained().await;
    }

    /// Fails every buffered push with `error` (the queue was closed or detached) and marks the
    /// worker stopped; pushes arriving later start a new worker that decides for itself.
    fn fail_until_empty(&self, error: &Error, target: &Target) {
        while let Some(batch) = self.next_batch() {
            for unit in batch {
                unit.fail(error.clone(), target);
            }
        }
    }

    fn next_batch(&self) -> Option<Vec<Unit>> {
        self.take(None, true)
    }

    /// The next batch, and when nothing waits `None`, which stops the worker when `stop` is
    /// set (see [`Coalescer`]). With `split` (the fewest entries the store links), a batch
    /// whose first unit holds at least that many takes about half of what waits, at a unit's
    /// end, so that the rest can follow it at once (see `pipeline.rs`): those units are
    /// `push_all` calls, each a caller who gets its answer a write sooner. A batch that starts
    /// with a single push is not split: two writes of half as many cost the store and the
    /// client more per message.
    pub(super) fn take(&self, split: Option<usize>, stop: bool) -> Option<Vec<Unit>> {
        let (mut entries, mut bytes, mut alone) = (0, 0, false);
        // Read only when the batch may be split: the common take needs no count.
        let half = split.map_or(0, |_| self.waiting().div_ceil(2));
        let mut cap = BATCH_ENTRIES;
        let fits = |unit: &Unit| {
            // A keyed push's store call answers for that key only (a repeat writes nothing),
            // so it never shares one: it ends the batch before it, and nothing joins it.
            if alone || (unit.dedupe.is_some() && entries > 0) {
                return false;
            }
            if entries == 0 && split.is_some_and(|least| unit.waiter.n >= least && half >= least) {
                cap = half.min(BATCH_ENTRIES);
            }
            alone = unit.dedupe.is_some();
            entries += unit.waiter.n;
            bytes += unit.bytes;
            entries <= cap && bytes <= BATCH_BYTES
        };
        let batch = match stop {
            true => self.units.next_batch(fits)?,
            false => self.units.more(fits)?,
        };
        let taken: usize = batch.iter().map(|u| u.waiter.n).sum();
        self.buffered.fetch_sub(taken, Ordering::Relaxed);
        Some(batch)
    }

    /// Entries waiting to be written.
    pub(super) fn waiting(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    async fn run(self: Arc<Self>, mut target: Target) {
        if target.store.pipelined().is_some() {
            return self.run_pipelined(target).await;
        }
        loop {
            let held = match self.held(&mut target).await {
                Some(held) => held,
                None => break,
            };
            let Some(batch) = self.next_batch() else {
                break;
            };
            if let Some(ready) = self.prepare(&target, &held.spec, batch) {
                self.send(&target, held, ready).await;
            }
        }
    }

    /// Where the next batch goes: the incarnation the handle holds, once it holds one. `None`
    /// when the worker must stop (everything buffered has then failed).
    pub(super) async fn held(&self, target: &mut Target) -> Option<Held> {
        loop {
            let phase = *target.phase.borrow_and_update();
            match phase.push_target(&target.name) {
                PushTarget::Write(held) => return Some(held),
                PushTarget::Wait => {
                    if target.phase.changed().await.is_err() {
                        // Every handle is gone: nothing will ever attach this queue.
                        let gone = Error::Detached { queue: target.name.to_string() };
                        self.fail_until_empty(&gone, target);
                        return None;
                    }
                }
                PushTarget::Fail(error) => {
                    self.fail_until_empty(&error, target);
                    return None;
                }
            }
        }
    }

    /// One pass over a batch's units. The entries move into the store call's vector (cloning
    /// a payload can cost an allocation: see `Bytes`); the waiters keep their counts to be
    /// answered in order. Pushes buffered before the attach meet the adopted spec here: those
    /// it refuses (a level or key on a queue with retention) fail alone, the others are
    /// written. A keyed unit is alone in its batch (see `take`). `None`: every unit failed.
    pub(super) fn prepare(
        &self,
        target: &Target,
        spec: &QueueSpec,
        batch: Vec<Unit>,
    ) -> Option<Ready> {
        let mut entries = Vec::with_capacity(batch.iter().map(|u| u.waiter.n).sum());
        let mut waiters = Vec::with_capacity(batch.len());
        let mut keyed = None;
        for unit in batch {
            if let Err(error) = check_retention(spec, unit.entries.as_slice()) {
                unit.fail(error, target);
                continue;
            }
            if waiters.is_empty() {
                keyed = unit.dedupe;
            }
            unit.entries.move_into(&mut entries);
            waiters.push(unit.waiter);
        }
        (!waiters.is_empty()).then_some(Ready { entries, waiters, keyed })
    }

    /// Writes `ready` with one store call (retried within a keyed push's deadline), after
    /// every earlier write of this handle answered.
    pub(super) async fn send(&self, target: &Target, held: Held, ready: Ready) {
        let Ready { entries, waiters, keyed } = ready;
        let span =
            tracing::trace_span!("push", queue = target.name.as_str(), entries = entries.len());
        let keyed = keyed.as_deref();
        let mut push = PushBatch::new(held.generation, &held.spec, &entries);
        push.after = self.last();
        push.dedupe = keyed.map(|k| Dedupe { key: &k.key, window: k.window });
        let mut result = target.store.push(&target.name, &push).instrument(span.clone()).await;
        if let Some(until) = keyed.and_then(|k| k.retry_until) {
            let mut attempt = 0;
            while let Err(error) = &result {
                if !error.is_retryable() || !pause(target, attempt, until).await {
                    break;
                }
                tracing::debug!(error = %error, attempt, "retrying a keyed push");
                attempt += 1;
                // The store may have come back with another incarnation of the queue: push to
                // the one the handle holds now.
                let PushTarget::Write(held) = target.phase.borrow().push_target(&target.name)
                else {
                    break;
                };
                let mut again = PushBatch::new(held.generation, &held.spec, &entries);
                again.after = push.after;
                again.dedupe = push.dedupe;
                result = target.store.push(&target.name, &again).instrument(span.clone()).await;
            }
        }
        self.conclude(target, held, &entries, waiters, result).await;
    }

    /// Answers the waiters of a write that returned `result`.
    pub(super) async fn conclude(
        &self,
        target: &Target,
        held: Held,
        entries: &[NewEntry],
        waiters: Vec<Waiter>,
        result: Result<u64>,
    ) {
        match result {
            Ok(first) => self.resolve(target, waiters, first),
            Err(Error::QueueFull { .. }) if waiters.len() > 1 => {
                // Coalesced pushes are independent: write them one by one so that exactly those
                // that fit succeed, in order (SPEC Q8).
                let mut at = 0;
                for waiter in waiters {
                    let own = &entries[at..at + waiter.n];
                    at += waiter.n;
                    let mut push = PushBatch::new(held.generation, &held.spec, own);
                    push.after = self.last();
                    let result = target.store.push(&target.name, &push).await;
                    match result {
                        Ok(first) => self.resolve(target, vec![waiter], first),
                        Err(error) => waiter.fail(error, target),
                    }
                }
            }
            Err(error) => {
                tracing::trace!(error = %error, "push failed");
                for waiter in waiters {
                    waiter.fail(error.clone(), target);
                }
            }
        }
    }

    pub(super) fn last(&self) -> Option<u64> {
        Some(self.last_id.load(Ordering::Relaxed)).filter(|&id| id > 0)
    }

    pub(super) fn resolve(&self, target: &Target, batch: Vec<Waiter>, first: u64) {
        // Counted before any caller is answered, so that `pushed()` right after a push
        // returned includes it (read-your-writes).
        let written: u64 = batch.iter().map(|w| w.n as u64).sum();
        self.pushed.fetch_add(written, Ordering::Relaxed);
        self.last_id.fetch_max(first + written.saturating_sub(1), Ordering::Relaxed);
        target.metrics.pushed(written);
        // One clock read for the batch, and none when pushes are not timed.
        let mut now = None;
        let mut id = first;
        for waiter in batch {
            if let Some(started) = waiter.started {
                let now = *now.get_or_insert_with(Instant::now);
                target.metrics.push_took(now.saturating_duration_since(started));
            }
            let n = waiter.n as u64;
            match waiter.reply {
                Reply::One(tx) => {
                    let _ = tx.send(Ok(id));
                }
                Reply::Many(tx) => {
                    let _ = tx.send(Ok((id..id + n).collect()));
                }
            }
            id += n;
        }
    }
}

/// Waits before retry `attempt` of a push (backoff, then until the store is online), within
/// `until`; false when the deadline passed first, or when the handle is being detached or was
/// closed: a detach (and so a bus disconnect) waits for the pushes it accepted, and must not
/// wait out a retry deadline that may be hours away.
async fn pause(target: &Target, attempt: u32, until: tokio::time::Instant) -> bool {
    let wait = backoff(attempt, Duration::from_millis(20), Duration::from_secs(1));
    let mut state = target.store.state();
    let mut phase = target.phase.clone();
    let ready = async {
        tokio::time::sleep(wait).await;
        state.wait_for(|s| *s == StoreState::Online).await.is_ok()
    };
    let leaving =
        phase.wait_for(|p| matches!(p, Phase::Detaching(_) | Phase::Detached | Phase::Closed));
    tokio::select! {
        ready = tokio::time::timeout_at(until, ready) => ready.unwrap_or(false),
        _ = leaving => false,
    }
}

/// A batch ready for its store call: the entries in order, who waits for them, and the dedupe
/// key of a keyed push (alone in its batch).
pub(super) struct Ready {
    pub(super) entries: Vec<NewEntry>,
    pub(super) waiters: Vec<Waiter>,
    pub(super) keyed: Option<Box<Keyed>>,
}

impl Unit {
    fn fail(self, error: Error, target: &Target) {
        self.waiter.fail(error, target);
    }
}

impl Waiter {
    /// Reports a failed push to its caller, or as a queue event (logged) when nobody awaits
    /// it; counted either way.
    pub(super) fn fail(self, error: Error, target: &Target) {
        target.metrics.error(&error);
        let undelivered = match self.reply {
            Reply::One(tx) => tx.send(Err(error)).err().and_then(Result::err),
            Reply::Many(tx) => tx.send(Err(error)).err().and_then(Result::err),
        };
        if let Some(error) = undelivered {
            background_error(Some(target.name.as_str()), &error);
            let _ = target.events.send(QueueEvent::Error(error));
        }
    }
}
