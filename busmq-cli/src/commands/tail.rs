//! `busmq tail QUEUE`: follows the messages pushed from now on, without consuming them: reads
//! after the newest id seen, every `--interval` (reads are cheap: O(log n + batch) wherever
//! the cursor is), until Ctrl-C or `--count`. Like `peek`, it neither attaches nor registers a
//! consumer, so it keeps no queue alive and never conflicts with the queue's consumers. At
//! most once consumers may take a message before a read sees it: tail shows what stays in the
//! queue long enough (on replay queues, everything).

use super::existing;
use super::peek::{entry_json, entry_line};
use crate::connect::Connected;
use crate::exit::CliResult;
use crate::output::{MessageJson, Out};
use crate::signal::stop_requested;
use busmq::Position;
use std::time::Duration;

/// Messages read per round.
const BATCH: u32 = 256;

pub(crate) async fn run(
    connected: Connected,
    out: &Out,
    name: String,
    count: Option<u64>,
    interval: Duration,
) -> CliResult {
    let queue = existing(&connected, &name).await?;
    let newest = queue.peek(Position::End, 1).await?.last_id;
    let mut cursor = newest.map_or(Position::Start, Position::AfterId);
    let after = newest.map_or_else(|| "the start".to_string(), |id| format!("id {id}"));
    out.note(format!("following {name:?} after {after}; Ctrl-C stops"));
    let mut shown: Vec<MessageJson> = Vec::new();
    let mut seen = 0u64;
    let stop = stop_requested();
    tokio::pin!(stop);
    'follow: while count.is_none_or(|count| seen < count) {
        let batch = tokio::select! {
            _ = &mut stop => break,
            batch = queue.peek(cursor, BATCH) => batch?,
        };
        for entry in &batch.entries {
            cursor = Position::AfterId(entry.id);
            if out.json {
                shown.push(entry_json(entry));
            } else {
                out.line(entry_line(entry))?;
            }
            seen += 1;
            if count.is_some_and(|count| seen >= count) {
                break 'follow;
            }
        }
        if batch.entries.is_empty() {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
    if out.json {
        return out.messages(&name, &shown);
    }
    Ok(())
}
