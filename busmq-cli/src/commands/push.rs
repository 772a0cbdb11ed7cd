//! `busmq push QUEUE [MESSAGE]...`: pushes the arguments, or each line of stdin, in order, and
//! prints their ids. Messages go as JSON strings (what `queue.push(&"text")` sends, so a Rust
//! consumer of `String` receives them) unless `--raw` pushes the bytes as they are. Every
//! message of the run carries the `--header`s (checked by clap before anything connects).
//!
//! The queue is attached (created with `--ttl` if needed) for the length of the push and
//! detached after: like every busmq queue, it then lives `ttl` past its last attachment.

use crate::connect::Connected;
use crate::exit::CliResult;
use crate::output::Out;
use busmq::{AttachOptions, Headers, Push};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Pushes awaited together: concurrent pushes are written in one store call.
const WINDOW: usize = 1000;

/// How `push` sends its messages.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) raw: bool,
    pub(crate) headers: Headers,
    pub(crate) ttl: Duration,
}

pub(crate) async fn run(
    connected: Connected,
    out: &Out,
    name: String,
    messages: Vec<String>,
    o: Options,
) -> CliResult {
    let queue = connected.bus.queue(&name)?;
    queue.attach_with(AttachOptions::new().ttl(o.ttl)).await?;
    let mut ids = Vec::new();
    let mut window = Vec::with_capacity(WINDOW);
    let push = |message: &str| -> Push {
        let headers = o.headers.clone();
        if o.raw {
            queue.push_raw_with(message.as_bytes().to_vec(), headers)
        } else {
            queue.push_with(message, headers)
        }
    };
    if messages.is_empty() {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            window.push(push(&line));
            if window.len() == WINDOW {
                written(&mut window, &mut ids, out).await?;
            }
        }
    } else {
        for message in &messages {
            window.push(push(message));
        }
    }
    written(&mut window, &mut ids, out).await?;
    queue.detach().await?;
    if out.json {
        return out.document(&json!({ "queue": name, "ids": ids }));
    }
    out.note(format!("pushed {} message(s) to {name:?}", ids.len()));
    Ok(())
}

/// Waits for the pushes of `window` (in order) and prints their ids as they come.
async fn written(window: &mut Vec<Push>, ids: &mut Vec<u64>, out: &Out) -> CliResult {
    for id in futures::future::join_all(window.drain(..)).await {
        let id = id?;
        ids.push(id);
        if !out.json {
            out.line(id.to_string())?;
        }
    }
    Ok(())
}
