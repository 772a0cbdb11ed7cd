//! Entries busmq did not write (SPEC E3, S4), client side: every take moves them aside into the
//! queue's quarantine list `<ns>:{q}:f` (see `lua/lib.lua`), so that one such entry never
//! blocks the entries after it, and describes each once for the consumer to report.
//!
//! The scripts check only what is cheap in Lua and move aside what fails there themselves,
//! replying with each value's length and first bytes; entries that leave Redis without passing
//! through Lua (the fast take, the blocking wait, reliable page segments), and those that pass
//! the scripts' check but not the full decode, are moved aside here with quarantine.lua.

use crate::ops::call::Call;
use crate::script::entry::parse;
use crate::script::reply::unexpected;
use crate::script::scripts::scripts;
use busmq_core::Result;
use busmq_core::store::Entry;
use bytes::Bytes;
use redis::Value;
use std::sync::Arc;

/// How many bytes of a foreign value a report shows.
const SHOWN: usize = 32;

/// Why the scripts reject a value (they only look at its header).
const SCRIPT_REASON: &str = "an entry does not start with a valid busmq header";

/// What a replaying read did with a foreign entry.
pub(crate) const LEFT_IN_PLACE: &str = "left in place: a replaying read removes nothing";

/// One report: what was wrong, the first bytes (escaped) and length, and what became of it.
pub(crate) fn describe(reason: &str, head: &[u8], len: usize, fate: &str) -> String {
    let shown = &head[..head.len().min(SHOWN)];
    let more = if len > shown.len() { "..." } else { "" };
    format!("{reason}: \"{}\"{more} ({len} bytes); {fate}", shown.escape_ascii())
}

/// Where a take moved foreign entries.
pub(crate) fn moved_to(call: &Call<'_>) -> String {
    format!("moved aside to {}", call.keys.quarantine())
}

/// Reports for what a script moved aside (or stepped over): a flat array of each value's
/// length and first bytes.
pub(crate) fn script_reports(
    previews: Vec<Value>,
    op: &'static str,
    fate: &str,
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(previews.len() / 2);
    let mut items = previews.into_iter();
    while let Some(len) = items.next() {
        let (Value::Int(len), Some(Value::BulkString(head))) = (len, items.next()) else {
            return Err(unexpected(op, "a foreign entry's preview is not a length and bytes"));
        };
        out.push(describe(SCRIPT_REASON, &head, usize::try_from(len).unwrap_or(0), fate));
    }
    Ok(out)
}

/// A value that failed the full decode, and why.
#[derive(Debug)]
pub(crate) struct Foreign {
    pub(crate) raw: Bytes,
    pub(crate) reason: String,
}

impl Foreign {
    fn report(&self, fate: &str) -> String {
        describe(&self.reason, &self.raw, self.raw.len(), fate)
    }
}

/// Decodes taken values, in order, setting the foreign ones apart.
pub(crate) fn split(raw: impl IntoIterator<Item = Bytes>) -> (Vec<Entry>, Vec<Foreign>) {
    let raw = raw.into_iter();
    // Sized up front: entries are moved on each regrowth, and a take brings a batch of them.
    let mut entries = Vec::with_capacity(raw.size_hint().0);
    let mut foreign = Vec::new();
    for raw in raw {
        match parse(raw) {
            Ok(e) => entries.push(e),
            Err((reason, raw)) => foreign.push(Foreign { raw, reason }),
        }
    }
    (entries, foreign)
}

/// A foreign value still pending in a batch of a reliable take, at `index`.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) batch: Arc<str>,
    pub(crate) index: u64,
    pub(crate) value: Foreign,
}

/// Moves values that a take already removed from the queue into the quarantine, and reports
/// each. It never fails: the take's other entries are out of the queue too, and must reach the
/// caller whatever happens here.
pub(crate) async fn move_aside(call: &Call<'_>, bad: Vec<Foreign>) -> Vec<String> {
    if bad.is_empty() {
        return Vec::new();
    }
    let moved = call
        .script(&scripts().quarantine, None, |cmd, _| {
            cmd.arg("v");
            for b in &bad {
                cmd.arg(&b.raw[..]);
            }
        })
        .await;
    let fate = match moved {
        Ok(reply) if reply.is("ok") => moved_to(call),
        Ok(_) => "dropped: the queue no longer exists".to_string(),
        Err(e) => format!("lost: moving it aside failed ({e})"),
    };
    bad.iter().map(|b| b.report(&fate)).collect()
}

/// Moves foreign entries of a reliable take's batches into the quarantine and settles them as
/// acknowledged, in one script call, and reports each moved. When that call fails they stay
/// pending, and the first reliable take after their visibility timeout moves them aside and
/// reports them (see `requeue_expired` in `lua/lib.lua`), so nothing is reported now.
pub(crate) async fn settle_foreign(call: &Call<'_>, bad: Vec<Pending>) -> Vec<String> {
    if bad.is_empty() {
        return Vec::new();
    }
    let settled = call
        .script(&scripts().quarantine, None, |cmd, _| {
            cmd.arg("b");
            for group in bad.chunk_by(|a, b| a.batch == b.batch) {
                cmd.arg(&*group[0].batch).arg(group.len());
                for p in group {
                    cmd.arg(p.index);
                }
            }
        })
        .await;
    let Ok(reply) = settled else {
        return Vec::new();
    };
    if !reply.is("ok") {
        return Vec::new();
    }
    let fate = moved_to(call);
    bad.iter()
        .enumerate()
        .filter(|(i, _)| reply.u64(i + 1).is_ok_and(|done| done == 1))
        .map(|(_, p)| p.value.report(&fate))
        .collect()
}
