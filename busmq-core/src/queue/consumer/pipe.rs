//! The buffer between a consumer's task and its stream: what was taken and not handed out yet
//! (with, for reliable takes, until when the store keeps it for this consumer), errors to
//! report in order, the stop request and the finish signal.

use super::super::settler::Settler;
use crate::error::Error;
use crate::observability::ConsumerMetrics;
use crate::store::{ConsumerId, Entry, Settle, Settled, Settlement};
use crate::util::lock;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::Waker;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// An entry taken and not handed out yet.
pub(super) struct Buffered {
    pub(super) entry: Entry,
    pub(super) until: Until,
}

/// How long a buffered entry stays this consumer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Until {
    /// Taken at most once (or read): it is the consumer's for good.
    Always,
    /// Taken reliably: the store may give it to another consumer from this moment, unless an
    /// extension it confirmed since moved it on. Counted from before the take (or extension)
    /// was sent, so never later than the store's own deadline, and often earlier: a call held
    /// up on its way (a partition that delays rather than drops) lands with a fresh deadline.
    At(Instant),
    /// The store has just answered that it is still this consumer's, but the answer took so
    /// long that the moment above has passed again: handed out as it is (as a take answered
    /// that late would be), instead of asking again and again.
    Confirmed,
    /// The store answered that this delivery is not the consumer's any more (it was redelivered,
    /// with the next count, or its queue was flushed or closed).
    Gone,
}

impl Until {
    /// A reliable take's or extension's entries, the call sent at `sent`: see [`Until::At`]. A
    /// visibility timeout too long for the clock never runs out.
    pub(super) fn after(sent: Instant, visibility: std::time::Duration) -> Until {
        sent.checked_add(visibility).map_or(Until::Always, Until::At)
    }
}

/// Whether a buffered entry can be handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Standing {
    Ready,
    /// Its visibility may have run out: handed out now, it could be a second delivery under the
    /// same count, so the store is asked first (see `ConsumerShared::confirm_asked`).
    Lapsed,
    Gone,
}

impl Buffered {
    pub(super) fn standing(&self) -> Standing {
        match self.until {
            Until::Always => Standing::Ready,
            // The clock is read only for reliable entries.
            Until::At(at) if Instant::now() >= at => Standing::Lapsed,
            Until::At(_) | Until::Confirmed => Standing::Ready,
            Until::Gone => Standing::Gone,
        }
    }
}

#[derive(Default)]
pub(super) struct PipeState {
    pub(super) buffer: VecDeque<Buffered>,
    pub(super) errors: VecDeque<Error>,
    pub(super) handed: u64,
    pub(super) stop: bool,
    /// Stop without releasing what user code holds (a graceful service stop: in-flight requests
    /// are still answered and acknowledged).
    pub(super) keep_held: bool,
    pub(super) finished: bool,
    /// The stream waits for the store to confirm lapsed entries (see [`Standing::Lapsed`]).
    pub(super) confirm: bool,
    pub(super) waker: Option<Waker>,
}

/// State shared by a consumer's stream and its task.
pub(crate) struct ConsumerShared {
    pub(crate) id: ConsumerId,
    pub(super) state: Mutex<PipeState>,
    pub(super) wake_task: Notify,
    /// Cancels a waiting take (see `BlockingTake`) when consuming stops.
    pub(super) cancel_wait: Notify,
    pub(super) done: watch::Sender<bool>,
    pub(super) max: Option<u64>,
    pub(super) prefetch: usize,
    pub(super) settler: Option<Arc<Settler>>,
    /// Extend held deliveries while running (`ReliableOptions::auto_extend`).
    pub(super) auto_extend: bool,
    pub(super) metrics: Arc<ConsumerMetrics>,
    /// The consumer's span (queue, consumer id, mode): its task runs in it, and the stream's
    /// events name it as their parent.
    pub(super) span: tracing::Span,
}

impl fmt::Debug for ConsumerShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerShared").field("id", &self.id).finish_non_exhaustive()
    }
}

impl ConsumerShared {
    pub(super) fn new(
        id: ConsumerId,
        max: Option<u64>,
        prefetch: usize,
        settler: Option<Arc<Settler>>,
        auto_extend: bool,
        metrics: Arc<ConsumerMetrics>,
        span: tracing::Span,
    ) -> Self {
        ConsumerShared {
            id,
            state: Mutex::new(PipeState::default()),
            wake_task: Notify::new(),
            cancel_wait: Notify::new(),
            done: watch::Sender::new(false),
            max,
            prefetch,
            settler,
            auto_extend,
            metrics,
            span,
        }
    }

    /// Asks the task to stop; it returns what it holds and then finishes.
    pub(crate) fn request_stop(&self) {
        lock(&self.state).stop = true;
        self.wake_task.notify_one();
        self.cancel_wait.notify_one();
    }

    /// Asks the task to stop like [`ConsumerShared::request_stop`], leaving the deliveries
    /// handed out with their holders.
    pub(crate) fn request_stop_keeping_held(&self) {
        lock(&self.state).keep_held = true;
        self.request_stop();
    }

    /// Waits until the task has finished (its messages are back in the store).
    pub(crate) async fn finished(&self) {
        let mut done = self.done.subscribe();
        let _ = done.wait_for(|done| *done).await;
    }

    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.state).finished
    }

    pub(crate) fn stop_requested(&self) -> bool {
        lock(&self.state).stop
    }

    /// How many more entries the task should fetch now.
    pub(super) fn wanted(&self) -> usize {
        let state = lock(&self.state);
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

    /// Buffers `entries`, which stay this consumer's as `until` says.
    pub(super) fn deliver(&self, entries: Vec<Entry>, until: Until) {
        if entries.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        state.buffer.extend(entries.into_iter().map(|entry| Buffered { entry, until }));
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    pub(super) fn report(&self, error: Error) {
        let mut state = lock(&self.state);
        state.errors.push_back(error);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// Marks the consumer finished and returns what it had not handed out.
    pub(super) fn finish(&self) -> Vec<Entry> {
        let mut state = lock(&self.state);
        state.finished = true;
        state.stop = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        state.buffer.drain(..).filter(|b| b.until != Until::Gone).map(|b| b.entry).collect()
    }

    /// Signals the end to everyone waiting in [`ConsumerShared::finished`], now or later.
    pub(super) fn signal_done(&self) {
        // `send` would drop the value when nobody is subscribed yet (a `stop()` that comes
        // later would then wait forever); `send_replace` stores it whoever listens.
        self.done.send_replace(true);
    }

    /// Whether the deliveries handed out stay with their holders when the consumer ends:
    /// consuming ended because `max` deliveries were handed out, or the stop asked for it.
    pub(super) fn keeps_held(&self) -> bool {
        let state = lock(&self.state);
        state.keep_held || self.max.is_some_and(|max| state.handed >= max)
    }

    /// Settlements of `action` for the entries taken and not handed out yet (and still this
    /// consumer's as far as it knows).
    pub(super) fn buffered(&self, action: Settlement) -> Vec<Settle> {
        let state = lock(&self.state);
        let ours = state.buffer.iter().filter(|b| b.until != Until::Gone);
        ours.map(|b| Settle::of(&b.entry, action)).collect()
    }

    /// Whether the stream asked for its lapsed entries to be confirmed (the ask is consumed).
    pub(super) fn confirm_asked(&self) -> bool {
        std::mem::take(&mut lock(&self.state).confirm)
    }

    /// Notes what the store answered to extensions of buffered entries (`ops`, sent at
    /// `sent`, to `visibility`): an extended entry is this consumer's until `sent +
    /// visibility` (see [`Until::Confirmed`] for an answer later than that), a stale one is not
    /// this consumer's any more. Entries handed out or taken since are matched by id and
    /// delivery count. Wakes the stream, which may be waiting for this answer.
    pub(super) fn extended(
        &self,
        ops: &[Settle],
        outcomes: &[Settled],
        sent: Instant,
        visibility: std::time::Duration,
    ) {
        if ops.is_empty() {
            return;
        }
        let answers: HashMap<(u64, u32), Settled> = ops
            .iter()
            .zip(outcomes)
            .map(|(op, outcome)| ((op.id, op.delivery), *outcome))
            .collect();
        let extended = match Until::after(sent, visibility) {
            Until::At(at) if at <= Instant::now() => Until::Confirmed,
            until => until,
        };
        let mut state = lock(&self.state);
        for b in state.buffer.iter_mut() {
            if matches!(b.until, Until::Always | Until::Gone) {
                continue;
            }
            match answers.get(&(b.entry.id, b.entry.deliveries)) {
                Some(Settled::Done) => {
                    b.until = match (b.until, extended) {
                        (Until::At(was), Until::At(now)) => Until::At(was.max(now)),
                        (Until::At(was), Until::Confirmed) if was > Instant::now() => b.until,
                        _ => extended,
                    }
                }
                Some(Settled::Stale) => b.until = Until::Gone,
                None => {}
            }
        }
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observability::QueueMetrics;
    use crate::store::ClientId;
    use std::time::Duration;

    const VISIBILITY: Duration = Duration::from_secs(1);

    fn shared() -> ConsumerShared {
        let metrics = Arc::new(QueueMetrics::new(None, "test").consumer("reliable"));
        let id = ConsumerId::new(&ClientId::random(), 1);
        ConsumerShared::new(id, None, 10, None, true, metrics, tracing::Span::none())
    }

    fn standings(shared: &ConsumerShared) -> Vec<Standing> {
        lock(&shared.state).buffer.iter().map(Buffered::standing).collect()
    }

    fn extend_all(shared: &ConsumerShared, outcomes: &[Settled], sent: Instant) {
        let ops = shared.buffered(Settlement::Extend(VISIBILITY));
        shared.extended(&ops, outcomes, sent, VISIBILITY);
    }

    #[tokio::test]
    async fn entries_past_their_visibility_wait_for_the_store_and_follow_its_answer() {
        let shared = shared();
        let long_ago = Instant::now() - VISIBILITY * 2;
        let entries = vec![Entry::new(1, 1, "a"), Entry::new(2, 1, "b"), Entry::new(3, 1, "c")];
        shared.deliver(entries, Until::after(long_ago, VISIBILITY));
        assert_eq!(standings(&shared), [Standing::Lapsed; 3]);
        // Sent just now: extended for a visibility timeout from now.
        extend_all(&shared, &[Settled::Done, Settled::Stale, Settled::Done], Instant::now());
        assert_eq!(standings(&shared), [Standing::Ready, Standing::Gone, Standing::Ready]);
        // Gone entries are neither extended again nor given back.
        assert_eq!(shared.buffered(Settlement::Return).len(), 2);
        assert_eq!(shared.finish().iter().map(|e| e.id).collect::<Vec<_>>(), [1, 3]);
    }

    #[tokio::test]
    async fn a_confirmation_that_came_back_late_still_lets_the_entry_go() {
        // The store said the entry is this consumer's, after a round trip longer than the
        // visibility timeout: asking again would never end.
        let shared = shared();
        let long_ago = Instant::now() - VISIBILITY * 3;
        shared.deliver(vec![Entry::new(1, 1, "a")], Until::after(long_ago, VISIBILITY));
        assert_eq!(standings(&shared), [Standing::Lapsed]);
        extend_all(&shared, &[Settled::Done], long_ago + VISIBILITY / 2);
        assert_eq!(standings(&shared), [Standing::Ready]);
    }

    #[tokio::test]
    async fn a_visibility_too_long_for_the_clock_never_runs_out() {
        let shared = shared();
        shared.deliver(vec![Entry::new(1, 1, "a")], Until::after(Instant::now(), Duration::MAX));
        assert_eq!(standings(&shared), [Standing::Ready]);
        let ops = shared.buffered(Settlement::Extend(Duration::MAX));
        shared.extended(&ops, &[Settled::Done], Instant::now(), Duration::MAX);
        assert_eq!(standings(&shared), [Standing::Ready]);
    }
}
