//! What every chaos worker connects with: the run's settings, the store and bus (busmq's
//! default timeouts and backoff, plus `WAIT` for the `+wait` modes), the consume options and an
//! attach that retries while the store settles. Shared by the in-process workers, the child
//! processes, the service mode and the WAIT cost measurement.

use super::deploy::{WAIT_REPLICAS, WAIT_TIMEOUT};
use busmq_core::{Bus, ConsumeOptions, Queue, ReliableOptions};
use busmq_redis::RedisStore;
use std::time::Duration;
use tokio::time::Instant;

/// What every worker of a run connects with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) url: String,
    pub(crate) namespace: String,
    pub(crate) visibility: Duration,
    /// Print every bus state event with its time (`--trace`), to see what a recovery waited on.
    pub(crate) trace: bool,
}

/// A store with busmq's default timeouts and backoff (what users get), plus `WAIT` for the
/// `+wait` modes.
pub(crate) fn store(url: &str, namespace: &str, wait: bool) -> Result<RedisStore, String> {
    let mut builder = RedisStore::builder().url(url).namespace(namespace);
    if wait {
        builder = builder.replicas_ack(WAIT_REPLICAS, WAIT_TIMEOUT);
    }
    builder.build().map_err(|e| e.to_string())
}

pub(crate) async fn online_bus(store: RedisStore) -> Result<Bus, String> {
    let bus = Bus::new(store);
    bus.connect().await.map_err(|e| e.to_string())?;
    bus.wait_online(Duration::from_secs(30)).await.map_err(|e| e.to_string())?;
    Ok(bus)
}

/// Consumers hold at most this many taken, unhandled messages: small enough that a stalled
/// consumer leaves a backlog in Redis (where a failover can lose it), large enough to batch.
const PREFETCH: u32 = 16;

pub(crate) fn consume_options(reliable: bool, visibility: Duration) -> ConsumeOptions {
    let options = ConsumeOptions::new().prefetch(PREFETCH);
    if reliable {
        options.reliable(ReliableOptions {
            visibility_timeout: visibility,
            ..ReliableOptions::default()
        })
    } else {
        options
    }
}

/// Attaches, retrying while the store settles.
pub(crate) async fn attach(queue: &Queue) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match queue.attach().await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("attach: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
