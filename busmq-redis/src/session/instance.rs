//! One Redis instance: its connections, its health, and the supervisor task that connects,
//! loads the scripts, pings, and reconnects with exponential backoff and jitter.
//!
//! Each instance has one multiplexed connection for scripts (pipelining-friendly, shared by
//! every call, with a response timeout so nothing waits forever) and one pub/sub connection
//! (see [`crate::pubsub`]). Both belong to one *session*: if either fails, the instance is
//! marked down, both are dropped, and the supervisor dials again. While an instance is down its
//! calls fail at once with `Offline` instead of waiting.
//!
//! An instance is either a fixed address or a Sentinel-managed group ([`crate::sentinel`]).
//! For a group, every session starts by asking the sentinels for the master and checking
//! `ROLE` on it, and a session also ends when the node answers `READONLY` (it was demoted) or
//! when the sentinels name another master; the next session then follows the new master, with
//! its scripts loaded and every channel subscribed again, and watchers get `Notice::Reset`.
//!
//! An instance can also be a whole Redis Cluster ([`crate::cluster`]): its session is one
//! cluster connection, which routes each script to the node owning the queue's slot, and
//! shard subscriptions dropped by a slot move or a node loss are repaired within the session.

use crate::access::{self, Who};
use crate::cluster::{ClusterTarget, Feed, FeedEvent, with_body};
use crate::config::{Config, ReplicaAck};
use crate::conn::Conn;
use crate::errors::{CallError, is_connection_error};
use crate::keys::QueueKeys;
use crate::pubsub::{Hub, Sink};
use crate::scripts::{Script, scripts};
use crate::sentinel::{NodeAddr, SentinelGroup, is_master};
use crate::store::Shared;
use crate::url::Endpoint;
use busmq_core::Error;
use busmq_core::support::backoff;
use futures::FutureExt;
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, ServerErrorKind, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use tokio::sync::{Notify, oneshot, watch};

/// Where an instance's sessions connect to.
#[derive(Debug)]
enum Target {
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
    pub(crate) hub: Arc<Hub>,
}

/// How often dropped shard subscriptions are tried again.
const REPAIR_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Waits for a Sentinel hint, or forever for fixed instances.
async fn hinted(hints: &mut Option<watch::Receiver<u64>>) {
    match hints {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
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
            None => Target::Fixed(Box::new(Client::open(endpoint.info.clone()).map_err(|e| {
                Error::InvalidUrl { url: endpoint.identity.clone(), reason: e.to_string() }
            })?)),
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
        })
    }

    fn group(&self) -> Option<&Arc<SentinelGroup>> {
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

    fn node(&self) -> Option<NodeAddr> {
        self.node.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

    /// Sends one command on the shared connection.
    pub(crate) async fn query(&self, cmd: &Cmd) -> Result<Value, CallError> {
        let mut conn = self.connection().ok_or(CallError::Down)?;
        // The connection has its own response timeout; this outer one only guarantees that
        // no call outlives its deadline whatever the driver does.
        let deadline = self.config.response_timeout + self.config.response_timeout / 4;
        match tokio::time::timeout(deadline, cmd.query_async::<Value>(&mut conn)).await {
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

    /// Sends a pipeline (a MULTI/EXEC transaction when atomic) on the shared connection.
    pub(crate) async fn query_pipe(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>, CallError> {
        let mut conn = self.connection().ok_or(CallError::Down)?;
        let deadline = self.config.response_timeout + self.config.response_timeout / 4;
        match tokio::time::timeout(deadline, pipe.query_async::<Vec<Value>>(&mut conn)).await {
            Err(_) => {
                self.broken.notify_one();
                Err(CallError::Timeout)
            }
            Ok(Ok(values)) => Ok(values),
            Ok(Err(e)) => {
                self.check(&e);
                Err(e.into())
            }
        }
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

    /// Sends the script call followed by `WAIT` in one pipeline on one connection, so that
    /// `WAIT` covers this write (and any earlier write of the shared connection). Returns the
    /// script's reply and how many replicas confirmed.
    async fn query_acked(&self, cmd: &Cmd, ack: ReplicaAck) -> Result<(Value, i64), CallError> {
        let mut conn = self.connection().ok_or(CallError::Down)?;
        let deadline = self.config.response_timeout + self.config.response_timeout / 4;
        if let Conn::Cluster(cluster) = &mut conn {
            let call = crate::cluster::eval_then_wait(cluster, cmd, ack);
            return match tokio::time::timeout(deadline, call).await {
                Err(_) => {
                    self.broken.notify_one();
                    Err(CallError::Timeout)
                }
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(e)) => {
                    self.check(&e);
                    Err(e.into())
                }
            };
        }
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone());
        pipe.cmd("WAIT").arg(ack.replicas).arg(ack.timeout.as_millis().max(1) as u64);
        match tokio::time::timeout(deadline, pipe.query_async::<Vec<Value>>(&mut conn)).await {
            Err(_) => {
                self.broken.notify_one();
                Err(CallError::Timeout)
            }
            Ok(Ok(mut replies)) if replies.len() == 2 => {
                let acked = match replies.pop() {
                    Some(Value::Int(n)) => n,
                    _ => 0,
                };
                Ok((replies.pop().unwrap_or(Value::Nil), acked))
            }
            Ok(Ok(_)) => Err(CallError::Redis(redis::RedisError::from((
                ErrorKind::Client,
                "WAIT",
                "the pipeline returned an unexpected number of replies".to_string(),
            )))),
            Ok(Err(e)) => {
                self.check(&e);
                Err(e.into())
            }
        }
    }

    /// Runs a queue script by digest; on NOSCRIPT (script cache flushed, or a failover to a
    /// server that never saw it) loads it and tries once more.
    pub(crate) async fn eval(
        &self,
        script: &Script,
        keys: &QueueKeys,
        args: impl FnOnce(&mut Cmd),
    ) -> Result<Value, CallError> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&script.sha).arg(keys.keys.len()).arg(&keys.keys[..]);
        args(&mut cmd);
        match self.query(&cmd).await {
            Err(CallError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) =>
            {
                if self.is_cluster() {
                    return self.query(&with_body(&cmd, script.body)).await;
                }
                self.query(redis::cmd("SCRIPT").arg("LOAD").arg(script.body)).await?;
                self.query(&cmd).await
            }
            other => other,
        }
    }

    /// Like [`Instance::eval`], then waits for `ack.replicas` replicas (see
    /// [`crate::RedisStoreBuilder::replicas_ack`]). Returns the reply and how many replicas
    /// confirmed the write.
    pub(crate) async fn eval_acked(
        &self,
        script: &Script,
        keys: &QueueKeys,
        ack: ReplicaAck,
        args: impl FnOnce(&mut Cmd),
    ) -> Result<(Value, i64), CallError> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&script.sha).arg(keys.keys.len()).arg(&keys.keys[..]);
        args(&mut cmd);
        match self.query_acked(&cmd, ack).await {
            Err(CallError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) =>
            {
                if self.is_cluster() {
                    return self.query_acked(&with_body(&cmd, script.body), ack).await;
                }
                self.query(redis::cmd("SCRIPT").arg("LOAD").arg(script.body)).await?;
                self.query_acked(&cmd, ack).await
            }
            other => other,
        }
    }

    /// Marks the instance down and drops the session's connections.
    pub(crate) fn go_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.hub.end_session();
    }

    /// Opens a session: script connection, scripts, placement membership, pub/sub connection
    /// with every live channel subscribed again.
    async fn open(&self, shared: &Weak<Shared>) -> Result<Feed, CallError> {
        let (layout, membership) = {
            let shared = shared.upgrade().ok_or(CallError::Down)?;
            (shared.layout.clone(), shared.placement.membership().to_string())
        };
        let placement_key = layout.placement_key();
        if let Target::Cluster(target) = &self.target {
            let (mut conn, subs, pushes) = target.connect(&self.config, &layout).await?;
            crate::cluster::load_scripts(&mut conn).await;
            self.hub.start_session(Sink::Sharded(subs)).await.map_err(|e| self.refusal(e))?;
            *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(Conn::Cluster(conn));
            return Ok(Feed::Cluster(pushes));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.response_timeout));
        let (client, node) = match &self.target {
            Target::Fixed(client) => (Client::clone(client), None),
            Target::Cluster(_) => return Err(CallError::Down),
            Target::Sentinel(group) => {
                let node = group.resolve().await?;
                (group.client(&node)?, Some(node))
            }
        };
        let who = self.who();
        let mut conn = access::connect(&client, &config, self.config.connect_timeout).await?;
        // The first command that needs a password: see `access` for why before the scripts.
        let pong = redis::cmd("PING").query_async::<Value>(&mut conn).await;
        pong.map_err(|e| access::classify(e, who))?;
        if let Some(node) = &node {
            // The sentinels may lag behind a failover: only a master is worth a session.
            let role: Value = redis::cmd("ROLE").query_async(&mut conn).await?;
            if !is_master(&role) {
                return Err(CallError::Redis(redis::RedisError::from((
                    ErrorKind::Server(ServerErrorKind::ReadOnly),
                    "not the master",
                    format!("{node} is not a master (the sentinels may not have caught up)"),
                ))));
            }
        }

        let mut pipe = redis::pipe();
        for s in scripts().all() {
            pipe.cmd("SCRIPT").arg("LOAD").arg(s.body);
        }
        for probe in access::probes(&layout) {
            pipe.add_command(probe).ignore();
        }
        pipe.cmd("SADD").arg(&placement_key).arg(&membership).ignore();
        pipe.cmd("SMEMBERS").arg(&placement_key);
        let replies = pipe.query_async::<Vec<Value>>(&mut conn).await;
        let mut replies = replies.map_err(|e| access::classify(e, who))?;
        let members = replies.pop();
        for (s, reply) in scripts().all().iter().zip(&replies) {
            if !matches!(reply, Value::BulkString(b) if b == s.sha.as_bytes()) {
                return Err(CallError::Redis(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "SCRIPT LOAD returned an unexpected digest",
                    s.name.to_string(),
                ))));
            }
        }
        if let Some(Value::Array(items) | Value::Set(items)) = members {
            let texts = items.into_iter().filter_map(|v| match v {
                Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            });
            if let Some(shared) = shared.upgrade() {
                shared.placement.learn(texts);
            }
        }

        let pubsub = tokio::time::timeout(self.config.connect_timeout, client.get_async_pubsub())
            .await
            .map_err(|_| CallError::Timeout)?
            .map_err(|e| access::classify(e, who))?;
        let (sink, stream) = pubsub.split();
        self.hub.start_session(Sink::Plain(sink)).await.map_err(|e| self.refusal(e))?;
        self.demoted.store(false, Ordering::SeqCst);
        *self.node.lock().unwrap_or_else(|e| e.into_inner()) = node;
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(Conn::Node(conn));
        Ok(Feed::Node(stream))
    }

    /// Whether the sentinels now name another master than this session's node.
    async fn master_moved(&self) -> bool {
        let Some(group) = self.group() else {
            return false;
        };
        match group.resolve().await {
            Ok(addr) => self.node().is_some_and(|node| node != addr),
            // Sentinels that do not answer say nothing about the master: the session stays.
            Err(_) => false,
        }
    }

    async fn ping(&self) -> bool {
        if let Some(Conn::Cluster(mut conn)) = self.connection() {
            let deadline = self.config.response_timeout + self.config.response_timeout / 4;
            return tokio::time::timeout(deadline, crate::cluster::ping(&mut conn))
                .await
                .unwrap_or(false);
        }
        matches!(self.query(&redis::cmd("PING")).await, Ok(Value::SimpleString(ref s)) if s == "PONG")
    }

    /// Watches a live session until it fails (false) or the store stops (true).
    async fn monitor(&self, mut feed: Feed, stop: &mut watch::Receiver<bool>) -> bool {
        let stopped = self.watch_session(&mut feed, stop).await;
        // Messages that arrived before the failure was noticed are still worth delivering.
        while let Some(Some(event)) = feed.next().now_or_never() {
            if let FeedEvent::Message(msg) = event {
                self.hub.dispatch(&msg);
            }
        }
        stopped
    }

    async fn watch_session(&self, feed: &mut Feed, stop: &mut watch::Receiver<bool>) -> bool {
        let mut tick = tokio::time::interval(self.config.ping_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // Shard subscriptions the cluster dropped are tried again at this pace until they
        // all succeed (a failover takes about the cluster's node timeout).
        let mut repair = tokio::time::interval(REPAIR_INTERVAL.min(self.config.ping_interval));
        repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hints = self.group().map(|g| g.hints());
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return true;
                    }
                }
                event = feed.next() => match event {
                    Some(FeedEvent::Message(msg)) => self.hub.dispatch(&msg),
                    Some(FeedEvent::Lost(channel)) => self.hub.mark_lost(channel.as_deref()),
                    None => return false,
                },
                _ = repair.tick(), if self.hub.needs_repair() => {
                    if self.hub.repair().await {
                        // Notices published while a channel had no subscription are lost.
                        self.hub.announce_reset();
                    }
                }
                _ = hinted(&mut hints) => {
                    if self.master_moved().await {
                        return false;
                    }
                }
                _ = self.broken.notified() => {
                    if self.demoted.swap(false, Ordering::SeqCst) || !self.ping().await {
                        return false;
                    }
                }
                _ = tick.tick() => {
                    if !self.ping().await {
                        return false;
                    }
                }
            }
        }
    }

    /// The supervisor: connect, watch, reconnect with backoff, until the store disconnects or
    /// is dropped. `first` is signalled after the first attempt, successful or not.
    pub(crate) async fn supervise(
        self: Arc<Self>,
        shared: Weak<Shared>,
        mut stop: watch::Receiver<bool>,
        first: oneshot::Sender<Option<Error>>,
    ) {
        let mut first = Some(first);
        let mut attempt: u32 = 0;
        // What this outage reported so far: nothing, an access denial, or another failure.
        let mut reported: Option<bool> = None;
        let mut hints = self.group().map(|g| g.hints());
        let follower = self.group().map(|group| {
            let group = Arc::clone(group);
            let stop = stop.clone();
            tokio::spawn(async move { group.follow(stop).await })
        });
        loop {
            if *stop.borrow() {
                break;
            }
            let opened = tokio::select! {
                opened = self.open(&shared) => opened,
                _ = stop.changed() => break,
            };
            match opened {
                Ok(stream) => {
                    attempt = 0;
                    reported = None;
                    self.up.store(true, Ordering::SeqCst);
                    if let Some(shared) = shared.upgrade() {
                        shared.state.recompute(&shared.instances);
                    }
                    if let Some(tx) = first.take() {
                        let _ = tx.send(None);
                    }
                    // Watchers re-check everything: notices sent while we were away are lost.
                    self.hub.announce_reset();
                    let stopped = self.monitor(stream, &mut stop).await;
                    self.go_down();
                    if let Some(shared) = shared.upgrade() {
                        shared.state.recompute(&shared.instances);
                    }
                    if stopped {
                        break;
                    }
                }
                Err(e) => {
                    self.go_down();
                    let error = self.connect_error(e);
                    let denied = matches!(error, Error::AccessDenied { .. });
                    if let Some(tx) = first.take() {
                        if denied {
                            // `connect` returns it and stops every supervisor: the same
                            // configuration cannot get in.
                            let _ = tx.send(Some(error));
                            break;
                        }
                        let _ = tx.send(None);
                    }
                    // Once per outage, and again if its cause turns into (or out of) a
                    // refusal: a server restarted with another password is news.
                    if reported != Some(denied) {
                        reported = Some(denied);
                        if let Some(shared) = shared.upgrade() {
                            shared.state.error(error);
                        }
                    }
                    let delay = backoff(attempt, self.config.backoff_base, self.config.backoff_cap);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // A sentinel announced a master: try it now rather than after the delay.
                        _ = hinted(&mut hints) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        if let Some(follower) = follower {
            follower.abort();
        }
        self.go_down();
    }

    /// `e` with a refusal of this instance's credentials or rights told apart.
    fn refusal(&self, e: CallError) -> CallError {
        match e {
            CallError::Redis(e) => access::classify(e, self.who()),
            other => other,
        }
    }

    fn connect_error(&self, e: CallError) -> Error {
        let e = self.refusal(e);
        let message = match e {
            CallError::Denied(reason) => {
                return Error::AccessDenied { target: self.identity().to_string(), reason };
            }
            CallError::Down => "the store was dropped".to_string(),
            CallError::Timeout => {
                format!("no answer within {:?} (will keep retrying)", self.config.connect_timeout)
            }
            CallError::Redis(e) => format!("{e} (will keep retrying)"),
        };
        let message = match self.group() {
            Some(group) => format!("master {:?} via sentinels: {message}", group.master_name()),
            None => message,
        };
        Error::Store {
            backend: "redis",
            operation: "connect",
            message: format!("cannot connect to redis {}: {message}", self.identity()),
            retryable: true,
            source: None,
        }
    }
}
