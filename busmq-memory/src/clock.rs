//! The clocks of the memory store: message ids and generations that never go backwards, and
//! deadlines on tokio's clock (so that tests may pause and advance time).

use busmq_core::support::now_micros;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Hands out ids (and generations) for every queue of one [`crate::Memory`].
///
/// One counter for the whole store makes "ids never go backwards per queue name, even across
/// expiry and re-creation" hold without remembering anything about names that are gone.
#[derive(Debug, Default)]
pub(crate) struct IdClock {
    last: AtomicU64,
}

impl IdClock {
    /// Reserves `n` (at least 1) consecutive ids and returns the first:
    /// `max(last + 1, now in microseconds)`.
    pub(crate) fn next(&self, n: u64) -> u64 {
        let n = n.max(1);
        let now = now_micros();
        let mut first = 0;
        // The closure always returns Some, so the update cannot fail.
        let _ = self.last.fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            first = last.saturating_add(1).max(now);
            Some(first.saturating_add(n - 1))
        });
        first
    }
}

/// `now + after`, saturating far in the future instead of panicking on absurd durations.
pub(crate) fn deadline(now: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    now.checked_add(after).or_else(|| now.checked_add(FAR)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strictly_increasing_and_batches_are_consecutive() {
        let clock = IdClock::default();
        let a = clock.next(1);
        let b = clock.next(5);
        let c = clock.next(1);
        assert!(a >= now_micros() - 10_000_000, "ids start from the wall clock");
        assert!(b > a);
        assert!(c >= b + 5, "a batch of 5 reserves 5 ids: {b} then {c}");
    }

    #[test]
    fn deadlines_saturate() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now);
        assert_eq!(deadline(now, Duration::from_secs(1)), now + Duration::from_secs(1));
    }
}
