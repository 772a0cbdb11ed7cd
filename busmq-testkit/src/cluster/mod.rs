//! A Redis Cluster of real processes for the cluster tests: by default six `redis-server`
//! nodes (three masters, three replicas) on free loopback ports, each in its own directory with
//! its own `nodes.conf`, created with `redis-cli --cluster create ... --cluster-replicas 1`.
//!
//! [`RedisClusterBuilder::start`] returns once every node reports `cluster_state:ok` and every replica
//! is in sync. Helpers kill a master with SIGKILL and wait for its replica to take over, restart
//! a node, move one slot (with its keys, in one `MIGRATE`) or reshard with `redis-cli`.
//! Dropping the cluster kills every process.
//!
//! ```no_run
//! # async fn example() -> Result<(), busmq_testkit::redis::HarnessError> {
//! use busmq_testkit::cluster::RedisCluster;
//! let mut cluster = RedisCluster::builder().start().await?;
//! let url = cluster.url(); // redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...
//! let slot = cluster.slot_of("busmq:{orders}:m").await?;
//! let old = cluster.kill_master_of(slot).await?;
//! let new = cluster.wait_for_failover(old).await?;
//! cluster.restart_node(old).await?;
//! # let _ = (url, new);
//! # Ok(())
//! # }
//! ```

use crate::redis::{HarnessError, RedisServer};
use crate::sentinel::{Resp, command};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod builder;
mod cli;
mod slots;

pub use builder::RedisClusterBuilder;
pub use cli::{CLI_ENV, VALKEY_CLI_ENV, redis_cli, require_cli_or_skip, valkey_cli};

fn err(what: impl Into<String>) -> HarnessError {
    HarnessError::new(what)
}

/// One node as `CLUSTER NODES` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The index of the node in the cluster (see [`RedisCluster::node`]).
    pub index: usize,
    /// The node id.
    pub id: String,
    /// Whether it is a master.
    pub master: bool,
    /// For a replica, the id of its master.
    pub master_id: Option<String>,
    /// Whether the cluster flags it as failed (`fail` or `fail?`).
    pub failed: bool,
    /// The slot ranges it serves (inclusive).
    pub slots: Vec<(u16, u16)>,
}

impl NodeInfo {
    /// Whether the node serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }
}

/// A running Redis Cluster. Which node masters which slots changes with failovers and
/// resharding; [`RedisCluster::topology`] asks the cluster.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    cli: PathBuf,
    ready_timeout: Duration,
    /// A slot of each master killed by [`RedisCluster::kill_master_of`].
    killed_slot: HashMap<usize, u16>,
}

impl RedisCluster {
    /// Options for a new cluster (3 masters with 1 replica each).
    pub fn builder() -> RedisClusterBuilder {
        RedisClusterBuilder::default()
    }

    /// `redis+cluster://127.0.0.1:p1,...` with every node as a seed (`rediss+cluster://` over
    /// the TLS ports of a cluster started with [`RedisClusterBuilder::tls`]).
    pub fn url(&self) -> String {
        let tls: Option<Vec<String>> = self
            .nodes
            .iter()
            .map(|n| n.tls_port().map(|port| format!("127.0.0.1:{port}")))
            .collect();
        match tls {
            Some(seeds) => format!("rediss+cluster://{}", seeds.join(",")),
            None => format!("redis+cluster://{}", self.seeds().join(",")),
        }
    }

    /// The nodes' addresses (`127.0.0.1:<port>`).
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect()
    }

    /// Node `index`.
    pub fn node(&self, index: usize) -> &RedisServer {
        &self.nodes[index]
    }

    /// How many nodes the cluster has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Sends a command to node `index`.
    pub async fn node_command(&self, index: usize, args: &[&str]) -> Result<Resp, HarnessError> {
        command(self.nodes[index].port(), None, args).await
    }

    async fn cli(&self, args: &[String]) -> Result<String, HarnessError> {
        let run = tokio::process::Command::new(&self.cli)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(self.ready_timeout, run)
            .await
            .map_err(|_| {
                err(format!("redis-cli {} took over {:?}", args.join(" "), self.ready_timeout))
            })?
            .map_err(|e| err(format!("cannot run {}: {e}", self.cli.display())))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || text.contains("[ERR]") {
            return Err(err(format!(
                "redis-cli {} failed ({}):\n{text}",
                args.join(" "),
                out.status
            )));
        }
        Ok(text)
    }

    /// The topology as the first running node that answers sees it.
    pub async fn topology(&self) -> Result<Vec<NodeInfo>, HarnessError> {
        let mut last = err("no node is running");
        for i in 0..self.nodes.len() {
            if self.nodes[i].pid().is_none() {
                continue;
            }
            match self.node_command(i, &["CLUSTER", "NODES"]).await {
                Ok(reply) => match reply.text() {
                    Some(text) => return self.parse_nodes(&text),
                    None => last = err(format!("CLUSTER NODES on node {i}: {reply:?}")),
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The topology as node `index` sees it (its `CLUSTER NODES`); `None` when it answers
    /// with something else (an error such as `LOADING`). Nodes may disagree for a while after a
    /// change, and a slot move waits until the masters agree (see `slots.rs`).
    pub async fn view_of(&self, index: usize) -> Result<Option<Vec<NodeInfo>>, HarnessError> {
        match self.node_command(index, &["CLUSTER", "NODES"]).await?.text() {
            Some(text) => self.parse_nodes(&text).map(Some),
            None => Ok(None),
        }
    }

    fn parse_nodes(&self, text: &str) -> Result<Vec<NodeInfo>, HarnessError> {
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return Err(err(format!("bad CLUSTER NODES line {line:?}")));
            }
            let port: u16 = f[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse().ok())
                .ok_or_else(|| err(format!("bad address in {line:?}")))?;
            let Some(index) = self.nodes.iter().position(|n| n.port() == port) else {
                continue;
            };
            let flags: Vec<&str> = f[2].split(',').collect();
            let mut slots = Vec::new();
            for range in &f[8..] {
                // Ranges being migrated look like "[5-<-id]"; only owned slots count.
                if range.starts_with('[') {
                    continue;
                }
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) => slots.push((a, b)),
                    _ => return Err(err(format!("bad slot range {range:?}"))),
                }
            }
            out.push(NodeInfo {
                index,
                id: f[0].to_string(),
                master: flags.contains(&"master"),
                master_id: (f[3] != "-").then(|| f[3].to_string()),
                failed: flags.iter().any(|x| x.starts_with("fail")),
                slots,
            });
        }
        Ok(out)
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub async fn slot_of(&self, key: &str) -> Result<u16, HarnessError> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].pid().is_none() {
                continue;
            }
            if let Ok(Resp::Int(n)) = self.node_command(i, &["CLUSTER", "KEYSLOT", key]).await {
                return u16::try_from(n).map_err(|_| err(format!("slot {n}?")));
            }
        }
        Err(err("no node answered CLUSTER KEYSLOT"))
    }

    /// The index of the master serving `slot`.
    pub async fn master_of(&self, slot: u16) -> Result<usize, HarnessError> {
        self.topology()
            .await?
            .into_iter()
            .find(|n| n.master && !n.failed && n.serves(slot))
            .map(|n| n.index)
            .ok_or_else(|| err(format!("no live master serves slot {slot}")))
    }

    /// Kills the master of `slot` with SIGKILL and returns its index.
    pub async fn kill_master_of(&mut self, slot: u16) -> Result<usize, HarnessError> {
        let index = self.master_of(slot).await?;
        self.nodes[index].kill();
        self.killed_slot.insert(index, slot);
        Ok(index)
    }

    /// Waits until a live node masters the slots that node `old` had when
    /// [`RedisCluster::kill_master_of`] killed it (its replica won the election) and every
    /// running node reports `cluster_state:ok`. Returns the new master.
    pub async fn wait_for_failover(&self, old: usize) -> Result<usize, HarnessError> {
        let slot = *self
            .killed_slot
            .get(&old)
            .ok_or_else(|| err(format!("node {old} was not killed by kill_master_of")))?;
        let deadline = Instant::now() + self.ready_timeout;
        let mut last: String;
        loop {
            match self.master_of(slot).await {
                Ok(new) if new != old && self.nodes[new].pid().is_some() => {
                    if self.all_ok().await {
                        return Ok(new);
                    }
                    last = "a node does not report cluster_state:ok".to_string();
                }
                Ok(_) => last = format!("node {old} still serves slot {slot}"),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "no replica replaced node {old} within {:?}: {last}",
                    self.ready_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether every running node reports `cluster_state:ok`.
    async fn all_ok(&self) -> bool {
        for i in 0..self.nodes.len() {
            if self.nodes[i].pid().is_none() {
                continue;
            }
            let info = self.node_command(i, &["CLUSTER", "INFO"]).await;
            let ok =
                info.ok().and_then(|r| r.text()).is_some_and(|t| t.contains("cluster_state:ok"));
            if !ok {
                return false;
            }
        }
        true
    }

    /// Restarts node `index` (killing it first if it runs); it rejoins with its `nodes.conf`
    /// (a former master comes back as a replica of its successor). Waits until the cluster is
    /// whole again.
    pub async fn restart_node(&mut self, index: usize) -> Result<(), HarnessError> {
        self.nodes[index].restart().await?;
        self.killed_slot.remove(&index);
        self.wait_whole().await
    }

    /// Kills every node with SIGKILL (the whole cluster is down).
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Restarts every node that is not running (each with its `nodes.conf`, so the cluster
    /// forms again with the same slots) and waits until it is whole.
    pub async fn restart_all(&mut self) -> Result<(), HarnessError> {
        for node in &mut self.nodes {
            if !node.is_running() {
                node.restart().await?;
            }
        }
        self.killed_slot.clear();
        self.wait_whole().await
    }

    /// Waits until every running node reports `cluster_state:ok`, every node agrees on no
    /// failed node, and every running replica's link to its master is up.
    pub async fn wait_whole(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            let mut why = None;
            if !self.all_ok().await {
                why = Some("a node does not report cluster_state:ok".to_string());
            }
            if why.is_none() {
                for i in 0..self.nodes.len() {
                    if self.nodes[i].pid().is_none() {
                        continue;
                    }
                    let info = self.node_command(i, &["INFO", "replication"]).await;
                    let text = info.ok().and_then(|r| r.text()).unwrap_or_default();
                    if text.contains("role:slave") && !text.contains("master_link_status:up") {
                        why = Some(format!("node {i} is a replica whose link is not up"));
                        break;
                    }
                    // A node that does not answer, or not with a table, flags nothing.
                    let view = self.view_of(i).await.ok().flatten().unwrap_or_default();
                    let stale =
                        view.iter().any(|n| n.failed && self.nodes[n.index].pid().is_some());
                    if stale {
                        why = Some(format!("node {i} still flags a running node as failed"));
                        break;
                    }
                }
            }
            let Some(why) = why else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(err(format!(
                    "the cluster is not whole after {:?}: {why}",
                    self.ready_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
