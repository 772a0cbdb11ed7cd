//! Sentinel-managed master groups: which node is the master now, and when that changes.
//!
//! A group is configured as a list of sentinel addresses and a master name. Its placement
//! identity is `sentinel:<master name>/<db>`, never the current master's address, so a failover
//! does not move any queue.
//!
//! * **Resolving** asks every sentinel (concurrently, within the connect timeout) for
//!   `SENTINEL MASTER <name>` and takes the address with the highest `config-epoch`: a sentinel
//!   that has not heard of the last failover yet cannot send the client back to a demoted (or
//!   restarted, still self-proclaimed) master. The instance then checks `ROLE` on the node.
//! * **Following**: one background task per group listens to `+switch-master` on one sentinel
//!   (moving to the next one when that connection fails) and polls
//!   `SENTINEL get-master-addr-by-name` every ping interval, because pub/sub messages are lost
//!   while the sentinel connection is down. What it hears is only a *hint*: the instance resolves
//!   again and reconnects only if the answer differs from the node it is connected to, so a
//!   stale sentinel cannot make the store flap.
//! * The instance also re-resolves when the node answers `READONLY` (it was demoted), when the
//!   connection is lost and when a ping times out (see `instance.rs`).

use crate::config::endpoint::SentinelSpec;
use crate::config::settings::Config;
use crate::config::url::node_addr;
use crate::fault::CallError;
use crate::session::access::{self, Who};
use busmq_core::support::{backoff, lock};
use futures::StreamExt;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, Value,
};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

/// The channel on which sentinels announce a completed failover.
const SWITCH_CHANNEL: &str = "+switch-master";

/// A data node's address, as the sentinels announce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddr {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One group at run time: resolution, and the hints of the follower task.
#[derive(Debug)]
pub(crate) struct SentinelGroup {
    spec: SentinelSpec,
    /// Connection settings of the data nodes (credentials, db, TLS); only the address varies.
    data: ConnectionInfo,
    config: Config,
    /// Bumped whenever a sentinel says something that may mean a new master.
    hints: watch::Sender<u64>,
    /// The last address resolution settled on.
    known: Mutex<Option<NodeAddr>>,
    /// The sentinel that answered last, tried first by the follower.
    preferred: AtomicUsize,
}

fn failure(detail: String) -> CallError {
    CallError::Redis(redis::RedisError::from((ErrorKind::Client, "sentinel", detail)))
}

impl SentinelGroup {
    pub(crate) fn new(spec: SentinelSpec, data: ConnectionInfo, config: Config) -> SentinelGroup {
        SentinelGroup {
            spec,
            data,
            config,
            hints: watch::Sender::new(0),
            known: Mutex::new(None),
            preferred: AtomicUsize::new(0),
        }
    }

    pub(crate) fn master_name(&self) -> &str {
        &self.spec.master
    }

    fn known(&self) -> MutexGuard<'_, Option<NodeAddr>> {
        lock(&self.known)
    }

    /// A client for the data node at `addr`, with the data nodes' credentials and db.
    pub(crate) fn client(&self, addr: &NodeAddr) -> Result<Client, CallError> {
        let node = node_addr(addr.host.clone(), addr.port, self.tls());
        Ok(self.config.tls.client(self.data.clone().set_addr(node))?)
    }

    /// Whether the group was configured `rediss+sentinel://`: sentinels and data nodes speak
    /// TLS (the sentinels announce the data nodes' TLS ports when `tls-replication` is on).
    fn tls(&self) -> bool {
        matches!(self.data.addr(), ConnectionAddr::TcpTls { .. })
    }

    fn sentinel_client(&self, index: usize) -> Result<Client, CallError> {
        let (host, port) = &self.spec.sentinels[index];
        let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(user) = &self.spec.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.spec.password {
            settings = settings.set_password(password);
        }
        let info = node_addr(host.clone(), *port, self.tls())
            .into_connection_info()?
            .set_redis_settings(settings);
        Ok(self.config.tls.client(info)?)
    }

    async fn command_connection(
        &self,
        index: usize,
    ) -> Result<redis::aio::MultiplexedConnection, CallError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.response_timeout));
        let client = self.sentinel_client(index)?;
        let connect = access::connect(&client, &config, self.config.connect_timeout);
        match tokio::time::timeout(self.config.connect_timeout, connect).await {
            Ok(conn) => conn,
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// What sentinel `index` says about the master: its address and config epoch, or `None`
    /// when that sentinel does not monitor it.
    async fn ask(&self, index: usize) -> Result<Option<(NodeAddr, u64)>, CallError> {
        let mut conn = self.command_connection(index).await?;
        let reply = redis::cmd("SENTINEL")
            .arg("MASTER")
            .arg(&self.spec.master)
            .query_async::<Value>(&mut conn)
            .await;
        let who = Who::new(self.spec.username.as_deref(), self.spec.password.is_some());
        match reply {
            Ok(value) => Ok(master_fields(&value)),
            Err(e) => match access::classify(e, who) {
                CallError::Redis(e) if e.code() == Some("ERR") => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The current master, as the sentinels with the newest configuration see it.
    pub(crate) async fn resolve(&self) -> Result<NodeAddr, CallError> {
        let asks = (0..self.spec.sentinels.len()).map(|i| async move { (i, self.ask(i).await) });
        let answers = futures::future::join_all(asks);
        let deadline = self.config.connect_timeout + self.config.response_timeout;
        let answers = tokio::time::timeout(deadline, answers).await.map_err(|_| {
            failure(format!("no sentinel of {:?} answered within {deadline:?}", self.spec.master))
        })?;
        let mut best: Option<(u64, usize, NodeAddr)> = None;
        let mut last_error = None;
        let mut refused = None;
        let mut tls = None;
        let mut unknown = 0;
        for (i, answer) in answers {
            match answer {
                Ok(Some((addr, epoch))) => {
                    if best.as_ref().is_none_or(|(e, _, _)| epoch > *e) {
                        best = Some((epoch, i, addr));
                    }
                }
                Ok(None) => unknown += 1,
                Err(CallError::Denied(reason)) => {
                    let (host, port) = &self.spec.sentinels[i];
                    refused.get_or_insert(format!("sentinel {host}:{port}: {reason}"));
                }
                Err(e @ CallError::Tls(..)) => {
                    tls.get_or_insert(e);
                }
                Err(e) => last_error = Some(e),
            }
        }
        match best {
            Some((_, i, addr)) => {
                self.preferred.store(i, Ordering::Relaxed);
                *self.known() = Some(addr.clone());
                Ok(addr)
            }
            None if unknown > 0 => Err(CallError::Redis(redis::RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "sentinel",
                format!("no sentinel monitors a master named {:?}", self.spec.master),
            )))),
            // Like a refusal: the sentinels that cannot be reached would not do better.
            None if tls.is_some() => Err(tls.expect("checked")),
            None => Err(match (refused, last_error) {
                // No sentinel answered, and one refused this client: the others, unreachable
                // now, would most likely refuse it as well.
                (Some(reason), _) => CallError::Denied(reason),
                (None, Some(CallError::Redis(e))) => failure(format!(
                    "no sentinel of {:?} answered (last error: {e})",
                    self.spec.master
                )),
                _ => failure(format!("no sentinel of {:?} answered", self.spec.master)),
            }),
        }
    }

    /// Hints that the master may have changed (see the module documentation).
    pub(crate) fn hints(&self) -> watch::Receiver<u64> {
        self.hints.subscribe()
    }

    fn hint(&self) {
        self.hints.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The follower task: listens to one sentinel at a time until `stop`.
    pub(crate) async fn follow(&self, mut stop: watch::Receiver<bool>) {
        let count = self.spec.sentinels.len();
        let mut index = self.preferred.load(Ordering::Relaxed) % count;
        let mut failures: u32 = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            let started = tokio::time::Instant::now();
            tokio::select! {
                _ = self.listen(index) => {}
                _ = stop.changed() => return,
            }
            // A connection that worked for a while is not a failure streak.
            if started.elapsed() > self.config.backoff_cap {
                failures = 0;
            }
            index = (index + 1) % count;
            // The failover may have happened while nobody listened.
            self.hint();
            let delay = backoff(failures, self.config.backoff_base, self.config.backoff_cap);
            failures = failures.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Follows sentinel `index` until its connection fails.
    async fn listen(&self, index: usize) -> Result<(), CallError> {
        let client = self.sentinel_client(index)?;
        let timeout = self.config.connect_timeout;
        let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
            .await
            .map_err(|_| CallError::Timeout)??;
        let (mut sink, mut stream) = pubsub.split();
        tokio::time::timeout(timeout, sink.subscribe(SWITCH_CHANNEL))
            .await
            .map_err(|_| CallError::Timeout)??;
        let mut conn = self.command_connection(index).await?;
        let mut heard = self.known().clone();
        let mut tick = tokio::time::interval(self.config.ping_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let addr = tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => switch_target(msg.get_payload_bytes(), &self.spec.master),
                    None => return Err(failure("the sentinel closed the connection".into())),
                },
                _ = tick.tick() => {
                    let reply = redis::cmd("SENTINEL")
                        .arg("get-master-addr-by-name")
                        .arg(&self.spec.master)
                        .query_async::<Value>(&mut conn)
                        .await?;
                    addr_pair(&reply)
                }
            };
            if let Some(addr) = addr {
                if heard.as_ref() != Some(&addr) {
                    heard = Some(addr);
                    self.hint();
                }
            }
        }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `[ip, port]` from `SENTINEL get-master-addr-by-name` (nil when unknown).
fn addr_pair(value: &Value) -> Option<NodeAddr> {
    match value {
        Value::Array(items) if items.len() == 2 => {
            let host = text(&items[0])?;
            let port = text(&items[1])?.parse().ok()?;
            Some(NodeAddr { host, port })
        }
        _ => None,
    }
}

/// Address and `config-epoch` from the field list of `SENTINEL MASTER`.
fn master_fields(value: &Value) -> Option<(NodeAddr, u64)> {
    let pairs: Vec<(String, String)> = match value {
        Value::Array(items) => {
            items.chunks(2).filter_map(|p| Some((text(p.first()?)?, text(p.get(1)?)?))).collect()
        }
        Value::Map(items) => items.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
        _ => return None,
    };
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let host = field("ip")?.to_string();
    let port = field("port")?.parse().ok()?;
    let epoch = field("config-epoch").and_then(|e| e.parse().ok()).unwrap_or(0);
    Some((NodeAddr { host, port }, epoch))
}

/// The new master from a `+switch-master` payload
/// (`<name> <old ip> <old port> <new ip> <new port>`), if it concerns `master`.
fn switch_target(payload: &[u8], master: &str) -> Option<NodeAddr> {
    let text = std::str::from_utf8(payload).ok()?;
    let parts: Vec<&str> = text.split_whitespace().collect();
    match parts.as_slice() {
        [name, _, _, host, port] if *name == master => {
            Some(NodeAddr { host: (*host).to_string(), port: port.parse().ok()? })
        }
        _ => None,
    }
}

/// Whether a `ROLE` reply says master.
pub(crate) fn is_master(role: &Value) -> bool {
    match role {
        Value::Array(items) => items.first().and_then(text).is_some_and(|r| r == "master"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn switch_messages_name_the_new_master_of_our_group_only() {
        let msg = b"mymaster 127.0.0.1 6379 127.0.0.1 6380";
        assert_eq!(
            switch_target(msg, "mymaster"),
            Some(NodeAddr { host: "127.0.0.1".into(), port: 6380 })
        );
        assert_eq!(switch_target(msg, "other"), None);
        assert_eq!(switch_target(b"mymaster 1 2", "mymaster"), None);
        assert_eq!(switch_target(b"mymaster a 1 b notaport", "mymaster"), None);
    }

    #[test]
    fn master_fields_give_the_address_and_epoch() {
        let reply = Value::Array(
            ["name", "m", "ip", "10.0.0.1", "port", "7000", "flags", "master", "config-epoch", "3"]
                .iter()
                .map(|s| bulk(s))
                .collect(),
        );
        assert_eq!(
            master_fields(&reply),
            Some((NodeAddr { host: "10.0.0.1".into(), port: 7000 }, 3))
        );
        assert_eq!(master_fields(&Value::Nil), None);
        let pair = Value::Array(vec![bulk("h"), bulk("1")]);
        assert_eq!(addr_pair(&pair), Some(NodeAddr { host: "h".into(), port: 1 }));
        assert_eq!(addr_pair(&Value::Nil), None);
    }

    #[test]
    fn role_replies() {
        assert!(is_master(&Value::Array(vec![bulk("master"), Value::Int(0)])));
        assert!(!is_master(&Value::Array(vec![bulk("slave"), bulk("h")])));
        assert!(!is_master(&Value::Nil));
    }
}
