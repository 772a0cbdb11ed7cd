//! Connecting to a Redis Cluster loads busmq's scripts on every master, each master addressed
//! by name (one pipeline per master, `session/cluster.rs`), rather than with one fan-out per
//! script: the redis crate's cluster driver can leave a fan-out's per-node requests unsent
//! until its response timeout, which made about one connect in 160 take 5 s longer.

mod common;

use busmq_testkit::cluster::{RedisCluster, require_cli_or_skip};
use busmq_testkit::redis::require_or_skip;

/// `number_of_cached_scripts` from `INFO memory` on node `index`.
async fn cached_scripts(cluster: &RedisCluster, index: usize) -> u64 {
    let info = cluster.node_command(index, &["INFO", "memory"]).await.expect("INFO memory");
    let text = info.text().expect("INFO is text");
    text.lines()
        .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number_of_cached_scripts in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_loads_every_script_on_every_master() {
    let test = "connecting_loads_every_script_on_every_master";
    if require_or_skip(test).is_none() || !require_cli_or_skip(test) {
        return;
    }
    let cluster = RedisCluster::builder().start().await.expect("the cluster starts");
    let masters: Vec<usize> = cluster
        .topology()
        .await
        .expect("CLUSTER NODES")
        .into_iter()
        .filter(|n| n.master && !n.slots.is_empty())
        .map(|n| n.index)
        .collect();
    assert_eq!(masters.len(), 3, "three masters serve the slots");
    for &m in &masters {
        assert_eq!(cached_scripts(&cluster, m).await, 0, "a fresh master has no script");
    }

    let store = common::store_with(common::builder([cluster.url()])).await;
    let loaded: Vec<u64> =
        futures::future::join_all(masters.iter().map(|&m| cached_scripts(&cluster, m))).await;
    assert!(loaded[0] > 0, "scripts are loaded: {loaded:?}");
    assert!(loaded.iter().all(|&n| n == loaded[0]), "the same scripts on every master: {loaded:?}");
    common::stop(&store).await;
}
