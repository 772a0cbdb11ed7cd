//! Latency percentiles: a log-bucket histogram of nanosecond samples (HDR-like: 128 buckets per
//! power of two, so a percentile is off by less than 0.4%), which keeps millions of samples in a
//! few kilobytes and merges across tasks and rounds.

use std::time::Duration;

/// Buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn index(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exp = u64::from(63 - value.leading_zeros() - SUB_BITS);
    ((exp + 1) * SUB + ((value >> exp) - SUB)) as usize
}

fn lowest(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let exp = index / SUB - 1;
    (index % SUB + SUB) << exp
}

impl Histogram {
    pub(crate) fn record_ns(&mut self, value: u64) {
        let i = index(value);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub(crate) fn record(&mut self, value: Duration) {
        self.record_ns(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX));
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The value below which a fraction `q` of the samples fall (the middle of its bucket,
    /// never above the largest sample), or `None` without samples.
    pub(crate) fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, next) = (lowest(i), lowest(i + 1));
                return Some((low + (next - low) / 2).min(self.max));
            }
        }
        Some(self.max)
    }

    /// [`Histogram::quantile_ns`] in microseconds.
    pub(crate) fn quantile_us(&self, q: f64) -> Option<f64> {
        self.quantile_ns(q).map(|ns| ns as f64 / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for i in 0..5_000 {
            assert_eq!(index(lowest(i)), i);
            assert_eq!(index(lowest(i + 1) - 1), i);
            assert!(lowest(i) < lowest(i + 1));
        }
        assert!(index(u64::MAX) < 8_000);
    }

    #[test]
    fn quantiles_are_within_half_a_percent() {
        let mut h = Histogram::default();
        for v in 1..=1_000_000u64 {
            h.record_ns(v);
        }
        for (q, exact) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.999, 999_000.0)] {
            let got = h.quantile_ns(q).unwrap() as f64;
            assert!((got - exact).abs() / exact < 0.005, "q {q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile_ns(1.0), Some(1_000_000));
    }

    #[test]
    fn small_values_are_exact_and_merge_adds_up() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        for v in [3, 3, 3, 100] {
            a.record_ns(v);
        }
        b.record_ns(7);
        a.merge(&b);
        assert_eq!(a.count(), 5);
        assert_eq!(a.quantile_ns(0.5), Some(3));
        assert_eq!(a.quantile_ns(0.8), Some(7));
        assert_eq!(Histogram::default().quantile_ns(0.5), None);
    }
}
