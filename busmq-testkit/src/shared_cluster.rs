//! One Redis Cluster shared by every case of one test binary (or one xtask run): started once,
//! on a thread of its own so that it belongs to no test's runtime, and killed when the process
//! exits.

use crate::cluster::{RedisCluster, RedisClusterBuilder, require_cli_or_skip};
use crate::redis::require_or_skip;
use std::sync::OnceLock;

/// A running cluster and its URL.
#[derive(Debug)]
pub struct SharedCluster {
    url: String,
    _cluster: RedisCluster,
}

impl SharedCluster {
    /// Starts the cluster (3 masters, 3 replicas) the first time it is called for `slot`;
    /// `None` (after one skip line) when `redis-server` is missing and not required.
    pub fn get(slot: &'static OnceLock<Option<SharedCluster>>) -> Option<&'static SharedCluster> {
        Self::get_with(slot, RedisCluster::builder)
    }

    /// Like [`SharedCluster::get`] with the cluster from `builder`. When `builder` names its
    /// client ([`RedisClusterBuilder::cli`]), the caller has checked that it and the server
    /// binary exist.
    pub fn get_with(
        slot: &'static OnceLock<Option<SharedCluster>>,
        builder: fn() -> RedisClusterBuilder,
    ) -> Option<&'static SharedCluster> {
        slot.get_or_init(|| {
            if builder().explicit_cli().is_none() {
                require_or_skip("the shared redis cluster")?;
                if !require_cli_or_skip("the shared redis cluster") {
                    return None;
                }
            }
            let cluster = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(builder().start()).expect("the cluster starts")
            })
            .join()
            .expect("the cluster starts");
            Some(SharedCluster { url: cluster.url(), _cluster: cluster })
        })
        .as_ref()
    }

    /// The cluster's URL (`redis+cluster://...`).
    pub fn url(&self) -> &str {
        &self.url
    }
}
