//! A Redis Cluster as one instance: the redis crate's async cluster client discovers the slots
//! from the seeds, routes every script by its first key (all keys of a queue share one hash
//! tag, so one slot) and follows MOVED/ASK redirections.
//!
//! Pub/sub is sharded (`SSUBSCRIBE`/`SPUBLISH`, Redis 7): a channel lives on the node that owns
//! its slot, so notices are not broadcast to every node. Messages arrive as RESP3 pushes on
//! one feed, from a cluster connection of their own (see [`ClusterTarget::connect`]). Shard
//! subscriptions are lost when their slot moves (the old owner sends `sunsubscribe`) or their
//! node dies (a `Disconnection` push); both mark the hub for repair, and the session
//! subscribes again on the current owners and sends `Notice::Reset`, since notices may have
//! been missed meanwhile.

use crate::config::endpoint::Endpoint;
use crate::config::settings::Config;
use crate::config::url::node_addr;
use crate::fault::CallError;
use crate::script::keys::Layout;
use crate::script::scripts::scripts;
use crate::session::access::{self, Who};
use futures::StreamExt;
use redis::aio::PubSubStream;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo,
};
use redis::{
    AsyncConnectionConfig, ConnectionInfo, IntoConnectionInfo, Msg, ProtocolVersion, PushInfo,
    PushKind, Value,
};
use tokio::sync::mpsc;

/// Where a cluster instance's sessions connect to.
#[derive(Debug)]
pub(crate) struct ClusterTarget {
    seeds: Vec<ConnectionInfo>,
}

impl ClusterTarget {
    pub(crate) fn new(endpoint: &Endpoint) -> Result<ClusterTarget, CallError> {
        let spec = endpoint.cluster.as_ref().ok_or(CallError::Down)?;
        let settings = endpoint.info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let tls = endpoint.uses_tls();
        let seeds = spec
            .seeds
            .iter()
            .map(|(host, port)| {
                node_addr(host.clone(), *port, tls)
                    .into_connection_info()
                    .map(|info| info.set_redis_settings(settings.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClusterTarget { seeds })
    }

    /// Connects (slot discovery included) and returns the script connection, the subscription
    /// connection and the latter's push feed.
    ///
    /// They are two cluster connections on purpose: a node that loses a slot sends an
    /// unsolicited `sunsubscribe` push to every connection with a shard subscription in it, and
    /// the redis crate takes such a push for the reply of the request in flight on that
    /// connection. On a connection that also runs scripts, a script's reply would then be
    /// matched with the next request (seen as duplicated, lost and reordered messages under
    /// resharding). The script connection subscribes to nothing and speaks RESP2.
    pub(crate) async fn connect(
        &self,
        config: &Config,
        layout: &Layout,
    ) -> Result<(ClusterConnection, ClusterConnection, mpsc::UnboundedReceiver<PushInfo>), CallError>
    {
        self.check_access(config, layout).await?;
        let builder = |seeds: Vec<ConnectionInfo>| {
            let builder = config.tls.cluster(ClusterClientBuilder::new(seeds));
            builder
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                // A few quick retries ride over MOVED/ASK/TRYAGAIN and a failover's first
                // moments; the store's own retry policy handles longer outages.
                .retries(4)
                .min_retry_wait(20)
                .max_retry_wait(500)
        };
        let data = builder(self.resp2_seeds()).build()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let subs = builder(self.seeds.clone())
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(tx)
            .build()?;
        let connect = async {
            let data = data.get_async_connection().await?;
            let subs = subs.get_async_connection().await?;
            Ok::<_, redis::RedisError>((data, subs))
        };
        let (data, subs) = tokio::time::timeout(config.connect_timeout * 2, connect)
            .await
            .map_err(|_| CallError::Timeout)??;
        Ok((data, subs, rx))
    }

    fn resp2_seeds(&self) -> Vec<ConnectionInfo> {
        self.seeds
            .iter()
            .map(|info| {
                let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP2);
                info.clone().set_redis_settings(settings)
            })
            .collect()
    }

    /// Checks on the first seed that answers that it takes the credentials and grants the
    /// rights busmq needs (see [`crate::access`]): the cluster client reports a refusal only as
    /// a failure to create its connections. Rights are per node, but a cluster whose nodes
    /// disagree on them is beyond what one seed can tell. Seeds that cannot be reached are
    /// skipped; the cluster client reports them.
    async fn check_access(&self, config: &Config, layout: &Layout) -> Result<(), CallError> {
        let conn_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout));
        for info in self.resp2_seeds() {
            let who = Who::of(info.redis_settings());
            let client = config.tls.client(info.clone())?;
            let connect = access::connect(&client, &conn_config, config.connect_timeout);
            let mut conn = match tokio::time::timeout(config.connect_timeout * 2, connect).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(denied @ (CallError::Denied(_) | CallError::Tls(..)))) => {
                    return Err(denied);
                }
                Ok(Err(_)) | Err(_) => continue,
            };
            let mut pipe = redis::pipe();
            pipe.cmd("PING");
            for probe in access::probes(layout) {
                // Refused, or redirected to the slot's node (MOVED) or told NOSCRIPT once the
                // rights are granted: only a refusal matters.
                pipe.add_command(probe);
            }
            let answer = pipe.query_async::<Vec<Value>>(&mut conn);
            match tokio::time::timeout(config.response_timeout, answer).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => match access::classify(e, who) {
                    denied @ CallError::Denied(_) => return Err(denied),
                    CallError::Redis(e) if e.clone().into_server_errors().is_some() => {
                        return Ok(());
                    }
                    _ => continue,
                },
                Err(_) => continue,
            }
        }
        Ok(())
    }
}

fn all_masters(policy: ResponsePolicy) -> RoutingInfo {
    RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(policy)))
}

/// Loads every script on every master: one pipeline per master, sent to each by its address,
/// all at once. A master that is down (or one promoted later) gets a script on first use
/// instead: the call path loads it on the slot's master after a NOSCRIPT answer
/// (`ops/call.rs`).
///
/// Not one `AllMasters` fan-out per script: the redis crate's cluster driver (1.8) queues a
/// fan-out's per-node requests from inside its own task, and when other requests are still in
/// flight there (the slower answers of the previous fan-out, which `OneSucceeded` does not
/// wait for) nothing may wake the task to send them. The fan-out then waits out the response
/// timeout: about one connect in 160 took 5 s more, and `busmq` commands on a cluster gave up
/// as unreachable. Requests for one node are queued by the caller and sent at once.
pub(crate) async fn load_scripts(conn: &mut ClusterConnection) {
    let Ok(masters) = masters(conn).await else { return };
    let all = scripts().all();
    let loads = masters.into_iter().map(|(host, port)| {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        for s in all {
            pipe.cmd("SCRIPT").arg("LOAD").arg(s.body);
        }
        async move {
            let route = SingleNodeRoutingInfo::ByAddress { host, port };
            let _ = conn.route_pipeline(pipe, 0, all.len(), route).await;
        }
    });
    futures::future::join_all(loads).await;
}

/// Whether at least one master answers PING: a cluster with one master down still serves
/// the other masters' slots, so that alone does not end the session.
pub(crate) async fn ping(conn: &mut ClusterConnection) -> bool {
    let answer =
        conn.route_command(redis::cmd("PING"), all_masters(ResponsePolicy::OneSucceeded)).await;
    matches!(answer, Ok(Value::SimpleString(ref s)) if s == "PONG")
}

/// The addresses of the cluster's masters as the cluster names them (`host`, `port`), sorted:
/// where a walk over every node's keys (`SCAN`) goes.
pub(crate) async fn masters(
    conn: &mut ClusterConnection,
) -> redis::RedisResult<Vec<(String, u16)>> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let random = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
    let Value::Array(ranges) = conn.route_command(cmd, random).await? else {
        return Ok(Vec::new());
    };
    // Each range is [start, end, [host, port, id, ...] of its master, then its replicas].
    let mut masters: Vec<(String, u16)> = ranges
        .iter()
        .filter_map(|range| match range {
            Value::Array(parts) => match parts.get(2) {
                Some(Value::Array(node)) => match (node.first(), node.get(1)) {
                    (Some(Value::BulkString(host)), Some(Value::Int(port))) => Some((
                        String::from_utf8_lossy(host).into_owned(),
                        u16::try_from(*port).ok()?,
                    )),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .collect();
    masters.sort();
    masters.dedup();
    Ok(masters)
}

/// What a session's pub/sub feed reports.
#[derive(Debug)]
pub(crate) enum FeedEvent {
    Message(Msg),
    /// Shard subscriptions may be gone: `Some(channel)` when the server dropped one (its slot
    /// moved), `None` when a node's connection was lost.
    Lost(Option<String>),
}

/// The pub/sub messages of one session.
pub(crate) enum Feed {
    Node(PubSubStream),
    Cluster(mpsc::UnboundedReceiver<PushInfo>),
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Feed::Node(_) => "Feed::Node",
            Feed::Cluster(_) => "Feed::Cluster",
        })
    }
}

fn classify(push: PushInfo) -> Option<FeedEvent> {
    match push.kind {
        PushKind::Message | PushKind::SMessage => Msg::from_push_info(push).map(FeedEvent::Message),
        PushKind::SUnsubscribe => {
            let channel = match push.data.first() {
                Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                _ => None,
            };
            channel.map(|c| FeedEvent::Lost(Some(c)))
        }
        PushKind::Disconnection => Some(FeedEvent::Lost(None)),
        _ => None,
    }
}

impl Feed {
    /// The next event; `None` when the session's connection is gone.
    pub(crate) async fn next(&mut self) -> Option<FeedEvent> {
        match self {
            Feed::Node(stream) => stream.next().await.map(FeedEvent::Message),
            Feed::Cluster(rx) => loop {
                if let Some(event) = classify(rx.recv().await?) {
                    return Some(event);
                }
            },
        }
    }
}
