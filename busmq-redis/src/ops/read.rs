//! Replaying reads (`lua/read.lua`): up to `max` entries from a position, removing nothing, in
//! O(log n + max) (positions map to page lists by arithmetic, ids are found by binary search).

use crate::ops::call::Ctx;
use crate::ops::quarantine::{LEFT_IN_PLACE, describe, script_reports};
use crate::script::entry::parse;
use crate::script::reply::unexpected;
use crate::script::scripts::scripts;
use busmq_core::store::{Position, ReadBatch};
use busmq_core::{QueueName, Result};
use bytes::Bytes;

pub(crate) async fn read(
    ctx: &Ctx,
    queue: &QueueName,
    from: Position,
    max: u32,
) -> Result<ReadBatch> {
    let (kind, value) = match from {
        Position::Start => ("i", 0),
        Position::Index(n) => ("i", n),
        Position::FromId(id) => ("f", id),
        Position::AfterId(id) => ("a", id),
        Position::End => ("e", 0),
    };
    let mut reply = ctx
        .call("read", queue)
        .script(&scripts().read, None, |cmd, _| {
            cmd.arg(kind).arg(value).arg(max);
        })
        .await?;
    match reply.status() {
        "ok" => {
            let last_id = reply.opt_u64(1)?;
            let mut foreign = script_reports(reply.take_array(2)?, "read", LEFT_IN_PLACE)?;
            // As read.lua does: only those before an entry that is handed out are named, so
            // that a reader continuing after it names each once.
            let mut held = Vec::new();
            // The last element is when the next delayed message is due.
            let end = reply.len().saturating_sub(1);
            let next_due = crate::ops::schedule::millis_until(&reply, end);
            let mut entries = Vec::with_capacity(end.saturating_sub(3));
            for i in 3..end {
                let raw = Bytes::from(reply.take_bytes(i)?);
                match parse(raw) {
                    Ok(mut e) => {
                        e.deliveries = 0;
                        foreign.append(&mut held);
                        entries.push(e);
                    }
                    Err((reason, raw)) => {
                        held.push(describe(&reason, &raw, raw.len(), LEFT_IN_PLACE));
                    }
                }
            }
            Ok(ReadBatch { entries, last_id, foreign, next_due })
        }
        "missing" => Ok(ReadBatch::default()),
        other => Err(unexpected("read", other)),
    }
}
