//! Large messages (1 KB and 64 KB) through queue-1x1, in MB/s, next to a raw list moving the
//! same bytes. Batches shrink with the size so that a command stays around a megabyte, as a
//! careful raw client would do; busmq's producer bounds its batches by bytes itself.

use super::Env;
use super::baseline;
use super::produce::Producer;
use super::queue::{self, Flow};
use super::summary::Results;

const SIZES: &[(usize, &str, &str)] =
    &[(1024, "large-1k", "baseline-large-1k"), (65_536, "large-64k", "baseline-large-64k")];

/// Raw values per push: up to 100, about 1 MB per command.
fn raw_batch(size: usize) -> usize {
    (1 << 20) / size.max(1)
}

/// busmq pushes in flight: up to 256, about 4 MB.
fn push_window(size: usize) -> usize {
    ((4 << 20) / size.max(1)).clamp(16, 256)
}

/// Messages for about `secs` at `rate`, in thousands (large messages are few).
fn count(rate: f64, secs: f64) -> u64 {
    ((rate * secs / 1_000.0).ceil().max(1.0) as u64 * 1_000).min(1_000_000)
}

pub(crate) async fn run(env: &Env, results: &mut Results) {
    for &(size, name, base) in SIZES {
        let raw = baseline::Shape { size, batch: raw_batch(size).min(100), window: 3 };
        let flow = Flow { producer: Producer::Push { window: push_window(size) }, size, queues: 1 };
        let warm = 2_000;
        let mut n = None;
        if env.wants(base) {
            match baseline::list(&env.server, raw, warm).await {
                Ok(sample) => n = Some(count(sample.rate(), env.budget.secs)),
                Err(error) => results.record(base, Err(format!("warm-up: {error}"))),
            }
        }
        if env.wants(name) {
            match queue::fan(&env.redis(), Some(&env.server), flow, warm).await {
                Ok(sample) => {
                    // The smaller count for both, so that the two move the same bytes.
                    let own = count(sample.rate(), env.budget.secs);
                    n = Some(n.map_or(own, |raw: u64| raw.min(own)));
                }
                Err(error) => results.record(name, Err(format!("warm-up: {error}"))),
            }
        }
        let Some(n) = n else {
            continue;
        };
        for _ in 0..env.budget.rounds {
            if env.wants(base) && !results.failed(base) {
                results.record(base, baseline::list(&env.server, raw, n).await);
            }
            if env.wants(name) && !results.failed(name) {
                results.record(name, queue::fan(&env.redis(), Some(&env.server), flow, n).await);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_the_size() {
        assert_eq!(raw_batch(1024).min(100), 100);
        assert_eq!(raw_batch(65_536), 16);
        assert_eq!(push_window(1024), 256);
        assert_eq!(push_window(65_536), 64);
    }
}
