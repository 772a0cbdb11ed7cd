//! The shared conformance suite (busmq-testkit) against a Redis Cluster of six nodes (three
//! masters, three replicas), started once for this test binary.

use busmq_testkit::{FnBackend, SharedCluster};
use std::sync::{Arc, OnceLock};

fn cluster(cluster: Option<&'static SharedCluster>) -> impl busmq_testkit::Backend {
    let missing = cluster.is_none().then(|| "redis-server is not installed".to_string());
    FnBackend::new("redis-cluster", move || {
        let url = cluster.expect("available").url().to_string();
        Arc::new(busmq_redis::RedisStore::open(url).expect("valid url")) as _
    })
    // The property models run real time here: fewer sequences than on memory.
    .model_cases(8)
    .unavailable_because(missing)
}

static CLUSTER: OnceLock<Option<SharedCluster>> = OnceLock::new();
busmq_testkit::conformance!(cluster(SharedCluster::get(&CLUSTER)));
