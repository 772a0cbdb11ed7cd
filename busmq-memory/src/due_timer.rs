//! One timer task per [`Memory`] that promotes scheduled messages when they come due and wakes
//! the queue's watchers (SPEC P8), instead of a sleeping task per scheduled message: what a
//! store keeps for its schedule is a set of (due time, queue), however many messages wait.

use crate::memory::{Memory, Shared};
use busmq_core::QueueName;
use busmq_core::support::lock;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The due times the timer waits for, and its task.
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
    /// runtime has shut down (tests run one runtime after another over the same data).
    task: Option<JoinHandle<()>>,
}

impl DueTimer {
    /// Remembers that `queue` has a message due at `at`, starting the task if it does not run
    /// and waking it if `at` is now the earliest.
    pub(crate) fn arm(&self, shared: &Arc<Shared>, queue: &QueueName, at: Instant) {
        let mut state = lock(&self.state);
        let earlier = state.due.first().is_none_or(|(first, _)| at < *first);
        state.due.insert((at, queue.clone()));
        if state.task.as_ref().is_none_or(JoinHandle::is_finished) {
            let (weak, wake) = (Arc::downgrade(shared), self.wake.clone());
            state.task = Some(tokio::spawn(run(weak, wake)));
        } else if earlier {
            self.wake.notify_one();
        }
    }

    /// The earliest due time.
    fn next(&self) -> Option<Instant> {
        lock(&self.state).due.first().map(|(at, _)| *at)
    }

    /// Removes and returns the queues with a time due by `now` (each once).
    fn pop_due(&self, now: Instant) -> Vec<QueueName> {
        let mut state = lock(&self.state);
        let mut queues: Vec<QueueName> = Vec::new();
        while let Some((at, _)) = state.due.first() {
            if *at > now {
                break;
            }
            let (_, queue) = state.due.pop_first().expect("a first entry");
            if !queues.contains(&queue) {
                queues.push(queue);
            }
        }
        queues
    }

    /// Ends the task (the data it served is gone).
    pub(crate) fn stop(&self) {
        if let Some(task) = lock(&self.state).task.take() {
            task.abort();
        }
    }
}

/// Sleeps until the earliest due time (or an earlier one is armed), then promotes what is due.
/// Holds the data weakly, so that dropping the last `Memory` ends it.
async fn run(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let next = match shared.upgrade() {
            Some(shared) => shared.due.next(),
            None => return,
        };
        match next {
            None => wake.notified().await,
            Some(at) if at > Instant::now() => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = wake.notified() => continue,
                }
            }
            Some(_) => {}
        }
        let Some(shared) = shared.upgrade() else { return };
        let due = shared.due.pop_due(Instant::now());
        let memory = Memory { shared };
        for queue in due {
            memory.with_existing(&queue, |slot, ctx| slot.promote(ctx));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Memory;
    use busmq_core::QueueName;
    use busmq_core::store::{NewEntry, Notice, QueueSpec, ScheduleBatch, Session, Store};
    use futures::StreamExt;
    use std::time::Duration;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Scheduled messages wake their queue's watchers when they come due, each queue at its own
    /// time, without a take; and a thousand schedules cost no task each.
    #[tokio::test(start_paused = true)]
    async fn due_messages_wake_watchers_in_due_order_from_one_task() {
        let memory = Memory::new();
        let store = memory.store();
        store.connect().await.unwrap();
        let spec = QueueSpec { ttl: Duration::from_secs(600), ..QueueSpec::default() };
        let (a, b) = (QueueName::new("a").unwrap(), QueueName::new("b").unwrap());
        let entry = NewEntry::new("x");
        let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        for i in 0..1000 {
            let delay = secs(100.0 + f64::from(i) / 100.0);
            store.schedule(&a, &ScheduleBatch::new(1, &spec, &entry, delay)).await.unwrap();
        }
        store.schedule(&a, &ScheduleBatch::new(1, &spec, &entry, secs(3.0))).await.unwrap();
        store.schedule(&b, &ScheduleBatch::new(1, &spec, &entry, secs(2.0))).await.unwrap();
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert!(alive <= tasks + 1, "one timer task, not one per message: {tasks} -> {alive}");

        let (mut watch_a, mut watch_b) =
            (store.watch(&a).await.unwrap(), store.watch(&b).await.unwrap());
        let quiet = tokio::time::timeout(secs(1.9), watch_b.next()).await;
        assert!(quiet.is_err(), "nothing is due before 2 s: {quiet:?}");
        let woke = tokio::time::timeout(secs(0.2), watch_b.next()).await;
        assert_eq!(woke.unwrap(), Some(Notice::Available), "b's message came due at 2 s");
        let woke = tokio::time::timeout(secs(1.5), watch_a.next()).await;
        assert_eq!(woke.unwrap(), Some(Notice::Available), "a's first message came due at 3 s");
        assert_eq!(store.stat(&a).await.unwrap().count, 1);
        tokio::time::sleep(secs(110.0)).await;
        assert_eq!(store.stat(&a).await.unwrap().count, 1001, "all of a's came due");
    }
}
