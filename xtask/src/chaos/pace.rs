//! The pace of the chaos load: one step (a push, a request) every interval, numbered from 1, up
//! to a maximum, until the run says stop. Shared by the producers and the service requesters.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Runs `step(seq)` for `seq` in `1..=max`, one every `every` (a step that overruns delays the
/// next rather than bunching them), until `stop` turns true or its sender is gone.
pub(super) async fn paced<F, Fut>(
    every: Duration,
    max: u64,
    mut stop: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for seq in 1..=max {
        tokio::select! {
            _ = tick.tick() => {}
            // A sender gone without saying stop is a stop too (else this would spin).
            changed = stop.changed() => if changed.is_err() { break },
        }
        if *stop.borrow() {
            break;
        }
        step(seq).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::time::timeout;

    #[tokio::test(start_paused = true)]
    async fn steps_are_paced_and_end_with_a_stop_or_without_a_sender() {
        let steps = AtomicU64::new(0);
        let count = |_| async { _ = steps.fetch_add(1, Ordering::Relaxed) };
        let (stop_tx, stop) = watch::channel(false);
        let every = Duration::from_millis(10);
        let pacing = paced(every, 1_000, stop, count);
        let stopping = async {
            // Steps at 0, 10, 20 and 30 ms.
            tokio::time::sleep(Duration::from_millis(35)).await;
            stop_tx.send_replace(true);
        };
        tokio::join!(pacing, stopping);
        assert_eq!(steps.load(Ordering::Relaxed), 4);
        let (gone, stop) = watch::channel(false);
        drop(gone);
        let orphan = paced(Duration::from_secs(3600), 1_000, stop, count);
        timeout(Duration::from_secs(5), orphan).await.expect("no stop sender");
        // The first tick is due at once too: at most that one step.
        assert!(steps.load(Ordering::Relaxed) <= 5);
    }
}
