//! Small helpers shared by the core and the backends: random ids, jittered backoff, the clock
//! that seeds message ids, and the one lock policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static FALLBACK: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// A random u64 from the operating system, for ids that must not collide between processes
/// (client ids, batch names) and for jitter. Not a cryptographic API contract, but OS
/// randomness. Where the OS cannot answer (never seen), falls back to a splitmix of the clock.
pub fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut z = FALLBACK.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos as u64;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// Locks `mutex`, recovering the data when another thread panicked while holding it. Every
/// lock in busmq is held only for plain bookkeeping that leaves the data consistent at every
/// step, so a panic elsewhere must not turn into a panic in every later caller: this is the
/// one lock policy of the workspace (the tidy test checks that nobody `expect`s a lock).
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Exponential backoff with full jitter: a random duration in `[base, min(cap, base * 2^attempt)]`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let max = base.saturating_mul(1u32 << attempt.min(20)).min(cap).max(base);
    let span = (max - base).as_micros() as u64;
    let extra = if span == 0 { 0 } else { random_u64() % (span + 1) };
    base + Duration::from_micros(extra)
}

/// Microseconds since the Unix epoch: the clock that seeds message ids.
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_differ() {
        let a: Vec<u64> = (0..100).map(|_| random_u64()).collect();
        let mut b = a.clone();
        b.sort_unstable();
        b.dedup();
        assert_eq!(a.len(), b.len());
    }

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        for attempt in 0..40 {
            let d = backoff(attempt, base, cap);
            assert!(d >= base && d <= cap, "{attempt}: {d:?}");
        }
        assert!(backoff(0, base, cap) <= Duration::from_millis(200));
    }
}
