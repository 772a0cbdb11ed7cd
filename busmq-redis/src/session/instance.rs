//! One Redis instance: where its sessions connect, the script connection of the current
//! session, its health, and the one way every call reaches it (under the call deadline).
//!
//! Each session has one multiplexed connection for scripts (pipelining-friendly, shared by
//! every call, with a response timeout so nothing waits forever) and one pub/sub connection
//! (see `hub.rs`). Both belong to one *session*: if either fails, the instance is marked down,
//! both are dropped, and the supervisor (`supervisor.rs`) dials again. While an instance is
//! down its calls fail at once with `Offline` instead of waiting.
//!
//! An instance is a fixed address, a Sentinel-managed group (`sentinel.rs`: a session also
//! ends when the node answers `READONLY`, it was demoted) or a whole Redis Cluster
//! (`cluster.rs`: one cluster connection routes each script to the node owning the queue's
//! slot).

use crate::config::endpoint::Endpoint;
use crate::config::settings::Config;
use crate::fault::{CallError, is_connection_error};
use crate::session::access::Who;
use crate::session::cluster::{self, ClusterTarget};
use crate::session::conn::Conn;
use crate::session::hub::Hub;
use crate::session::sentinel::{NodeAddr, SentinelGroup};
use busmq_core::Error;
use busmq_core::support::lock;
use redis::{Client, Cmd, ErrorKind, Pipeline, RedisResult, ServerErrorKind, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

/// Where an instance's sessions connect to.
#[derive(Debug)]
pub(crate) enum Target {
    Fixed(Box<Client>),
    Sentinel(Arc<SentinelGroup>),
    Cluster(Box<ClusterTarget>),
}

#[derive(Debug)]
pub(crate) struct Instance {
    endpoint: Endpoint,
    target: Target,
    config: Config,
    conn: RwLock<Option<Conn>>,
    up: AtomicBool,
    broken: Notify,
    /// A call was answered `READONLY`: the node of this session is no longer the master.
    demoted: AtomicBool,
    /// The node the current session is connected to (Sentinel groups).
    node: Mutex<Option<NodeAddr>>,
    /// The current session's server lacks `RENAME` or `SORT` (see `CommandSet`): the fast
    /// paths that use them are off.
    restricted: AtomicBool,
    pub(crate) hub: Arc<Hub>,
}

impl Instance {
    pub(crate) fn new(endpoint: Endpoint, config: Config) -> Result<Instance, Error> {
        let invalid = |reason: String| Error::InvalidUrl { url: endpoint.identity.clone(), reason };
        let target = match &endpoint.sentinel {
            Some(spec) => Target::Sentinel(Arc::new(SentinelGroup::new(
                spec.clone(),
                endpoint.info.clone(),
                config.clone(),
            ))),
            None if endpoint.cluster.is_some() => Target::Cluster(Box::new(
                ClusterTarget::new(&endpoint).map_err(|e| invalid(format!("{e:?}")))?,
            )),
            None => Target::Fixed(Box::new(
                config.tls.client(endpoint.info.clone()).map_err(|e| invalid(e.to_string()))?,
            )),
        };
        Ok(Instance {
            hub: Arc::new(Hub::new(config.response_timeout)),
            endpoint,
            target,
            config,
            conn: RwLock::new(None),
            up: AtomicBool::new(false),
            broken: Notify::new(),
            demoted: AtomicBool::new(false),
            node: Mutex::new(None),
            restricted: AtomicBool::new(false),
        })
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn group(&self) -> Option<&Arc<SentinelGroup>> {
        match &self.target {
            Target::Sentinel(group) => Some(group),
            Target::Fixed(_) | Target::Cluster(_) => None,
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The command that publishes on a topic channel: shard channels on a cluster.
    pub(crate) fn publish_command(&self) -> &'static str {
        if self.is_cluster() { "SPUBLISH" } else { "PUBLISH" }
    }

    /// The node the current session is connected to (Sentinel groups).
    pub(crate) fn node(&self) -> Option<NodeAddr> {
        lock(&self.node).clone()
    }

    pub(crate) fn identity(&self) -> &str {
        &self.endpoint.identity
    }

    /// Who this instance's sessions log in as (the data nodes' user, for a Sentinel group).
    pub(crate) fn who(&self) -> Who<'_> {
        Who::of(self.endpoint.info.redis_settings())
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    fn connection(&self) -> Option<Conn> {
        if !self.is_up() {
            return None;
        }
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `call` on the session's connection within the call deadline: the one way every
    /// command reaches this instance. A failure that says the session is broken (or, for a
    /// Sentinel group, that the node was demoted) wakes the supervisor.
    async fn send<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.connection().ok_or(CallError::Down)?;
        match tokio::time::timeout(self.config.call_deadline(), call(conn)).await {
            Err(_) => {
                self.broken.notify_one();
                Err(CallError::Timeout)
            }
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.check(&e);
                Err(e.into())
            }
        }
    }

    /// Sends one command on the shared connection.
    pub(crate) async fn query(&self, cmd: &Cmd) -> Result<Value, CallError> {
        self.send(|mut conn| async move { cmd.query_async::<Value>(&mut conn).await }).await
    }

    /// Sends a pipeline (a MULTI/EXEC transaction when atomic) on the shared connection.
    pub(crate) async fn query_pipe(&self, pipe: &Pipeline) -> Result<Vec<Value>, CallError> {
        self.send(|mut conn| async move { pipe.query_async::<Vec<Value>>(&mut conn).await }).await
    }

    /// Sends `cmd` to the node that serves `key` (see [`Conn::query_for_key`]).
    pub(crate) async fn query_for_key(&self, key: &str, cmd: Cmd) -> Result<Value, CallError> {
        self.send(|mut conn| async move { conn.query_for_key(key, cmd).await }).await
    }

    /// Sends `cmd` to one node of this instance: the cluster node `node` (see
    /// [`cluster::masters`]) on a Redis Cluster, the instance's own node otherwise.
    pub(crate) async fn query_at(
        &self,
        node: Option<(&str, u16)>,
        cmd: Cmd,
    ) -> Result<Value, CallError> {
        self.send(|mut conn| async move { conn.query_at(node, cmd).await }).await
    }

    /// The masters of a Redis Cluster instance, sorted (see [`cluster::masters`]); none for
    /// other instances.
    pub(crate) async fn cluster_masters(&self) -> Result<Vec<(String, u16)>, CallError> {
        if !self.is_cluster() {
            return Ok(Vec::new());
        }
        self.send(|conn| async move {
            let Conn::Cluster(mut conn) = conn else { return Ok(Vec::new()) };
            cluster::masters(&mut conn).await
        })
        .await
    }

    /// Reacts to a failed call: a broken connection is re-checked, and for a Sentinel group a
    /// `READONLY` answer ends the session so that the next one finds the new master.
    fn check(&self, e: &redis::RedisError) {
        if is_connection_error(e) || e.is_timeout() {
            self.broken.notify_one();
        } else if self.group().is_some() && e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        {
            self.demoted.store(true, Ordering::SeqCst);
            self.broken.notify_one();
        }
    }

    /// Resolves once a call suspected that the session broke.
    pub(crate) async fn suspected(&self) {
        self.broken.notified().await;
    }

    /// Whether a call was answered `READONLY` since the last time this was asked.
    pub(crate) fn take_demoted(&self) -> bool {
        self.demoted.swap(false, Ordering::SeqCst)
    }

    /// Whether the current session's server lacks `RENAME` or `SORT` (see `CommandSet`).
    pub(crate) fn restricted(&self) -> bool {
        self.restricted.load(Ordering::SeqCst)
    }

    /// Installs the script connection of a new session (not up yet: see [`Instance::set_up`])
    /// and what the session found of its server's command set.
    pub(crate) fn install(&self, conn: Conn, node: Option<NodeAddr>, restricted: bool) {
        self.restricted.store(restricted, Ordering::SeqCst);
        self.demoted.store(false, Ordering::SeqCst);
        *lock(&self.node) = node;
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
    }

    /// The session is ready: calls may go through.
    pub(crate) fn set_up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Marks the instance down and drops the session's connections.
    pub(crate) fn go_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.hub.end_session();
    }

    /// Whether the session answers: a PING, or on a cluster whether any master does.
    pub(crate) async fn ping(&self) -> bool {
        if self.is_cluster() {
            let answer = self
                .send(|conn| async move {
                    let Conn::Cluster(mut conn) = conn else { return Ok(false) };
                    Ok(cluster::ping(&mut conn).await)
                })
                .await;
            return answer.unwrap_or(false);
        }
        matches!(self.query(&redis::cmd("PING")).await, Ok(Value::SimpleString(ref s)) if s == "PONG")
    }
}
