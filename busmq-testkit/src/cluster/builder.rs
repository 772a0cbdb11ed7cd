//! The options of a test cluster ([`RedisClusterBuilder`]) and its start: the nodes, the
//! `--cluster create`, the wait until it is whole.

use super::cli::{CLI_ENV, redis_cli};
use super::{RedisCluster, err};
use crate::redis::{ClientCerts, HarnessError, RedisServer};
use crate::tls::TestCerts;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Options for a [`RedisCluster`].
#[derive(Debug, Clone)]
pub struct RedisClusterBuilder {
    masters: usize,
    replicas: usize,
    node_timeout: Duration,
    config: Vec<String>,
    ready_timeout: Duration,
    binary: Option<PathBuf>,
    cli: Option<PathBuf>,
    tls: bool,
}

impl Default for RedisClusterBuilder {
    fn default() -> Self {
        RedisClusterBuilder {
            masters: 3,
            replicas: 1,
            node_timeout: Duration::from_millis(1000),
            config: Vec::new(),
            ready_timeout: Duration::from_secs(60),
            binary: None,
            cli: None,
            tls: false,
        }
    }
}

impl RedisClusterBuilder {
    /// How many masters, and how many replicas per master (default 3 and 1).
    pub fn shape(mut self, masters: usize, replicas: usize) -> Self {
        self.masters = masters;
        self.replicas = replicas;
        self
    }

    /// `cluster-node-timeout` (default 1 s: a killed master is replaced within a few seconds).
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Adds a configuration line to every node.
    pub fn config(mut self, line: impl Into<String>) -> Self {
        self.config.push(line.into());
        self
    }

    /// Runs the nodes from this binary (e.g. `valkey-server`) instead of `redis-server`.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Creates the cluster with this client (e.g. `valkey-cli`) instead of `redis-cli`.
    pub fn cli(mut self, path: impl Into<PathBuf>) -> Self {
        self.cli = Some(path.into());
        self
    }

    /// The client [`RedisClusterBuilder::cli`] set, if any.
    pub(crate) fn explicit_cli(&self) -> Option<&std::path::Path> {
        self.cli.as_deref()
    }

    /// Every node also listens on a TLS port with the certificates of [`TestCerts::shared`]
    /// (client certificates optional), and the cluster bus and replication run over TLS
    /// (`tls-cluster yes`), so nodes announce their TLS ports to TLS clients;
    /// [`RedisCluster::url`] is then `rediss+cluster://` over those ports. The harness keeps
    /// the plain ports for its own commands.
    pub fn tls(mut self, yes: bool) -> Self {
        self.tls = yes;
        self
    }

    /// Starts every node, creates the cluster and waits until it is whole.
    pub async fn start(self) -> Result<RedisCluster, HarnessError> {
        if self.masters < 3 {
            return Err(err("redis-cli --cluster create needs at least three masters"));
        }
        let cli = self.cli.clone().or_else(redis_cli).ok_or_else(|| {
            err(format!("redis-cli not found (set {CLI_ENV} or put it on PATH; apt: redis-tools)"))
        })?;
        let count = self.masters * (1 + self.replicas);
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let mut b = RedisServer::builder()
                .cluster(true)
                .config(format!("cluster-node-timeout {}", self.node_timeout.as_millis()))
                // The other masters keep serving their slots while one is replaced.
                .config("cluster-require-full-coverage no");
            if let Some(binary) = &self.binary {
                b = b.binary(binary.clone());
            }
            for line in &self.config {
                b = b.config(line.clone());
            }
            if self.tls {
                b = b.tls_and_plain(TestCerts::shared(), ClientCerts::Optional);
            }
            nodes.push(b.start().await?);
        }
        let cluster = RedisCluster {
            nodes,
            cli,
            ready_timeout: self.ready_timeout,
            killed_slot: HashMap::new(),
        };
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())));
        args.extend(["--cluster-replicas".into(), self.replicas.to_string()]);
        args.push("--cluster-yes".into());
        cluster.cli(&args).await?;
        cluster.wait_whole().await?;
        Ok(cluster)
    }
}
