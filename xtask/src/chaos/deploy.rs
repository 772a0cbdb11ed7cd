//! The Redis deployments a scenario runs against: a plain server with persistence behind the
//! fault proxy (every bus connects through the proxy, so partitions cut them all off), or a
//! Sentinel set (one master, two replicas, three sentinels), or a Redis Cluster (three masters
//! with two replicas each).

use busmq_testkit::cluster::RedisCluster;
use busmq_testkit::proxy::FaultProxy;
use busmq_testkit::redis::RedisServer;
use busmq_testkit::sentinel::{SentinelSet, command};
use std::time::Duration;

/// Replicas a `+wait` mode waits for.
pub(crate) const WAIT_REPLICAS: u32 = 1;
/// How long a `+wait` mode waits for them.
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_millis(1000);

#[derive(Debug)]
pub(crate) enum Deployment {
    Plain { server: RedisServer, proxy: FaultProxy },
    Sentinel { set: SentinelSet },
    Cluster { cluster: RedisCluster },
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Deployment {
    /// A plain server with the append-only file on (`appendfsync everysec`, the usual setting),
    /// behind a proxy.
    pub(crate) async fn plain() -> Result<Deployment, String> {
        let server = RedisServer::builder()
            .config("appendonly yes")
            .config("appendfsync everysec")
            .start()
            .await
            .map_err(text)?;
        let proxy = FaultProxy::start(server.port()).await.map_err(text)?;
        Ok(Deployment::Plain { server, proxy })
    }

    pub(crate) async fn sentinel() -> Result<Deployment, String> {
        // down-after-milliseconds 2000, not the harness's 1000: with five modes' workers on two
        // cores, a freshly promoted master sometimes answered the sentinels' PINGs late enough
        // to be failed over a second time after the fault window had ended, and every mode's
        // recovery then counted that second outage (one `.ci/run`: at-most-once+wait 11.5 s,
        // the failover scenario 46 s instead of 35 s). Recovery still counts from the moment
        // a new master is named; only the detection inside the window takes a second longer.
        let set = SentinelSet::builder()
            .timing(Duration::from_millis(2000), Duration::from_millis(5000))
            .start()
            .await
            .map_err(text)?;
        Ok(Deployment::Sentinel { set })
    }

    pub(crate) async fn cluster() -> Result<Deployment, String> {
        if busmq_testkit::cluster::redis_cli().is_none() {
            return Err("the cluster faults need redis-cli (apt: redis-tools)".into());
        }
        // Two replicas per master, as the Sentinel set has: after a failover the new master
        // still has a replica, so `WAIT 1` keeps working without waiting for the old one.
        let cluster = RedisCluster::builder().shape(3, 2).start().await.map_err(text)?;
        Ok(Deployment::Cluster { cluster })
    }

    /// The URL every bus connects with.
    pub(crate) fn url(&self) -> String {
        match self {
            Deployment::Plain { proxy, .. } => proxy.url(None),
            Deployment::Sentinel { set } => set.url(),
            Deployment::Cluster { cluster } => cluster.url(),
        }
    }

    /// The port of the node that holds the data now.
    async fn master_port(&self) -> Result<u16, String> {
        match self {
            Deployment::Plain { server, .. } => Ok(server.port()),
            Deployment::Sentinel { set } => set.master_port().await.map_err(text),
            Deployment::Cluster { .. } => Err("a cluster has several masters".into()),
        }
    }

    /// `CLIENT KILL` of every ordinary and pub/sub connection on the master.
    pub(crate) async fn client_kill(&self) -> Result<(), String> {
        let port = self.master_port().await?;
        for kind in ["normal", "pubsub"] {
            command(port, None, &["CLIENT", "KILL", "TYPE", kind]).await.map_err(text)?;
        }
        Ok(())
    }

    /// SIGKILL of the plain server, `outage` without it, then a restart on the same port with
    /// the same data directory.
    pub(crate) async fn restart(&mut self, outage: Duration) -> Result<(), String> {
        match self {
            Deployment::Plain { server, .. } => {
                server.kill();
                tokio::time::sleep(outage).await;
                server.restart().await.map_err(text)
            }
            Deployment::Sentinel { .. } | Deployment::Cluster { .. } => {
                Err("restart is a fault of the plain deployment".into())
            }
        }
    }

    pub(crate) fn proxy(&self) -> Result<&FaultProxy, String> {
        match self {
            Deployment::Plain { proxy, .. } => Ok(proxy),
            Deployment::Sentinel { .. } | Deployment::Cluster { .. } => {
                Err("only the plain deployment has a proxy".into())
            }
        }
    }

    pub(crate) fn sentinels(&mut self) -> Result<&mut SentinelSet, String> {
        match self {
            Deployment::Sentinel { set } => Ok(set),
            _ => Err("only the sentinel deployment has sentinels".into()),
        }
    }

    pub(crate) fn cluster_mut(&mut self) -> Result<&mut RedisCluster, String> {
        match self {
            Deployment::Cluster { cluster } => Ok(cluster),
            _ => Err("only the cluster deployment is a cluster".into()),
        }
    }
}
