//! When a consumer fetches, as a pure state machine (DESIGN: sans-IO machines, thin async
//! glue): given how many entries the buffer wants and what happened last, it says whether to
//! take now, wait inside the store, renew the consumer's lease, back off, or sleep until
//! something changes. The task in `task.rs` only performs what it says.

use std::time::Duration;
use tokio::time::Instant;

/// What the consumer task does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Take up to this many entries (never waits).
    Take(usize),
    /// Take up to this many, waiting inside the store when none is ready (a store that waits
    /// natively: an at-most-once consumer there never takes plainly, because a plain take that
    /// comes back short asks the store for notices, which it does not need).
    TakeWaiting(usize),
    /// Renew the consumer's lease (and extend what it holds) first.
    Beat,
    /// Nothing to do until the stream wants more, a notice arrives, or the heartbeat ticks.
    Sleep,
}

/// What a failed fetch asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// How long to pause (a notice, a wake-up or a phase change ends it sooner).
    pub(crate) pause: Duration,
    /// Whether to report the error (only the first of a series, so an outage is one event).
    pub(crate) report: bool,
}

/// The fetch policy of one consumer.
#[derive(Debug)]
pub(crate) struct Fetch {
    /// The store can wait inside a take (an idle at-most-once consumer then waits there: one
    /// round trip per wake-up instead of a notice and then a take).
    blocking: bool,
    heartbeat: Duration,
    /// The last take returned less than it asked for: the queue is drained, so take again
    /// only after a notice or a heartbeat, not each time the stream hands a message out.
    idle: bool,
    failures: u32,
    last_beat: Instant,
}

/// The first pause after a failure, and the longest.
const BACKOFF_BASE: Duration = Duration::from_millis(20);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

impl Fetch {
    pub(crate) fn new(blocking: bool, heartbeat: Duration, now: Instant) -> Self {
        Fetch { blocking, heartbeat, idle: false, failures: 0, last_beat: now }
    }

    /// The next step when the buffer has room for `want` more entries.
    pub(crate) fn next(&mut self, want: usize, now: Instant) -> Step {
        if want == 0 || (self.idle && !self.blocking) {
            return Step::Sleep;
        }
        // Takes that go on back to back never reach the heartbeat the sleeping task waits for:
        // waits inside a blocking store, and a busy consumer's full takes while its stream
        // keeps wanting more. The lease, and the extension of what the consumer holds, are
        // renewed between them instead.
        if now.duration_since(self.last_beat) >= self.heartbeat {
            self.last_beat = now;
            return Step::Beat;
        }
        if !self.blocking {
            return Step::Take(want);
        }
        Step::TakeWaiting(want)
    }

    /// A take asked for `asked` and got `got` entries.
    pub(crate) fn fetched(&mut self, asked: usize, got: usize) {
        self.failures = 0;
        self.idle = got < asked;
    }

    /// A take failed.
    pub(crate) fn failed(&mut self) -> Backoff {
        let report = self.failures == 0;
        self.failures = self.failures.saturating_add(1);
        Backoff { pause: crate::util::backoff(self.failures, BACKOFF_BASE, BACKOFF_CAP), report }
    }

    /// The store said messages may be available.
    pub(crate) fn notice(&mut self) {
        self.idle = false;
    }

    /// The heartbeat ticked: the task renews now, and looks at the store again afterwards
    /// (the safety net for a lost notice, and how expired deliveries of dead consumers are
    /// noticed).
    pub(crate) fn tick(&mut self, now: Instant) {
        self.idle = false;
        self.last_beat = now;
    }

    /// Whether the last take found the queue drained.
    pub(crate) fn idle(&self) -> bool {
        self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEAT: Duration = Duration::from_secs(5);

    #[test]
    fn takes_until_a_take_comes_back_short_then_sleeps() {
        let t0 = Instant::now();
        let mut f = Fetch::new(false, BEAT, t0);
        assert_eq!(f.next(128, t0), Step::Take(128));
        f.fetched(128, 128);
        assert_eq!(f.next(64, t0), Step::Take(64), "a full take: more may be ready");
        f.fetched(64, 10);
        assert_eq!(f.next(118, t0), Step::Sleep, "drained: wait for a notice");
        f.notice();
        assert_eq!(f.next(118, t0), Step::Take(118));
    }

    #[test]
    fn a_full_buffer_sleeps_whatever_the_store_holds() {
        let t0 = Instant::now();
        let mut f = Fetch::new(true, BEAT, t0);
        assert_eq!(f.next(0, t0), Step::Sleep);
    }

    #[test]
    fn an_idle_blocking_consumer_waits_in_the_store_and_beats_between_waits() {
        let t0 = Instant::now();
        let mut f = Fetch::new(true, BEAT, t0);
        assert_eq!(f.next(128, t0), Step::TakeWaiting(128), "never a plain take");
        f.fetched(128, 0);
        assert_eq!(f.next(128, t0), Step::TakeWaiting(128));
        f.fetched(128, 0);
        assert_eq!(f.next(128, t0 + BEAT), Step::Beat, "the lease is due");
        assert_eq!(f.next(128, t0 + BEAT), Step::TakeWaiting(128), "then waits again");
        f.fetched(128, 128);
        let later = t0 + BEAT * 3;
        assert_eq!(f.next(128, later), Step::Beat, "busy takes back to back: still renewed");
        assert_eq!(f.next(128, later), Step::TakeWaiting(128));
    }

    #[test]
    fn a_busy_consumer_beats_between_full_takes() {
        let t0 = Instant::now();
        let mut f = Fetch::new(false, BEAT, t0);
        f.fetched(128, 128);
        assert_eq!(f.next(128, t0 + BEAT / 2), Step::Take(128), "not due yet");
        f.fetched(128, 128);
        assert_eq!(f.next(128, t0 + BEAT), Step::Beat, "its stream never let it sleep");
        assert_eq!(f.next(128, t0 + BEAT), Step::Take(128), "then takes on");
        f.tick(t0 + BEAT * 2);
        assert_eq!(f.next(128, t0 + BEAT * 2), Step::Take(128), "a tick counts as the beat");
    }

    #[test]
    fn failures_back_off_growing_and_report_once_per_series() {
        let t0 = Instant::now();
        let mut f = Fetch::new(false, BEAT, t0);
        let first = f.failed();
        assert!(first.report);
        assert!(first.pause >= BACKOFF_BASE && first.pause <= BACKOFF_CAP);
        for _ in 0..20 {
            let later = f.failed();
            assert!(!later.report);
            assert!(later.pause <= BACKOFF_CAP);
        }
        f.fetched(1, 1);
        assert!(f.failed().report, "a success ends the series");
    }

    #[test]
    fn a_tick_wakes_an_idle_consumer() {
        let t0 = Instant::now();
        let mut f = Fetch::new(false, BEAT, t0);
        f.fetched(5, 0);
        assert!(f.idle());
        f.tick(t0 + BEAT);
        assert!(!f.idle());
        assert_eq!(f.next(5, t0 + BEAT), Step::Take(5));
    }
}
