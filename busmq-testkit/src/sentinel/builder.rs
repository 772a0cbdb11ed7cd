//! Options for a [`SentinelSet`] and its start: the master, replicas and sentinels launched,
//! then waited for until every sentinel sees every replica and every other sentinel.

use super::{SentinelSet, err};
use crate::redis::{ClientCerts, HarnessError, RedisServer, RedisServerBuilder};
use crate::tls::TestCerts;
use std::time::Duration;

/// Options for a [`SentinelSet`].
#[derive(Debug, Clone)]
pub struct SentinelSetBuilder {
    master_name: String,
    replicas: usize,
    sentinels: usize,
    quorum: usize,
    data_password: Option<String>,
    sentinel_password: Option<String>,
    data_config: Vec<String>,
    down_after: Duration,
    failover_timeout: Duration,
    ready_timeout: Duration,
    tls: bool,
}

impl Default for SentinelSetBuilder {
    fn default() -> Self {
        SentinelSetBuilder {
            master_name: "mymaster".into(),
            replicas: 2,
            sentinels: 3,
            quorum: 2,
            data_password: None,
            sentinel_password: None,
            data_config: Vec::new(),
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_millis(5000),
            ready_timeout: Duration::from_secs(60),
            tls: false,
        }
    }
}

impl SentinelSetBuilder {
    /// The master name the sentinels monitor (default `mymaster`).
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = name.into();
        self
    }

    /// How many replicas (default 2) and sentinels (default 3), and the quorum (default 2).
    pub fn shape(mut self, replicas: usize, sentinels: usize, quorum: usize) -> Self {
        self.replicas = replicas;
        self.sentinels = sentinels;
        self.quorum = quorum;
        self
    }

    /// A password on the data nodes (`requirepass` and `masterauth`; the sentinels get
    /// `sentinel auth-pass`).
    pub fn data_password(mut self, password: impl Into<String>) -> Self {
        self.data_password = Some(password.into());
        self
    }

    /// A password on the sentinels (`requirepass` there, and `sentinel sentinel-pass` so that
    /// they can talk to each other).
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.sentinel_password = Some(password.into());
        self
    }

    /// Every data node and sentinel also listens on a TLS port with the certificates of
    /// [`TestCerts::shared`] (client certificates optional); replication, the sentinels'
    /// links to the data nodes and to each other run over TLS (`tls-replication yes`), so the
    /// sentinels name the data nodes' TLS ports; [`SentinelSet::url`] is then
    /// `rediss+sentinel://` over the sentinels' TLS ports. The harness keeps the plain ports
    /// for its own commands.
    pub fn tls(mut self, yes: bool) -> Self {
        self.tls = yes;
        self
    }

    /// One more configuration line for every data node (e.g. `"appendonly yes"`).
    pub fn data_config(mut self, line: impl Into<String>) -> Self {
        self.data_config.push(line.into());
        self
    }

    /// `down-after-milliseconds` (default 1 s) and `failover-timeout` (default 5 s).
    pub fn timing(mut self, down_after: Duration, failover_timeout: Duration) -> Self {
        self.down_after = down_after;
        self.failover_timeout = failover_timeout;
        self
    }

    /// Starts every process and waits until the sentinels know the whole set.
    pub async fn start(self) -> Result<SentinelSet, HarnessError> {
        if self.sentinels == 0 || self.quorum == 0 || self.quorum > self.sentinels {
            return Err(err("a sentinel set needs 1 <= quorum <= sentinels"));
        }
        let tls = |b: RedisServerBuilder| match self.tls {
            true => b.tls_and_plain(TestCerts::shared(), ClientCerts::Optional),
            false => b,
        };
        let data = |b: RedisServerBuilder| {
            let b = self.data_config.iter().fold(tls(b), |b, line| b.config(line.clone()));
            match &self.data_password {
                Some(pw) => b.password(pw.clone()),
                None => b,
            }
        };
        let master = data(RedisServer::builder()).start().await?;
        // With TLS, replicas and sentinels reach the master on its TLS port.
        let master_port = master.tls_port().unwrap_or(master.port());
        let mut nodes = vec![master];
        for _ in 0..self.replicas {
            nodes.push(data(RedisServer::builder().replica_of(master_port)).start().await?);
        }
        let mut set = SentinelSet {
            master_name: self.master_name.clone(),
            nodes,
            sentinels: Vec::new(),
            data_password: self.data_password.clone(),
            sentinel_password: self.sentinel_password.clone(),
            ready_timeout: self.ready_timeout,
        };
        set.wait_replicating(master_port, self.replicas).await?;
        for _ in 0..self.sentinels {
            let mut b = tls(RedisServer::builder().sentinel(true));
            let name = &self.master_name;
            for line in [
                "sentinel resolve-hostnames no".to_string(),
                format!("sentinel monitor {name} 127.0.0.1 {master_port} {}", self.quorum),
                format!("sentinel down-after-milliseconds {name} {}", self.down_after.as_millis()),
                format!("sentinel failover-timeout {name} {}", self.failover_timeout.as_millis()),
                format!("sentinel parallel-syncs {name} 1"),
            ] {
                b = b.config(line);
            }
            if let Some(pw) = &self.data_password {
                b = b.config(format!("sentinel auth-pass {name} {pw}"));
            }
            if let Some(pw) = &self.sentinel_password {
                b = b.password(pw.clone()).config(format!("sentinel sentinel-pass {pw}"));
            }
            set.sentinels.push(b.start().await?);
        }
        set.wait_known(self.replicas, self.sentinels - 1, true).await?;
        Ok(set)
    }
}
