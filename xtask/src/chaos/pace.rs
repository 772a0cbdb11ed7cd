//! The pace of the chaos load: one step (a push, a request) every interval, numbered from 1, up
//! to a maximum, until the run says stop. Shared by the producers and the service requesters.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Runs `step(seq)` for `seq` in `1..=max`, one every `every` (a step that overruns delays the
/// next rather than bunching them), until `stop` turns true.
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
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        step(seq).await;
    }
}
