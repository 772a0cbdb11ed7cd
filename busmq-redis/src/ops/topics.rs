//! Notifications and pub/sub: watching a queue's notice channel (which the scripts publish on),
//! and topics (SPEC P1), over each instance's shared pub/sub connection (`session/hub.rs`).

use crate::ops::call::Ctx;
use crate::script::reply::unexpected;
use busmq_core::store::Notice;
use busmq_core::{QueueName, Result, TopicName};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::Value;

pub(crate) async fn watch(ctx: &Ctx, queue: &QueueName) -> Result<BoxStream<'static, Notice>> {
    let call = ctx.call("watch", queue);
    let route = call.route().await?;
    let inst = call.instance(route);
    // A close that happened before this call may still have its notice in flight on the
    // shared subscription: remember which generation was closed already.
    let closed = inst
        .query(redis::cmd("HGET").arg(call.keys.tombstone()).arg("closed"))
        .await
        .map_err(|e| call.fail(inst, e))?;
    let closed_before = match closed {
        Value::BulkString(b) => std::str::from_utf8(&b).ok().and_then(|t| t.parse().ok()),
        _ => None,
    }
    .unwrap_or(0);
    let channel = &call.keys.channel;
    let main =
        inst.hub.watch(channel.clone(), closed_before).await.map_err(|e| call.fail(inst, e))?;
    if route.legacy {
        // If the queue expires where it lives now, it is recreated on its owner: watch there
        // too. (An owner that is down cannot hold it yet, so that part may fail.)
        let owner = ctx.owner(queue.as_str());
        if let Ok(second) = owner.hub.watch(channel.clone(), closed_before).await {
            return Ok(futures::stream::select(main, second).boxed());
        }
    }
    Ok(main.boxed())
}

pub(crate) async fn publish(ctx: &Ctx, topic: &TopicName, payload: Bytes) -> Result<u64> {
    let inst = ctx.owner(topic.as_str());
    let channel = ctx.layout.topic_channel(topic.as_str());
    let value = inst
        .query(redis::cmd(inst.publish_command()).arg(&channel).arg(&payload[..]))
        .await
        .map_err(|e| ctx.context("publish", inst, None, Some(topic.as_str())).error(e))?;
    match value {
        // Redis counts receiving connections: one per subscribed store, not per stream.
        Value::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
        other => Err(unexpected("publish", format!("{other:?}"))),
    }
}

pub(crate) async fn subscribe(ctx: &Ctx, topic: &TopicName) -> Result<BoxStream<'static, Bytes>> {
    let inst = ctx.owner(topic.as_str());
    let channel = ctx.layout.topic_channel(topic.as_str());
    let sub = inst
        .hub
        .topic(channel)
        .await
        .map_err(|e| ctx.context("subscribe", inst, None, Some(topic.as_str())).error(e))?;
    Ok(sub.boxed())
}
