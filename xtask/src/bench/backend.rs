//! The stores busmq scenarios run on. Every Redis bus gets its own `RedisStore` (its own script
//! and pub/sub connections), as separate producer and consumer processes would; in-memory buses
//! share one `Memory`, like clients of one server. Buses use the raw codec, so a 100-byte
//! message is stored as exactly those 100 bytes.

use super::support::{Ctx, HUNG, Progress, deadline};
use busmq_core::{Bus, Codec};
use busmq_memory::Memory;
use busmq_redis::RedisStore;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Redis(String),
    Memory(Memory),
}

impl Backend {
    /// A new, connected, online bus.
    pub(crate) async fn bus(&self) -> Result<Bus, String> {
        let builder = match self {
            Backend::Redis(url) => {
                Bus::builder(RedisStore::builder().url(url.as_str()).build().ctx("redis store")?)
            }
            Backend::Memory(memory) => Bus::builder(memory.store()),
        };
        let bus = builder.codec(Codec::Raw).build().ctx("bus")?;
        bus.connect().await.ctx("bus connect")?;
        bus.wait_online(Duration::from_secs(10)).await.ctx("bus online")?;
        Ok(bus)
    }
}

/// Disconnects buses at the end of a measurement, reporting only the first failure.
pub(crate) async fn disconnect(buses: &[&Bus]) -> Result<(), String> {
    let mut first = Ok(());
    for bus in buses {
        let result = tokio::time::timeout(Duration::from_secs(20), bus.disconnect()).await;
        let result = match result {
            Ok(r) => r.ctx("bus disconnect"),
            Err(_) => Err("bus disconnect hung for 20 s".to_string()),
        };
        if first.is_ok() {
            first = result;
        }
    }
    first
}

/// Runs a measurement of `n` messages on two fresh buses of `backend` (a sending side and a
/// receiving side, as two processes would be) under the hang deadline, naming `what` hung, then
/// disconnects both whatever happened; the measurement's error is reported before the
/// disconnect's.
pub(crate) async fn on_two_buses<F, Fut, T>(
    backend: &Backend,
    what: &str,
    n: u64,
    measure: F,
) -> Result<T, String>
where
    F: FnOnce(Bus, Bus, Arc<Progress>) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let progress = Progress::new();
    let near = backend.bus().await?;
    let far = backend.bus().await?;
    let run =
        deadline(HUNG, what, &progress, n, measure(near.clone(), far.clone(), progress.clone()));
    let result = Box::pin(run).await;
    let disconnected = disconnect(&[&near, &far]).await;
    let sample = result?;
    disconnected?;
    Ok(sample)
}
