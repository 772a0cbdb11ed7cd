//! `busmq peek QUEUE`: messages of a queue from a position, read without removing anything,
//! without attaching (the queue's life is not extended) and without registering a consumer (a
//! peek never conflicts with the queue's own consumers). A queue that does not exist is
//! exit 6. Each message is shown with its headers.

use super::existing;
use crate::connect::Connected;
use crate::exit::CliResult;
use crate::headers::NONE;
use crate::output::{MessageJson, Out, message_line};
use busmq::Position;
use busmq::store::Entry;
use serde_json::json;

/// The position `--from` or `--id` ask for (the oldest message without either).
pub(crate) fn start(from: Option<u64>, id: Option<u64>) -> Position {
    match (from, id) {
        (Some(index), _) => Position::Index(index),
        (None, Some(id)) => Position::FromId(id),
        (None, None) => Position::Start,
    }
}

pub(crate) async fn run(
    connected: Connected,
    out: &Out,
    name: String,
    from: Position,
    count: u32,
) -> CliResult {
    let queue = existing(&connected, &name).await?;
    let batch = queue.peek(from, count).await?;
    for detail in &batch.foreign {
        out.note(format!("warning: queue {name:?} holds an entry busmq did not write: {detail}"));
    }
    if out.json {
        let messages: Vec<MessageJson> = batch.entries.iter().map(entry_json).collect();
        return out.messages(&name, &messages);
    }
    if batch.entries.is_empty() {
        out.note(format!("no messages in {name:?} at that position"));
    }
    for entry in &batch.entries {
        out.line(entry_line(entry))?;
    }
    Ok(())
}

/// `<id>  <body>  [headers]`, and where it was dead-lettered from for an entry of a
/// dead-letter queue.
pub(crate) fn entry_line(entry: &Entry) -> String {
    let line = message_line(entry.id, &entry.payload, entry.headers.as_deref().unwrap_or(&NONE));
    match &entry.dead {
        Some(dead) => format!(
            "{line}  (from {:?} #{} after {} deliveries: {})",
            dead.queue, dead.id, dead.deliveries, dead.reason
        ),
        None => line,
    }
}

pub(crate) fn entry_json(entry: &Entry) -> MessageJson {
    let json =
        MessageJson::new(entry.id, &entry.payload, entry.headers.as_deref().unwrap_or(&NONE));
    match &entry.dead {
        Some(dead) => json.with("dead_letter", json!(dead.as_ref())),
        None => json,
    }
}
