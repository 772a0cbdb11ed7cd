//! `busmq pub TOPIC MESSAGE` and `busmq sub TOPIC`: pub/sub (SPEC P1). Nothing is stored: a
//! subscriber sees what is published while it listens, and `pub` says how many subscribers
//! received the message.

use crate::connect::Connected;
use crate::exit::CliResult;
use crate::output::{Out, body_text};
use crate::signal::stop_requested;
use futures::StreamExt;
use serde_json::{Value, json};

pub(crate) async fn publish(
    connected: Connected,
    out: &Out,
    topic: String,
    message: String,
    raw: bool,
) -> CliResult {
    let pubsub = connected.bus.pubsub(&topic)?;
    let receivers = if raw {
        pubsub.publish_raw(message.into_bytes()).await?
    } else {
        pubsub.publish(&message).await?
    };
    if out.json {
        return out.document(&json!({ "topic": topic, "receivers": receivers }));
    }
    out.line(format!("published to {topic:?}: {receivers} subscriber(s) received it"))
}

pub(crate) async fn subscribe(
    connected: Connected,
    out: &Out,
    topic: String,
    count: Option<u64>,
) -> CliResult {
    let pubsub = connected.bus.pubsub(&topic)?;
    // Any JSON (busmq's default codec) decodes; other bytes arrive as decode errors.
    let mut subscription = pubsub.subscribe::<Value>().await?;
    out.note(format!("subscribed to {topic:?}; Ctrl-C stops"));
    let (mut received, mut seen) = (Vec::new(), 0u64);
    let stop = stop_requested();
    tokio::pin!(stop);
    while count.is_none_or(|count| seen < count) {
        let message = tokio::select! {
            _ = &mut stop => break,
            message = subscription.next() => message,
        };
        match message {
            None => break,
            Some(Ok(value)) => {
                seen += 1;
                if out.json {
                    received.push(value);
                } else {
                    out.line(body_text(value.to_string().as_bytes()))?;
                }
            }
            Some(Err(error)) => out.note(format!("warning: {error}")),
        }
    }
    if out.json {
        return out.document(&json!({ "topic": topic, "messages": received }));
    }
    Ok(())
}
