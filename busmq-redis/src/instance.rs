//! One Redis instance: its connections, its health, and the supervisor task that connects,
//! loads the scripts, pings, and reconnects with exponential backoff and jitter.
//!
//! Each instance has one multiplexed connection for scripts (pipelining-friendly, shared by
//! every call, with a response timeout so nothing waits forever) and one pub/sub connection
//! (see [`crate::pubsub`]). Both belong to one *session*: if either fails, the instance is
//! marked down, both are dropped, and the supervisor dials again. While an instance is down its
//! calls fail at once with `Offline` instead of waiting.

use crate::config::Config;
use crate::errors::{CallError, is_connection_error};
use crate::keys::QueueKeys;
use crate::pubsub::Hub;
use crate::scripts::{Script, scripts};
use crate::store::Shared;
use crate::url::Endpoint;
use busmq_core::Error;
use busmq_core::support::backoff;
use futures::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{AsyncConnectionConfig, Client, Cmd, ServerErrorKind, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use tokio::sync::{Notify, oneshot, watch};

#[derive(Debug)]
pub(crate) struct Instance {
    endpoint: Endpoint,
    client: Client,
    config: Config,
    conn: RwLock<Option<MultiplexedConnection>>,
    up: AtomicBool,
    broken: Notify,
    pub(crate) hub: Arc<Hub>,
}

impl Instance {
    pub(crate) fn new(endpoint: Endpoint, config: Config) -> Result<Instance, Error> {
        let client = Client::open(endpoint.info.clone()).map_err(|e| Error::InvalidUrl {
            url: endpoint.identity.clone(),
            reason: e.to_string(),
        })?;
        Ok(Instance {
            hub: Arc::new(Hub::new(config.response_timeout)),
            endpoint,
            client,
            config,
            conn: RwLock::new(None),
            up: AtomicBool::new(false),
            broken: Notify::new(),
        })
    }

    pub(crate) fn identity(&self) -> &str {
        &self.endpoint.identity
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
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
                if is_connection_error(&e) || e.is_timeout() {
                    self.broken.notify_one();
                }
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
                self.query(redis::cmd("SCRIPT").arg("LOAD").arg(script.body)).await?;
                self.query(&cmd).await
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
    async fn open(&self, shared: &Weak<Shared>) -> Result<PubSubStream, CallError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.response_timeout));
        let mut conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;

        let (placement_key, membership) = {
            let shared = shared.upgrade().ok_or(CallError::Down)?;
            (shared.layout.placement_key(), shared.placement.membership().to_string())
        };
        let mut pipe = redis::pipe();
        for s in scripts().all() {
            pipe.cmd("SCRIPT").arg("LOAD").arg(s.body);
        }
        pipe.cmd("SADD").arg(&placement_key).arg(&membership).ignore();
        pipe.cmd("SMEMBERS").arg(&placement_key);
        let mut replies: Vec<Value> = pipe.query_async(&mut conn).await?;
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

        let pubsub =
            tokio::time::timeout(self.config.connect_timeout, self.client.get_async_pubsub())
                .await
                .map_err(|_| CallError::Timeout)??;
        let (sink, stream) = pubsub.split();
        self.hub.start_session(sink).await?;
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        Ok(stream)
    }

    async fn ping(&self) -> bool {
        matches!(self.query(&redis::cmd("PING")).await, Ok(Value::SimpleString(ref s)) if s == "PONG")
    }

    /// Watches a live session until it fails (false) or the store stops (true).
    async fn monitor(&self, mut stream: PubSubStream, stop: &mut watch::Receiver<bool>) -> bool {
        let stopped = self.watch_session(&mut stream, stop).await;
        // Messages that arrived before the failure was noticed are still worth delivering.
        while let Some(Some(msg)) = stream.next().now_or_never() {
            self.hub.dispatch(&msg);
        }
        stopped
    }

    async fn watch_session(
        &self,
        stream: &mut PubSubStream,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut tick = tokio::time::interval(self.config.ping_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return true;
                    }
                }
                msg = stream.next() => match msg {
                    Some(msg) => self.hub.dispatch(&msg),
                    None => return false,
                },
                _ = self.broken.notified() => {
                    if !self.ping().await {
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
        first: oneshot::Sender<()>,
    ) {
        let mut first = Some(first);
        let mut attempt: u32 = 0;
        let mut reported = false;
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
                    reported = false;
                    self.up.store(true, Ordering::SeqCst);
                    if let Some(shared) = shared.upgrade() {
                        shared.state.recompute(&shared.instances);
                    }
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
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
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
                    }
                    if !reported {
                        reported = true;
                        if let Some(shared) = shared.upgrade() {
                            shared.state.error(self.connect_error(e));
                        }
                    }
                    let delay = backoff(attempt, self.config.backoff_base, self.config.backoff_cap);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        self.go_down();
    }

    fn connect_error(&self, e: CallError) -> Error {
        let message = match e {
            CallError::Down => "the store was dropped".to_string(),
            CallError::Timeout => {
                format!("no answer within {:?} (will keep retrying)", self.config.connect_timeout)
            }
            CallError::Redis(e) => format!("{e} (will keep retrying)"),
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
