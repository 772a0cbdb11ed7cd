//! Options for a test `redis-server` ([`RedisServerBuilder`]): port or socket, password,
//! configuration lines, Sentinel and Cluster modes, TLS listeners, readiness deadline.

use super::binary::redis_available;
use super::server::{HarnessError, RedisServer, err, free_port, fresh_dir};
use super::tls::{ClientCerts, TlsListener};
use crate::tls::TestCerts;
use std::fs;
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
        let b = self;
        let binary = match b.binary.clone() {
            Some(b) => b,
            None => redis_available().ok_or_else(|| {
                err("redis-server not found (set BUSMQ_REDIS_SERVER or put it on PATH)")
            })?,
        };
        let dir = fresh_dir()?;
        let mut server = RedisServer {
            binary,
            socket: b.unix_socket.then(|| dir.join("redis.sock")),
            conf: dir.join("redis.conf"),
            log: dir.join("redis.log"),
            stderr: dir.join("stderr.log"),
            dir,
            port: 0,
            cluster_port: None,
            password: b.password,
            extra: b.config,
            ready_timeout: b.ready_timeout,
            sentinel: b.sentinel,
            tls: b.tls.map(Box::new),
            running: None,
        };
        const PORT_ATTEMPTS: usize = 20;
        for attempt in 0..PORT_ATTEMPTS {
            if server.socket.is_none() {
                server.port = free_port()?;
            }
            if b.cluster {
                server.cluster_port = Some(free_port()?);
            }
            if let Some(tls) = &mut server.tls {
                tls.port = free_port()?;
            }
            server.write_config()?;
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(e) if server.port_taken() && attempt + 1 < PORT_ATTEMPTS => {
                    let _ = e;
                    let _ = fs::remove_file(&server.log);
                }
                Err(e) => return Err(e),
            }
        }
        Err(err("no free port found for redis-server"))
    }
}

impl RedisServer {
    /// Options for a new server.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// Starts a server on a free loopback port with the default configuration.
    pub async fn start() -> Result<RedisServer, HarnessError> {
        Self::builder().start().await
    }
}
