//! Small helpers shared by the core: random ids and jittered backoff without an extra crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static STATE: AtomicU64 = AtomicU64::new(0);

/// A random-enough u64 for ids and jitter (splitmix64 over time, a counter and an address).
/// Not for cryptography.
pub fn random_u64() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let local = 0u8;
    let seed = (nanos as u64) ^ ((&local as *const u8 as u64).rotate_left(32));
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
