//! Opening one session of an instance: the script connection (after the access checks), the
//! scripts, the placement membership, the server's command set, and the pub/sub connection
//! with every live channel subscribed again.

use crate::fault::CallError;
use crate::script::keys::Layout;
use crate::script::scripts::scripts;
use crate::session::access;
use crate::session::cluster::Feed;
use crate::session::commands::restricted;
use crate::session::conn::Conn;
use crate::session::hub::Sink;
use crate::session::instance::{Instance, Target};
use crate::session::sentinel::is_master;
use redis::{AsyncConnectionConfig, Client, ErrorKind, ServerErrorKind, Value};

/// What every session of a store announces: its key layout and its membership (see
/// `placement.rs`).
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) layout: Layout,
    pub(crate) membership: String,
}

/// An open session: its pub/sub feed and the memberships the instance has seen (empty on a
/// cluster, which is the store's only instance).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) feed: Feed,
    pub(crate) memberships: Vec<String>,
}

/// `e` with a refusal of this instance's credentials or rights told apart.
pub(crate) fn refusal(inst: &Instance, e: CallError) -> CallError {
    match e {
        CallError::Redis(e) => access::classify(e, inst.who()),
        other => other,
    }
}

/// Opens a session on `inst` (which is not up yet: [`Instance::set_up`] follows).
pub(crate) async fn open(inst: &Instance, setup: &Setup) -> Result<Opened, CallError> {
    let config = inst.config();
    let (client, node) = match inst.target() {
        Target::Cluster(target) => {
            let (mut conn, subs, pushes) = target.connect(config, &setup.layout).await?;
            let restricted = restricted(config.commands, &mut conn).await?;
            crate::session::cluster::load_scripts(&mut conn).await;
            inst.hub.start_session(Sink::Sharded(subs)).await.map_err(|e| refusal(inst, e))?;
            inst.install(Conn::Cluster(conn), None, restricted);
            return Ok(Opened { feed: Feed::Cluster(pushes), memberships: Vec::new() });
        }
        Target::Fixed(client) => (Client::clone(client), None),
        Target::Sentinel(group) => {
            let node = group.resolve().await?;
            (group.client(&node)?, Some(node))
        }
    };
    let who = inst.who();
    let conn_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout));
    let mut conn = access::connect(&client, &conn_config, config.connect_timeout).await?;
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

    // Before anything is written: a server that `CommandSet::Full` refuses gets nothing.
    let restricted = restricted(config.commands, &mut conn).await?;

    let placement_key = setup.layout.placement_key();
    let mut pipe = redis::pipe();
    for s in scripts().all() {
        pipe.cmd("SCRIPT").arg("LOAD").arg(s.body);
    }
    for probe in access::probes(&setup.layout) {
        pipe.add_command(probe).ignore();
    }
    pipe.cmd("SADD").arg(&placement_key).arg(&setup.membership).ignore();
    pipe.cmd("SMEMBERS").arg(&placement_key);
    let replies = pipe.query_async::<Vec<Value>>(&mut conn).await;
    let mut replies = replies.map_err(|e| access::classify(e, who))?;
    let members = replies.pop();
    for (s, reply) in scripts().all().iter().zip(&replies) {
        if !matches!(reply, Value::BulkString(b) if b == s.sha.as_bytes()) {
            return Err(CallError::Redis(redis::RedisError::from((
                ErrorKind::Client,
                "SCRIPT LOAD returned an unexpected digest",
                s.name.to_string(),
            ))));
        }
    }
    let memberships = match members {
        Some(Value::Array(items) | Value::Set(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };

    let pubsub = tokio::time::timeout(config.connect_timeout, client.get_async_pubsub())
        .await
        .map_err(|_| CallError::Timeout)?
        .map_err(|e| access::classify(e, who))?;
    let (sink, stream) = pubsub.split();
    inst.hub.start_session(Sink::Plain(sink)).await.map_err(|e| refusal(inst, e))?;
    inst.install(Conn::Node(conn), node, restricted);
    Ok(Opened { feed: Feed::Node(stream), memberships })
}
