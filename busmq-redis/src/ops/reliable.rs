//! Reliable takes and settlements without passing entries through Lua. `lua/claim.lua` moves ready
//! entries into pending batch lists (RENAME or `SORT .. STORE` of a page, where the server has
//! them: see `CommandSet`) inside one MULTI whose `LRANGE`s hand them to the client; each entry's
//! receipt names its batch and its index in it (`receipt.rs`), so that `lua/settle.lua` sets one
//! bit per acknowledged entry instead of looking entries up by id (acks travel as runs of
//! consecutive indices, set 32 bits to a `BITFIELD` operation). Nothing ever moves a pending
//! entry to another batch or index (an extension gives it a deadline of its own in place), so a
//! receipt stays valid until its settlement, whatever other settlements race with it. (Copying
//! every entry into the pending hash and settling it by id made Redis spend about 6.5 us per
//! reliable message.) The common take runs `lua/claim_fast.lua`, claim.lua's case of ready
//! entries in at most K pages without lib.lua, and claim.lua where it answers 'slow'.

use crate::fault::CallError;
use crate::ops::call::{Call, Ctx, Route};
use crate::ops::quarantine::{Foreign, Pending, moved_to, script_reports, settle_foreign};
use crate::ops::receipt::{issue, redeem};
use crate::script::args::millis;
use crate::script::entry::parse;
use crate::script::keys::BatchNames;
use crate::script::reply::{Reply, unexpected};
use crate::script::scripts::scripts;
use busmq_core::store::{Settle, Settled, Settlement, Taken};
use busmq_core::{QueueName, Result};
use bytes::Bytes;
use redis::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Page segments a reliable take moves inside Redis (claim.lua's K): a take up to the page
/// size spans at most two pages; anything beyond goes through Lua in one more segment. None
/// on a server without `RENAME` and `SORT` (`CommandSet`), where every entry goes that way.
const SEGMENTS: usize = 2;

/// What one claim.lua transaction answered: the script's reply and each segment's entries.
struct Claimed {
    take: String,
    reply: Reply,
    lists: Vec<Value>,
    /// claim.lua's K for this take.
    segments: usize,
}

/// A reliable take (see the module docs): entries past `max_deliveries` come back in
/// [`Taken::dead`].
pub(crate) async fn claim(
    ctx: &Ctx,
    queue: &QueueName,
    max: u32,
    visibility: Duration,
    max_deliveries: u32,
) -> Result<Taken> {
    let call = ctx.call("take", queue);
    let claimed = call
        .routed(|route| transaction(&call, route, max, visibility), |c| c.reply.is("missing"))
        .await?;
    match claimed.reply.status() {
        "ok" => decode(&call, claimed, max_deliveries).await,
        "missing" => Ok(Taken::default()),
        other => Err(unexpected("take", other)),
    }
}

async fn transaction(
    call: &Call<'_>,
    route: Route,
    max: u32,
    visibility: Duration,
) -> Result<Claimed> {
    let inst = call.instance(route);
    let segments = if inst.restricted() { 0 } else { SEGMENTS };
    // claim_fast.lua first where pages can move inside Redis, and claim.lua where it answers
    // 'slow' (it wrote nothing, so the LRANGEs found nothing), and for a while after that
    // (`full_claims.rs`).
    let full = &call.ctx.full_claims;
    let fast = segments > 0 && !full.full(call.queue.as_str(), Instant::now());
    let mut claimer = if fast { &scripts().claim_fast } else { &scripts().claim };
    loop {
        let take = call.ctx.batches.next();
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        let mut claim = call.evalsha(claimer);
        claim.arg(max).arg(&take).arg(millis(visibility)).arg(segments);
        pipe.add_command(claim);
        for segment in 0..segments + 2 {
            let batch = BatchNames::segment(&take, segment);
            pipe.cmd("LRANGE").arg(call.keys.batch(&batch)).arg(0).arg(-1);
        }
        let mut replies =
            call.transaction(inst, &[claimer], &pipe).await.map_err(|e| call.fail(inst, e))?;
        if replies.len() != segments + 3 {
            let n = replies.len();
            return Err(unexpected("take", format!("{n} replies to the reliable take")));
        }
        let lists = replies.split_off(1);
        let reply = match replies.pop() {
            Some(Value::ServerError(e)) => {
                return Err(call.fail(inst, CallError::Redis(e.into())));
            }
            Some(value) => Reply::parse("take", value)?,
            None => return Err(unexpected("take", "no reply")),
        };
        if reply.is("slow") && std::ptr::eq(claimer, &scripts().claim_fast) {
            full.slow(call.queue.as_str(), Instant::now());
            claimer = &scripts().claim;
            continue;
        }
        return Ok(Claimed { take, reply, lists, segments });
    }
}

/// Decodes what a reliable take claimed; each entry's receipt names its batch and index. Foreign
/// entries are settled as moved aside (see `settle_foreign`), so that they are neither handed
/// out nor redelivered, and the others are delivered as usual.
async fn decode(call: &Call<'_>, claimed: Claimed, max_deliveries: u32) -> Result<Taken> {
    let Claimed { take, mut reply, lists, segments } = claimed;
    let mut taken = Taken::default();
    let mut bad = Vec::new();
    for (segment, list) in lists.into_iter().enumerate() {
        let count = reply.u64(segment + 1)?;
        let items = match list {
            Value::Array(items) => items,
            Value::Nil => Vec::new(),
            other => return Err(unexpected("take", format!("{other:?}"))),
        };
        if items.len() as u64 != count {
            return Err(unexpected(
                "take",
                format!("segment {segment} holds {} entries, not {count}", items.len()),
            ));
        }
        if items.is_empty() {
            continue;
        }
        // One token per batch, shared by the receipts of its entries.
        let batch: Arc<str> = BatchNames::segment(&take, segment).into();
        for (index, item) in (0u64..).zip(items) {
            let raw = match item {
                Value::BulkString(b) => Bytes::from(b),
                other => return Err(unexpected("take", format!("{other:?}"))),
            };
            match parse(raw) {
                Ok(mut e) => {
                    // The stored header keeps the previous delivery count.
                    e.deliveries = e.deliveries.saturating_add(1);
                    e.receipt = issue(&batch, index, e.id, e.deliveries);
                    if e.deliveries > max_deliveries {
                        taken.dead.push(e);
                    } else {
                        taken.entries.push(e);
                    }
                }
                Err((reason, raw)) => {
                    let value = Foreign { raw, reason };
                    bad.push(Pending { batch: Arc::clone(&batch), index, value });
                }
            }
        }
    }
    // What the script moved aside itself (returned or expired entries).
    let by_script = match reply.len() {
        n if n > segments + 3 => reply.take_array(segments + 3)?,
        _ => Vec::new(),
    };
    taken.foreign = script_reports(by_script, "take", &moved_to(call))?;
    taken.next_due = crate::ops::schedule::millis_until(&reply, segments + 4);
    taken.next_expiry = crate::ops::schedule::millis_until(&reply, segments + 5);
    taken.foreign.extend(settle_foreign(call, bad).await);
    Ok(taken)
}

fn kind(action: Settlement) -> &'static str {
    match action {
        Settlement::Ack => "a",
        Settlement::Release => "l",
        Settlement::Return => "r",
        Settlement::Extend(_) => "e",
    }
}

/// A settlement sent to settle.lua: its slot in the answer, what to do, its batch, its index in
/// the batch.
type Sent<'a> = (usize, Settlement, &'a str, u64);

/// Whether settle.lua's item `k` says entry `j` of its group was settled: for an ack run 1
/// (all), 0 (none) or a string with a '1' or '0' per entry; for the others 1 or 0.
fn run_done(reply: &Reply, k: usize, j: usize, run: bool) -> Result<bool> {
    if let (true, Some(marks)) = (run, reply.text(k)) {
        return match marks.as_bytes().get(j) {
            Some(b'1') => Ok(true),
            Some(b'0') => Ok(false),
            _ => Err(unexpected("settle", format!("ack marks {marks:?} at {k}"))),
        };
    }
    Ok(reply.u64(k)? == 1)
}

/// Settles reliable deliveries by their receipts (see the module docs). A settlement without a
/// receipt, or with one issued for another delivery, names no pending delivery: it is stale
/// without asking Redis.
pub(crate) async fn settle(ctx: &Ctx, queue: &QueueName, ops: &[Settle]) -> Result<Vec<Settled>> {
    let mut out = vec![Settled::Stale; ops.len()];
    let sent: Vec<Sent<'_>> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| redeem(op).map(|(batch, index)| (i, op.action, batch, index)))
        .collect();
    if sent.is_empty() {
        return Ok(out);
    }
    // Groups of consecutive settlements of one kind in one batch (see settle.lua), acks
    // further cut into runs of consecutive indices: each run is one reply element.
    let same = |a: &Sent<'_>, b: &Sent<'_>| {
        kind(a.1) == kind(b.1) && a.2 == b.2 && (!matches!(a.1, Settlement::Ack) || b.3 == a.3 + 1)
    };
    let groups = || sent.chunk_by(same);
    let call = ctx.call("settle", queue);
    let reply = call
        .script(&scripts().settle, None, |cmd, _| {
            cmd.arg(&call.keys.channel).arg("");
            for group in groups() {
                let (_, action, batch, first) = group[0];
                cmd.arg(kind(action)).arg(batch);
                if let Settlement::Ack = action {
                    cmd.arg(first).arg(group.len());
                    continue;
                }
                cmd.arg(group.len());
                for (_, action, _, index) in group {
                    cmd.arg(index);
                    if let Settlement::Extend(by) = action {
                        cmd.arg(millis(*by));
                    }
                }
            }
        })
        .await?;
    match reply.status() {
        "ok" => {
            let mut k = 1;
            for group in groups() {
                // An ack run has one item; the other settlements one each.
                let run = matches!(group[0].1, Settlement::Ack);
                for (j, (i, ..)) in group.iter().enumerate() {
                    let item = if run { k } else { k + j };
                    if run_done(&reply, item, j, run)? {
                        out[*i] = Settled::Done;
                    }
                }
                k += if run { 1 } else { group.len() };
            }
            if k != reply.len() {
                return Err(unexpected("settle", format!("{} items", reply.len())));
            }
            Ok(out)
        }
        "missing" => Ok(out),
        other => Err(unexpected("settle", other)),
    }
}
