//! The opt-in sampler of `busmq_queue_depth`: every period it asks the store for the ready
//! count of each queue attached through the bus (one `stat` per queue, which is why it is off
//! unless `BusBuilder::depth_sampling` asks for it). Queues that share a label value (`_other`,
//! or every queue when the label is off) report their sum.

use super::handles::depth_gauge;
use super::labels::QueueLabels;
use crate::name::QueueName;
use crate::store::StoreHandle;
use metrics::{Gauge, SharedString};
use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// What the sampler reads: implemented by the bus, so that this module does not depend on it.
pub(crate) trait DepthSource: Send + Sync {
    /// The distinct queues attached through the bus now.
    fn attached(&self) -> Vec<QueueName>;
    /// The store to ask.
    fn store(&self) -> &StoreHandle;
    /// The bus's queue label guard.
    fn labels(&self) -> &QueueLabels;
}

/// Samples until the bus is gone (or the task is aborted at disconnect).
pub(crate) async fn run(source: Weak<dyn DepthSource>, every: Duration) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut gauges: HashMap<Option<SharedString>, Gauge> = HashMap::new();
    loop {
        tick.tick().await;
        let Some(source) = source.upgrade() else { return };
        let store = source.store().clone();
        // label -> (sum, whether every queue of the label answered)
        let mut depths: HashMap<Option<SharedString>, (u64, bool)> = HashMap::new();
        for name in source.attached() {
            let label = source.labels().value(&name);
            let sum = depths.entry(label).or_insert((0, true));
            match store.stat(&name).await {
                Ok(stat) => sum.0 += stat.count,
                Err(error) => {
                    // A partial sum would look like a drop in depth: skip this label this time.
                    sum.1 = false;
                    tracing::debug!(queue = name.as_str(), error = %error, "depth sample failed");
                }
            }
        }
        drop(source);
        for (label, (depth, complete)) in depths {
            if complete {
                let gauge = gauges
                    .entry(label.clone())
                    .or_insert_with(|| depth_gauge(label, store.backend()));
                gauge.set(depth as f64);
            }
        }
    }
}
