//! One configured Redis instance as the URL parsers describe it: a fixed address, a
//! Sentinel-managed group or a Redis Cluster, with its placement identity. A leaf: the URL
//! parsers build these and the sessions connect to them.

use redis::{ConnectionAddr, ConnectionInfo};
use std::fmt;

/// The port sentinels listen on when an address gives none.
pub(crate) const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// One configured Redis instance.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// What the redis crate connects with.
    pub(crate) info: ConnectionInfo,
    /// The stable identity used for placement: `host:port/db` (lowercase host),
    /// `unix:<path>/db` or `sentinel:<master name>/db`. It ignores credentials, TLS, the order
    /// of the URLs and, for Sentinel groups, which node is the master now.
    pub(crate) identity: String,
    /// Set for a Sentinel-managed group: `info` then holds the data nodes' credentials and db,
    /// and the address comes from the sentinels.
    pub(crate) sentinel: Option<SentinelSpec>,
    /// Set for a Redis Cluster: `info` then holds the credentials, the addresses are seeds.
    pub(crate) cluster: Option<ClusterSpec>,
}

impl Endpoint {
    /// Whether the instance is one fixed address (not a Sentinel group, not a cluster), whose
    /// node cannot change under a connection.
    pub(crate) fn is_fixed(&self) -> bool {
        self.sentinel.is_none() && self.cluster.is_none()
    }

    /// Whether its connections use TLS (`rediss://` and the `rediss+` schemes).
    pub(crate) fn uses_tls(&self) -> bool {
        matches!(self.info.addr(), ConnectionAddr::TcpTls { .. })
    }
}

/// A sentinel-managed group as configured.
#[derive(Clone)]
pub(crate) struct SentinelSpec {
    pub(crate) master: String,
    pub(crate) sentinels: Vec<(String, u16)>,
    /// Credentials for the sentinels themselves (the data nodes have their own).
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl fmt::Debug for SentinelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelSpec")
            .field("master", &self.master)
            .field("sentinels", &self.sentinels)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The seed nodes of a cluster (lowercase hosts, sorted, no duplicates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterSpec {
    pub(crate) seeds: Vec<(String, u16)>,
}
