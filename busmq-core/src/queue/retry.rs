//! The retry policy of reliable consumers and workers (SPEC P9): how long a failed, nacked or
//! dropped delivery waits before it is delivered again, from its delivery count.

use crate::error::{Error, Result};
use std::time::Duration;

/// The longest retry delay: a policy's `max` above it is refused, a longer `nack_after` is cut
/// to it (deadlines must stay far inside the clock's and the store's number range).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

/// When a reliable delivery that was not processed comes back (SPEC P9): exponential backoff
/// with jitter, capped. The delay after the `n`-th delivery is
/// `min(initial * factor^(n-1), max)`, shortened by a random fraction of up to `jitter` of it
/// (so that many messages failing together do not come back together), and never longer than
/// `max`.
///
/// [`RetryPolicy::default`] is that backoff with 1 s initial delay, factor 2, at most 5 min
/// and 20 % jitter: what a [`Worker`](crate::Worker) uses unless told otherwise.
/// [`ReliableOptions`](crate::ReliableOptions) defaults to [`RetryPolicy::none`] instead, the
/// immediate redelivery consumers had before policies existed: code that nacks to hand a
/// message to another consumer at once (or tests that drop deliveries on purpose) keeps
/// working, and a consumer opts into backoff with
/// [`ReliableOptions::retry`](crate::ReliableOptions::retry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    initial: Duration,
    factor: f64,
    max: Duration,
    jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(300))
            .with_jitter(0.2)
    }
}

impl Eq for RetryPolicy {}

impl RetryPolicy {
    /// No delay: a delivery that was not processed is given back at once (the behaviour
    /// before retry policies; the default of [`ReliableOptions`](crate::ReliableOptions)).
    pub const fn none() -> Self {
        RetryPolicy { initial: Duration::ZERO, factor: 1.0, max: Duration::ZERO, jitter: 0.0 }
    }

    /// `initial` after the first delivery, multiplied by `factor` after each further one, at
    /// most `max`; no jitter (add it with [`RetryPolicy::with_jitter`]).
    pub fn exponential(initial: Duration, factor: f64, max: Duration) -> Self {
        RetryPolicy { initial, factor, max, jitter: 0.0 }
    }

    /// The same delay after every delivery.
    pub fn fixed(delay: Duration) -> Self {
        RetryPolicy::exponential(delay, 1.0, delay)
    }

    /// Shortens each delay by a random fraction of it between 0 and `jitter` (0.0..=1.0).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether this policy gives deliveries back at once.
    pub fn is_none(&self) -> bool {
        self.max.is_zero() || self.initial.is_zero()
    }

    /// The delay before a message that was delivered `deliveries` times (this delivery
    /// included) comes back, with its random jitter; zero for [`RetryPolicy::none`].
    pub fn delay(&self, deliveries: u32) -> Duration {
        let base = self.base(deliveries);
        if self.jitter <= 0.0 || base.is_zero() {
            return base;
        }
        let random = (crate::util::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - self.jitter * random)
    }

    /// The shortest delay [`RetryPolicy::delay`] can give for `deliveries` (its jitter at
    /// the full fraction).
    pub fn min_delay(&self, deliveries: u32) -> Duration {
        self.base(deliveries).mul_f64(1.0 - self.jitter.clamp(0.0, 1.0))
    }

    fn base(&self, deliveries: u32) -> Duration {
        if self.is_none() {
            return Duration::ZERO;
        }
        let exponent = deliveries.saturating_sub(1).min(1024) as i32;
        let secs = self.initial.as_secs_f64() * self.factor.powi(exponent);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            return self.max;
        }
        Duration::from_secs_f64(secs).min(self.max)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(Error::invalid_option("retry", "factor must be finite and at least 1"));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::invalid_option("retry", "jitter must be between 0.0 and 1.0"));
        }
        if self.max < self.initial {
            return Err(Error::invalid_option("retry", "max must not be less than initial"));
        }
        if self.max > MAX_RETRY_DELAY {
            return Err(Error::invalid_option("retry", "max must be at most 30 days"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn grows_by_the_factor_up_to_max() {
        let p = RetryPolicy::exponential(S, 2.0, 10 * S);
        let delays: Vec<_> = (1..=6).map(|n| p.delay(n)).collect();
        assert_eq!(delays, [S, 2 * S, 4 * S, 8 * S, 10 * S, 10 * S]);
        assert_eq!(p.delay(u32::MAX), 10 * S);
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let p = RetryPolicy::default();
        for n in 1..12 {
            let d = p.delay(n);
            assert!(d >= p.min_delay(n) && d <= p.base(n), "{n}: {d:?}");
        }
        assert_eq!(p.min_delay(1), Duration::from_millis(800));
        assert_eq!(p.base(20), Duration::from_secs(300));
    }

    #[test]
    fn none_is_immediate_and_bad_values_are_refused() {
        assert!(RetryPolicy::none().is_none());
        assert_eq!(RetryPolicy::none().delay(3), Duration::ZERO);
        assert!(RetryPolicy::exponential(S, 0.5, S).validate().is_err());
        assert!(RetryPolicy::default().with_jitter(1.5).validate().is_err());
        assert!(RetryPolicy::exponential(2 * S, 2.0, S).validate().is_err());
        assert!(RetryPolicy::default().validate().is_ok());
    }
}
