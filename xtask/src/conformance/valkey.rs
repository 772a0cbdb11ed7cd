//! The `valkey` and `valkey-cluster` rows of `cargo xtask conformance`: every case against
//! `valkey-server` processes (one server, and a six-node cluster created with `valkey-cli`),
//! found through `$BUSMQ_VALKEY_SERVER` / `$BUSMQ_VALKEY_CLI` or `PATH`. As for Redis, a
//! missing binary skips the rows, and fails the run with `BUSMQ_REQUIRE_REDIS=1` (CI).

use busmq_testkit::cluster::{RedisCluster, RedisClusterBuilder, VALKEY_CLI_ENV, valkey_cli};
use busmq_testkit::redis::{
    RedisServer, RedisServerBuilder, VALKEY_SERVER_ENV, require_binary_or_skip, valkey_available,
};
use busmq_testkit::{Backend, FnBackend, SharedCluster, SharedServers};
use std::sync::{Arc, OnceLock};

/// The single-server row.
pub(super) const ROW: &str = "valkey";
/// The cluster row.
pub(super) const CLUSTER_ROW: &str = "valkey-cluster";

fn server() -> RedisServerBuilder {
    RedisServer::builder().binary(valkey_available().expect("checked before"))
}

fn cluster_builder() -> RedisClusterBuilder {
    RedisCluster::builder()
        .binary(valkey_available().expect("checked before"))
        .cli(valkey_cli().expect("checked before"))
}

/// Whether `valkey-server` (and, for a cluster, `valkey-cli`) is there; `Err` says what is
/// missing (the row is then skipped, or the run fails when Redis tests are required).
fn binaries(row: &str, cli: bool) -> Result<(), String> {
    if require_binary_or_skip(row, VALKEY_SERVER_ENV, "valkey-server").is_none() {
        return Err("valkey-server is not installed".into());
    }
    if cli && require_binary_or_skip(row, VALKEY_CLI_ENV, "valkey-cli").is_none() {
        return Err("valkey-cli is not installed".into());
    }
    Ok(())
}

/// The `valkey` row: one `valkey-server`.
pub(super) fn backend(model_cases: u32) -> Arc<dyn Backend> {
    static SERVER: OnceLock<Option<SharedServers>> = OnceLock::new();
    let missing = binaries(ROW, false).err();
    let servers = missing.is_none().then(|| SharedServers::get_with(1, &SERVER, server)).flatten();
    let backend = FnBackend::new(ROW, move || {
        let urls = servers.expect("available").urls().to_vec();
        Arc::new(busmq_redis::RedisStore::from_urls(urls).expect("valid urls")) as _
    });
    Arc::new(backend.model_cases(model_cases).unavailable_because(missing))
}

/// The `valkey-cluster` row: six `valkey-server` nodes (three masters, three replicas).
pub(super) fn cluster(model_cases: u32) -> Arc<dyn Backend> {
    static CLUSTER: OnceLock<Option<SharedCluster>> = OnceLock::new();
    let missing = binaries(CLUSTER_ROW, true).err();
    let cluster =
        missing.is_none().then(|| SharedCluster::get_with(&CLUSTER, cluster_builder)).flatten();
    let backend = FnBackend::new(CLUSTER_ROW, move || {
        let url = cluster.expect("available").url().to_string();
        Arc::new(busmq_redis::RedisStore::open(url).expect("valid url")) as _
    });
    Arc::new(backend.model_cases(model_cases).unavailable_because(missing))
}
