//! The schedule's wake-up times: a set of (due time, queue) that one timer task per
//! [`Memory`](crate::Memory) sleeps on (`Memory::promote_when_due`), instead of a sleeping task
//! per scheduled message, so what a store keeps for its schedule does not grow with the
//! messages due at one instant on one queue.

use busmq_core::QueueName;
use busmq_core::support::lock;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The due times the timer task waits for, and the task.
#[derive(Debug, Default)]
pub(crate) struct DueTimer {
    state: Mutex<State>,
    /// Wakes the task when an earlier due time arrives (a permit is kept if it is not waiting).
    wake: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    /// (due time, queue): a queue with many messages due at one instant is in once. A
    /// cancelled message's time stays and the wake-up finds nothing to promote.
    due: BTreeSet<(Instant, QueueName)>,
    /// Spawned on the runtime of the first schedule, and again on a later one's if that
    /// runtime has shut down (tests run one runtime after another over the same data). Data
    /// used from two runtimes at once is served by the first one's task (on its clock): see
    /// `Memory`'s docs.
    task: Option<JoinHandle<()>>,
}

impl DueTimer {
    /// Remembers that `queue` has a message due at `at`; starts the task with `start` if it
    /// does not run, or wakes it if `at` is now the earliest.
    pub(crate) fn arm(
        &self,
        queue: &QueueName,
        at: Instant,
        start: impl FnOnce(Arc<Notify>) -> JoinHandle<()>,
    ) {
        let mut state = lock(&self.state);
        let earlier = state.due.first().is_none_or(|(first, _)| at < *first);
        state.due.insert((at, queue.clone()));
        if state.task.as_ref().is_none_or(JoinHandle::is_finished) {
            state.task = Some(start(self.wake.clone()));
        } else if earlier {
            self.wake.notify_one();
        }
    }

    /// The earliest due time.
    pub(crate) fn next(&self) -> Option<Instant> {
        lock(&self.state).due.first().map(|(at, _)| *at)
    }

    /// Removes and returns the queues with a time due by `now` (each once).
    pub(crate) fn pop_due(&self, now: Instant) -> Vec<QueueName> {
        let mut state = lock(&self.state);
        let mut queues: BTreeSet<QueueName> = BTreeSet::new();
        while let Some((at, _)) = state.due.first() {
            if *at > now {
                break;
            }
            let (_, queue) = state.due.pop_first().expect("a first entry");
            queues.insert(queue);
        }
        queues.into_iter().collect()
    }

    /// Ends the task (the data it served is gone).
    pub(crate) fn stop(&self) {
        if let Some(task) = lock(&self.state).task.take() {
            task.abort();
        }
    }
}

/// Waits until `next` (forever when `None`) or until `wake` says an earlier time was armed;
/// true when `next` came.
pub(crate) async fn until(next: Option<Instant>, wake: &Notify) -> bool {
    match next {
        None => {
            wake.notified().await;
            false
        }
        Some(at) if at > Instant::now() => tokio::select! {
            () = tokio::time::sleep_until(at) => true,
            () = wake.notified() => false,
        },
        Some(_) => true,
    }
}
