//! The Redis Cluster of cluster-100: six nodes (three masters, three replicas) started through
//! the testkit harness and pinned where redis-server is, so that both Redis setups get the same
//! CPUs and the ratio shows what the cluster costs, not what extra cores buy.

use super::pin::Plan;
use busmq_testkit::cluster::{RedisCluster, redis_cli};

#[derive(Debug)]
pub(crate) struct BenchCluster {
    cluster: RedisCluster,
}

impl BenchCluster {
    pub(crate) async fn start(plan: &Plan) -> Result<BenchCluster, String> {
        if redis_cli().is_none() {
            return Err("redis-cli is missing (apt: redis-tools)".into());
        }
        let cluster = RedisCluster::builder()
            .start()
            .await
            .map_err(|e| format!("starting the cluster: {e}"))?;
        for i in 0..cluster.node_count() {
            let pid = cluster.node(i).pid().ok_or("a cluster node has no pid")?;
            plan.pin_redis(pid)?;
        }
        Ok(BenchCluster { cluster })
    }

    pub(crate) fn url(&self) -> String {
        self.cluster.url()
    }
}
