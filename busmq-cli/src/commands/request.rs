//! `busmq request SERVICE BODY`: sends one request to a service (SPEC P2) and prints its
//! replies as they come, partial ones first, one per line. BODY goes as a JSON string unless
//! `--raw` sends it as the JSON document it is (for a server of a struct). The deadline is the
//! global `--timeout`, the longest wait for each reply.
//!
//! No server, a failed request and a timeout are exit 7, each with its own message.

use crate::connect::Connected;
use crate::exit::{CliError, CliResult};
use crate::output::Out;
use busmq::{Headers, RequestOptions};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// How `request` sends its request.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) raw: bool,
    pub(crate) headers: Headers,
    pub(crate) timeout: Duration,
}

pub(crate) async fn run(
    connected: Connected,
    out: &Out,
    name: String,
    body: String,
    o: Options,
) -> CliResult {
    let service = connected.bus.service(&name)?;
    let body = if o.raw {
        serde_json::from_str::<Value>(&body).map_err(|e| {
            CliError::new(crate::exit::Exit::Usage, format!("--raw body is not JSON: {e}"))
        })?
    } else {
        Value::String(body)
    };
    let options = RequestOptions::new().timeout(o.timeout).headers(o.headers);
    let mut replies = service.request_stream::<_, Value>(&body, options).await?;
    let mut all = Vec::new();
    while let Some(reply) = replies.next().await {
        let reply = reply?;
        if !out.json {
            out.line(text(&reply))?;
        }
        all.push(reply);
    }
    if out.json {
        return out.document(&json!({ "service": name, "replies": all }));
    }
    Ok(())
}

/// A reply as a line: a string as it is, anything else as compact JSON.
fn text(reply: &Value) -> String {
    match reply {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
