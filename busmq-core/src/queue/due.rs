//! When the delayed releases of one consumer come due (SPEC P9), so that its task takes again
//! right then instead of at its next idle check, which may be seconds later.

use crate::util::lock;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Waited past a deadline before taking: the store computed the deadline from its own clock
/// when it settled, before the answer reached us, and Redis rounds it to whole milliseconds.
const MARGIN: Duration = Duration::from_millis(2);

/// The pending deadlines of delayed releases, earliest first.
#[derive(Debug, Default)]
pub(crate) struct DueTimes {
    times: Mutex<BTreeSet<(Instant, u64)>>,
    changed: Notify,
    counter: std::sync::atomic::AtomicU64,
}

impl DueTimes {
    /// Remembers that a release settled just now with `delay` comes due.
    pub(crate) fn add(&self, delay: Duration) {
        let now = Instant::now();
        let Some(at) = now.checked_add(delay + MARGIN) else {
            return;
        };
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut times = lock(&self.times);
        // A consumer that is never idle never reaches `next`: forget what passed here too, so
        // the set holds only deadlines still ahead.
        while times.first().is_some_and(|&(passed, _)| passed <= now) {
            times.pop_first();
        }
        times.insert((at, n));
        drop(times);
        self.changed.notify_one();
    }

    /// The earliest deadline not yet passed, forgetting those that passed by `now`; `true` in
    /// the second place when any passed (take again now).
    pub(crate) fn next(&self, now: Instant) -> (Option<Instant>, bool) {
        let mut times = lock(&self.times);
        let mut passed = false;
        while let Some(&(at, _)) = times.first() {
            if at > now {
                return (Some(at), passed);
            }
            times.pop_first();
            passed = true;
        }
        (None, passed)
    }

    /// Completes when a deadline is added.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Sleeps until `at`, or for ever when there is no deadline.
pub(crate) async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn forgets_passed_deadlines_and_reports_them() {
        let due = DueTimes::default();
        let t0 = Instant::now();
        due.add(Duration::from_millis(100));
        due.add(Duration::from_millis(50));
        let (next, passed) = due.next(t0);
        assert_eq!(next, Some(t0 + Duration::from_millis(50) + MARGIN));
        assert!(!passed);
        let (next, passed) = due.next(t0 + Duration::from_millis(60));
        assert_eq!(next, Some(t0 + Duration::from_millis(100) + MARGIN));
        assert!(passed);
        assert_eq!(due.next(t0 + Duration::from_secs(1)), (None, true));
    }
}
