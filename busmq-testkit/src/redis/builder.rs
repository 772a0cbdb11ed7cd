//! Options for a test `redis-server` ([`RedisServerBuilder`]): port or socket, password,
//! configuration lines, Sentinel and Cluster modes, TLS listeners, readiness deadline.

use super::server::{HarnessError, RedisServer};
use super::tls::{ClientCerts, TlsListener};
use crate::tls::TestCerts;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options for a [`RedisServer`].
#[derive(Debug, Clone)]
pub struct RedisServerBuilder {
    pub(super) binary: Option<PathBuf>,
    pub(super) unix_socket: bool,
    pub(super) password: Option<String>,
    pub(super) config: Vec<String>,
    pub(super) ready_timeout: Duration,
    pub(super) sentinel: bool,
    pub(super) cluster: bool,
    pub(super) tls: Option<TlsListener>,
}

impl Default for RedisServerBuilder {
    fn default() -> Self {
        RedisServerBuilder {
            binary: None,
            unix_socket: false,
            password: None,
            config: Vec::new(),
            // Generous: a healthy server answers within milliseconds, but CI machines run
            // several test binaries on 2 cores and a loaded start has taken over 20 s.
            ready_timeout: Duration::from_secs(60),
            sentinel: false,
            cluster: false,
            tls: None,
        }
    }
}

impl RedisServerBuilder {
    /// Uses this binary instead of `$BUSMQ_REDIS_SERVER` / `PATH`.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// The binary [`RedisServerBuilder::binary`] set, if any.
    pub(crate) fn explicit_binary(&self) -> Option<&Path> {
        self.binary.as_deref()
    }

    /// Listens on a unix socket in the server's directory instead of a loopback port.
    pub fn unix_socket(mut self, yes: bool) -> Self {
        self.unix_socket = yes;
        self
    }

    /// Requires this password (`requirepass`); [`RedisServer::url`] includes it.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Adds one configuration line, e.g. `"appendonly yes"` (later lines win).
    pub fn config(mut self, line: impl Into<String>) -> Self {
        self.config.push(line.into());
        self
    }

    /// Runs `redis-server --sentinel`: the configuration lines are then sentinel directives
    /// (`sentinel monitor ...`), and the sentinel rewrites its configuration file, which lives in
    /// the server's own directory and survives [`RedisServer::restart`].
    pub fn sentinel(mut self, yes: bool) -> Self {
        self.sentinel = yes;
        self
    }

    /// Runs as a Redis Cluster node (`cluster-enabled yes`, `nodes.conf` in the server's own
    /// directory, so it survives [`RedisServer::restart`]). The cluster bus gets its own free
    /// port (`cluster-port`): the default, port + 10000, may not exist for high ports.
    pub fn cluster(mut self, yes: bool) -> Self {
        self.cluster = yes;
        self
    }

    /// Starts as a replica of the server on loopback port `port` (`replicaof`; with
    /// `masterauth` when this server has a password, which is then the master's too).
    pub fn replica_of(mut self, port: u16) -> Self {
        self.config.push(format!("replicaof 127.0.0.1 {port}"));
        self
    }

    /// Listens with TLS only (`tls-port`, `port 0`) with the server certificate of `certs`;
    /// [`RedisServer::url`] is then `rediss://127.0.0.1:<port>`. The harness itself checks
    /// readiness over a unix socket in the server's directory.
    pub fn tls(mut self, certs: &TestCerts, clients: ClientCerts) -> Self {
        self.tls = Some(TlsListener::new(certs, clients, false));
        self
    }

    /// Listens with TLS on a port of its own ([`RedisServer::tls_port`]) besides the plain
    /// port, which the harness keeps for its own commands (cluster creation, checks).
    pub fn tls_and_plain(mut self, certs: &TestCerts, clients: ClientCerts) -> Self {
        self.tls = Some(TlsListener::new(certs, clients, true));
        self
    }

    /// How long to wait for the first `+PONG` (default 60 s: loaded CI machines are slow).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts the server and waits until it answers PING.
    pub async fn start(self) -> Result<RedisServer, HarnessError> {
        RedisServer::start_with(self).await
    }
}
