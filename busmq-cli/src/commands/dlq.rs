//! `busmq dlq ls|redrive QUEUE`: the dead letters of a queue (its dead-letter queue
//! `<queue>.dlq`): listed with why and after how many deliveries they died, and the headers
//! they were pushed with, without removing them; and moved back to the queue they came from with a fresh delivery count (all, or the
//! ids given). Ids asked for that are not there are exit 6, after the others were moved.

use crate::connect::Connected;
use crate::exit::{CliError, CliResult, Exit};
use crate::headers;
use crate::output::{MessageJson, Out, body_text};
use busmq::DeadMessage;
use serde::Serialize;
use serde_json::json;

pub(crate) async fn list(
    connected: Connected,
    out: &Out,
    name: String,
    count: u32,
    after: Option<u64>,
) -> CliResult {
    let dlq = connected.bus.dead_letters(&name)?;
    let total = dlq.count().await?;
    let dead = dlq.list_after(after, count).await?;
    if out.json {
        #[derive(Serialize)]
        struct Listed<'a> {
            queue: &'a str,
            dead_letter_queue: &'a str,
            count: u64,
            dead_letters: Vec<MessageJson>,
        }
        return out.document(&Listed {
            queue: &name,
            dead_letter_queue: dlq.name(),
            count: total,
            dead_letters: dead.iter().map(letter_json).collect(),
        });
    }
    if dead.is_empty() {
        out.note(format!("no dead letters for {name:?} (in {:?})", dlq.name()));
        return Ok(());
    }
    let mut table = out.table(&["ID", "SOURCE ID", "DELIVERIES", "REASON", "HEADERS", "BODY"]);
    for letter in &dead {
        // One header per line of the cell; `-` for none, as elsewhere in tables.
        let pairs: Vec<String> = letter.headers.iter().map(|(k, v)| headers::pair(k, v)).collect();
        table.add_row(vec![
            letter.id.to_string(),
            letter.source_id.to_string(),
            letter.deliveries.to_string(),
            letter.reason.clone(),
            if pairs.is_empty() { "-".to_string() } else { pairs.join("\n") },
            body_text(&letter.payload),
        ]);
    }
    out.line(table.to_string())?;
    out.note(format!("{} of {total} dead letter(s) in {:?}", dead.len(), dlq.name()));
    Ok(())
}

fn letter_json(letter: &DeadMessage) -> MessageJson {
    MessageJson::new(letter.id, &letter.payload, &letter.headers)
        .with("source", letter.source.clone())
        .with("source_id", letter.source_id)
        .with("deliveries", letter.deliveries)
        .with("reason", letter.reason.clone())
}

pub(crate) async fn redrive(
    connected: Connected,
    out: &Out,
    name: String,
    ids: Vec<u64>,
) -> CliResult {
    let dlq = connected.bus.dead_letters(&name)?;
    let done = if ids.is_empty() { dlq.redrive_all().await? } else { dlq.redrive(&ids).await? };
    if out.json {
        out.document(&json!({
            "queue": name,
            "dead_letter_queue": dlq.name(),
            "moved": done.moved,
            "missing": done.missing,
        }))?;
    } else {
        out.line(format!("moved {} dead letter(s) back to {name:?}", done.moved))?;
    }
    if done.missing.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = done.missing.iter().map(u64::to_string).collect();
    Err(CliError::new(
        Exit::NotFound,
        format!("no dead letter with id {} in {:?}", missing.join(", "), dlq.name()),
    ))
}
