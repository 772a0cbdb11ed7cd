//! A Redis Sentinel deployment of real processes for failover tests: one master, replicas and
//! sentinels (`redis-server` and `redis-server --sentinel`) on free loopback ports, each in its
//! own directory with its own writable configuration file (sentinels rewrite theirs).
//!
//! [`SentinelSetBuilder::start`] returns once every sentinel sees every replica and every other
//! sentinel, so a failover can be elected at once. Helpers kill the master with SIGKILL, ask
//! for `SENTINEL FAILOVER`, wait for the sentinels to agree on a new master, restart a node and
//! wait until the set is whole again. Dropping the set kills every process.
//!
//! ```no_run
//! # async fn example() -> Result<(), busmq_testkit::redis::HarnessError> {
//! use busmq_testkit::sentinel::SentinelSet;
//! let mut set = SentinelSet::builder().start().await?;
//! let url = set.url(); // redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster
//! let old = set.kill_master().await?;
//! let new = set.wait_for_new_master(old).await?;
//! set.restart_node(old).await?;
//! # let _ = (url, new);
//! # Ok(())
//! # }
//! ```

mod builder;
mod resp;

pub use builder::SentinelSetBuilder;

pub use resp::{COMMAND_TIMEOUT, Resp, command};

use crate::redis::{HarnessError, RedisServer};
use std::time::{Duration, Instant};

fn err(what: impl Into<String>) -> HarnessError {
    HarnessError::new(what)
}

/// A running Sentinel deployment. Node 0 is the first master; which node is master later is
/// what [`SentinelSet::master_index`] asks the sentinels.
#[derive(Debug)]
pub struct SentinelSet {
    master_name: String,
    nodes: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    data_password: Option<String>,
    sentinel_password: Option<String>,
    ready_timeout: Duration,
}

impl SentinelSet {
    /// Options for a new set (1 master, 2 replicas, 3 sentinels, quorum 2).
    pub fn builder() -> SentinelSetBuilder {
        SentinelSetBuilder::default()
    }

    /// The master name the sentinels monitor.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The sentinels' addresses, `127.0.0.1:<port>` (their TLS ports in a TLS set).
    pub fn sentinel_addrs(&self) -> Vec<String> {
        let port = |s: &RedisServer| s.tls_port().unwrap_or(s.port());
        self.sentinels.iter().map(|s| format!("127.0.0.1:{}", port(s))).collect()
    }

    /// The URL of the group with both passwords:
    /// `redis+sentinel://[:<data password>@]<sentinels>/<master name>[?sentinel_password=..]`.
    pub fn url(&self) -> String {
        let creds = self.data_password.as_ref().map(|pw| format!(":{pw}@")).unwrap_or_default();
        let query = self
            .sentinel_password
            .as_ref()
            .map(|pw| format!("?sentinel_password={pw}"))
            .unwrap_or_default();
        let scheme = if self.nodes[0].tls_port().is_some() { "rediss" } else { "redis" };
        format!(
            "{scheme}+sentinel://{creds}{}/{}{query}",
            self.sentinel_addrs().join(","),
            self.master_name
        )
    }

    /// The data nodes' password, if any.
    pub fn data_password(&self) -> Option<&str> {
        self.data_password.as_deref()
    }

    /// The sentinels' password, if any.
    pub fn sentinel_password(&self) -> Option<&str> {
        self.sentinel_password.as_deref()
    }

    /// Data node `index` (0 was the first master).
    pub fn node(&self, index: usize) -> &RedisServer {
        &self.nodes[index]
    }

    /// How many data nodes there are.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Sentinel `index`.
    pub fn sentinel(&self, index: usize) -> &RedisServer {
        &self.sentinels[index]
    }

    /// Sentinel `index`, to kill or restart it.
    pub fn sentinel_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.sentinels[index]
    }

    /// Sends a command to data node `index` (with the data password).
    pub async fn node_command(&self, index: usize, args: &[&str]) -> Result<Resp, HarnessError> {
        command(self.nodes[index].port(), self.data_password.as_deref(), args).await
    }

    /// Sends a command to sentinel `index` (with the sentinel password).
    pub async fn sentinel_command(
        &self,
        index: usize,
        args: &[&str],
    ) -> Result<Resp, HarnessError> {
        command(self.sentinels[index].port(), self.sentinel_password.as_deref(), args).await
    }

    /// The master's port as the sentinels with the newest configuration epoch see it.
    pub async fn master_port(&self) -> Result<u16, HarnessError> {
        let mut best: Option<(u64, u16)> = None;
        let mut last = None;
        for i in 0..self.sentinels.len() {
            match self.sentinel_command(i, &["SENTINEL", "MASTER", &self.master_name]).await {
                Ok(reply) => {
                    let port = reply.field("port").and_then(|p| p.parse().ok());
                    let epoch = reply.field("config-epoch").and_then(|e| e.parse().ok());
                    if let Some(port) = port {
                        let epoch = epoch.unwrap_or(0);
                        if best.is_none_or(|(e, _)| epoch > e) {
                            best = Some((epoch, port));
                        }
                    } else {
                        last = Some(err(format!("sentinel {i} answered {reply:?}")));
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        match (best, last) {
            (Some((_, port)), _) => Ok(port),
            (None, Some(e)) => Err(e),
            (None, None) => Err(err("no sentinel")),
        }
    }

    /// The index of the current master among the data nodes.
    pub async fn master_index(&self) -> Result<usize, HarnessError> {
        let port = self.master_port().await?;
        self.index_of(port)
    }

    /// The port the sentinels name node `index` by (its TLS port in a TLS set).
    fn named_port(&self, index: usize) -> u16 {
        let node = &self.nodes[index];
        node.tls_port().unwrap_or(node.port())
    }

    fn index_of(&self, port: u16) -> Result<usize, HarnessError> {
        (0..self.nodes.len())
            .find(|i| self.named_port(*i) == port)
            .ok_or_else(|| err(format!("the sentinels name port {port}, which is no node of ours")))
    }

    /// Kills the current master with SIGKILL and returns its index. The sentinels notice after
    /// `down-after-milliseconds` and fail over; see [`SentinelSet::wait_for_new_master`].
    pub async fn kill_master(&mut self) -> Result<usize, HarnessError> {
        let index = self.master_index().await?;
        self.nodes[index].kill();
        Ok(index)
    }

    /// Asks a sentinel for a graceful failover (`SENTINEL FAILOVER`), trying the next sentinel
    /// when one refuses, and returns the index of the master at the time of the request.
    pub async fn failover(&self) -> Result<usize, HarnessError> {
        let old = self.master_index().await?;
        let deadline = Instant::now() + self.ready_timeout;
        let mut i = 0;
        loop {
            let reply = self
                .sentinel_command(
                    i % self.sentinels.len(),
                    &["SENTINEL", "FAILOVER", &self.master_name],
                )
                .await;
            match reply {
                Ok(Resp::Simple(_)) => return Ok(old),
                // INPROG / NOGOODSLAVE: a previous failover is still settling; try again.
                other if Instant::now() < deadline => {
                    let _ = other;
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(reply) => return Err(err(format!("SENTINEL FAILOVER answered {reply:?}"))),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the sentinels name another master than node `old` and that node says it is
    /// a master. Returns its index.
    pub async fn wait_for_new_master(&self, old: usize) -> Result<usize, HarnessError> {
        let old_port = self.named_port(old);
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if let Ok(port) = self.master_port().await {
                if port != old_port {
                    let index = self.index_of(port)?;
                    if self.role(index).await.as_deref() == Some("master") {
                        return Ok(index);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "no new master replaced node {old} (port {old_port}) within {:?}",
                    self.ready_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn role(&self, index: usize) -> Option<String> {
        let reply = self.node_command(index, &["ROLE"]).await.ok()?;
        reply.items().first()?.text()
    }

    /// Restarts data node `index` (killing it first if it runs). A node restarted after a
    /// failover comes back as a master of nothing; it is made a replica of the current master
    /// at once, which the sentinels would otherwise do only after their next 10-second INFO
    /// round.
    pub async fn restart_node(&mut self, index: usize) -> Result<(), HarnessError> {
        self.nodes[index].restart().await?;
        let master = self.master_port().await?;
        if master != self.named_port(index) {
            let port = master.to_string();
            let reply = self.node_command(index, &["REPLICAOF", "127.0.0.1", &port]).await?;
            if let Resp::Error(e) = reply {
                return Err(err(format!("REPLICAOF on node {index}: {e}")));
            }
        }
        Ok(())
    }

    /// Waits until the set is whole again: the sentinels agree on a master, every running node
    /// replicates from it, and no sentinel considers a running replica down. Call it between
    /// faults. (It does not wait for the sentinels' 10-second INFO round to report the
    /// replicas' links: a failover refreshes that information every second anyway.)
    pub async fn wait_healthy(&mut self) -> Result<(), HarnessError> {
        let running = self.nodes.iter_mut().map(|n| n.is_running()).filter(|r| *r).count();
        let replicas = running.saturating_sub(1);
        let deadline = Instant::now() + self.ready_timeout;
        // The sentinels' answer is read again every round: right after a failover (or while a
        // restarted node is converted) they may briefly name a node that is about to change.
        let mut last = String::from("no sentinel answered");
        loop {
            if let Ok(port) = self.master_port().await {
                let index = self.index_of(port)?;
                if self.role(index).await.as_deref() == Some("master") {
                    let online = self.online_replicas(index).await;
                    if online >= replicas {
                        break;
                    }
                    last =
                        format!("node {index} (port {port}) has {online} of {replicas} replicas");
                } else {
                    last = format!("the sentinels name node {index}, which is not a master");
                }
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "the set did not heal within {:?}: {last}",
                    self.ready_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_known(replicas, self.sentinels.len() - 1, false).await
    }

    /// How many replicas of node `index` are online (its `INFO replication`).
    async fn online_replicas(&self, index: usize) -> usize {
        let info = self.node_command(index, &["INFO", "replication"]).await;
        let text = info.ok().and_then(|r| r.text()).unwrap_or_default();
        text.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count()
    }

    /// Waits until the master on `port` has `replicas` replicas in sync.
    async fn wait_replicating(&self, port: u16, replicas: usize) -> Result<(), HarnessError> {
        let index = self.index_of(port)?;
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            let online = self.online_replicas(index).await;
            if online >= replicas {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "node {index} has {online} of {replicas} replicas online after {:?}",
                    self.ready_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every sentinel sees `replicas` replicas that are up (and, with `link_ok`,
    /// report a working link to the master) and `others` other sentinels.
    async fn wait_known(
        &self,
        replicas: usize,
        others: usize,
        link_ok: bool,
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + self.ready_timeout;
        let name = self.master_name.clone();
        for i in 0..self.sentinels.len() {
            loop {
                let seen_replicas = self
                    .sentinel_command(i, &["SENTINEL", "REPLICAS", &name])
                    .await
                    .map(|r| {
                        r.items()
                            .iter()
                            .filter(|s| {
                                s.field("flags").is_some_and(|f| f == "slave")
                                    && (!link_ok
                                        || s.field("master-link-status").as_deref() == Some("ok"))
                            })
                            .count()
                    })
                    .unwrap_or(0);
                let seen_sentinels = self
                    .sentinel_command(i, &["SENTINEL", "SENTINELS", &name])
                    .await
                    .map(|r| r.items().len())
                    .unwrap_or(0);
                if seen_replicas >= replicas && seen_sentinels >= others {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(err(format!(
                        "sentinel {i} sees {seen_replicas}/{replicas} replicas and \
                         {seen_sentinels}/{others} sentinels after {:?}; its log:\n{}",
                        self.ready_timeout,
                        self.sentinels[i].log()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}
