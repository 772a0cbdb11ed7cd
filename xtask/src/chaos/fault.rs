//! The faults the checker knows, by name, and what each needs of the deployment and the
//! consumers (how each is injected is `faults.rs`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    ConsumerTaskKilled,
    ConsumerProcessKilled,
    ClientKill,
    RedisRestart,
    Partition,
    SlowConsumer,
    Failover,
    FailoverLag,
    ClusterFailover,
    ClusterReshard,
}

impl Fault {
    pub(crate) const ALL: [Fault; 10] = [
        Fault::ConsumerTaskKilled,
        Fault::ConsumerProcessKilled,
        Fault::ClientKill,
        Fault::RedisRestart,
        Fault::Partition,
        Fault::SlowConsumer,
        Fault::Failover,
        Fault::FailoverLag,
        Fault::ClusterFailover,
        Fault::ClusterReshard,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::ConsumerTaskKilled => "consumer-task-killed",
            Fault::ConsumerProcessKilled => "consumer-process-killed",
            Fault::ClientKill => "client-kill",
            Fault::RedisRestart => "redis-restart",
            Fault::Partition => "partition",
            Fault::SlowConsumer => "slow-consumer",
            Fault::Failover => "failover",
            Fault::FailoverLag => "failover-replica-lag",
            Fault::ClusterFailover => "cluster-failover",
            Fault::ClusterReshard => "cluster-reshard",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the fault needs the Sentinel deployment (else the plain one).
    pub(crate) fn needs_sentinel(self) -> bool {
        matches!(self, Fault::Failover | Fault::FailoverLag)
    }

    /// Whether the fault needs the Redis Cluster deployment.
    pub(crate) fn needs_cluster(self) -> bool {
        matches!(self, Fault::ClusterFailover | Fault::ClusterReshard)
    }

    /// Whether the deployment has replicas (so `WAIT` means something).
    pub(crate) fn has_replicas(self) -> bool {
        self.needs_sentinel() || self.needs_cluster()
    }

    /// Whether consumers must be separate processes (to be killed with SIGKILL).
    pub(crate) fn child_consumers(self) -> bool {
        self == Fault::ConsumerProcessKilled
    }
}
