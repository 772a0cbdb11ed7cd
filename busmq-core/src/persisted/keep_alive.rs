//! The keep-alive of a persisted object (node busmq's `persist(ttl)`): a task that touches the
//! object every `ttl / 3` while its guard lives.

use crate::context::BusInner;
use crate::name::ObjectName;
use crate::observability::log_error;
use crate::store::ObjectOp;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Keeps a persisted object alive while it lives: made by
/// [`Persisted::keep_alive`](crate::Persisted::keep_alive); dropping it stops the touches (the
/// object then expires `ttl` after the last one, unless saved or touched again).
#[derive(Debug)]
#[must_use = "the object is kept alive only while the guard lives"]
pub struct KeepAlive {
    task: JoinHandle<()>,
}

impl KeepAlive {
    pub(crate) fn start(bus: Arc<BusInner>, name: ObjectName, ttl: Duration) -> KeepAlive {
        let every = (ttl / 3).max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            // A late tick must not be followed by a burst: one touch covers the whole ttl.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let touched = match bus.ensure_connected() {
                    Ok(()) => bus.store.object(&name, ObjectOp::Touch(ttl)).await.map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = touched {
                    log_error("busmq could not keep a persisted object alive", None, &e);
                }
            }
        });
        KeepAlive { task }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}
