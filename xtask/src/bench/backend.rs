//! The stores busmq scenarios run on. Every Redis bus gets its own `RedisStore` (its own script
//! and pub/sub connections), as separate producer and consumer processes would; in-memory buses
//! share one `Memory`, like clients of one server. Buses use the raw codec, so a 100-byte
//! message is stored as exactly those 100 bytes.

use super::support::Ctx;
use busmq_core::{Bus, Codec};
use busmq_memory::Memory;
use busmq_redis::RedisStore;
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
