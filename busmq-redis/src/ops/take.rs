//! At-most-once takes. The fast take is one MULTI of `lua/lend_fast.lua` (or `lua/lend.lua`
//! where it answers 'lend'), `LMPOP` on the loan key and `lua/giveback.lua`, so that the taken
//! entries leave Redis without passing through Lua (Lua copying every entry into a table and
//! back was most of the cost of a take). When a plain pop is not what `lua/take.lua` would do
//! (released entries waiting, retention by age), lend.lua says so and take.lua takes instead;
//! so does a take that must wait for replicas, and every take on a server without `RENAME`
//! (`CommandSet`).
//! Reliable takes are `reliable.rs`.

use crate::fault::CallError;
use crate::ops::call::{Call, Ctx, Durable};
use crate::ops::quarantine::{move_aside, moved_to, script_reports, split};
use crate::script::reply::{Reply, unexpected};
use crate::script::scripts::scripts;
use busmq_core::store::Taken;
use busmq_core::{QueueName, Result};
use bytes::Bytes;
use redis::Value;

/// What a fast take found.
#[derive(Debug)]
pub(crate) enum Fast {
    Taken(Taken),
    /// Nothing ready; the page list the next push appends to, and when the earliest delayed
    /// message is due.
    Empty(String, Option<std::time::Duration>),
    /// Run take.lua instead.
    Slow,
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// Takes up to `max` ready entries at most once (`max` > 0).
pub(crate) async fn take(ctx: &Ctx, queue: &QueueName, max: u32) -> Result<Taken> {
    let call = ctx.call("take", queue);
    if ctx.config.replicas_ack.is_none() {
        match fast(&call, max, true).await? {
            Fast::Taken(taken) => return Ok(taken),
            Fast::Empty(_, next_due) => return Ok(Taken { next_due, ..Taken::default() }),
            Fast::Slow => {}
        }
    }
    // An at-most-once take lost in a failover would hand its messages out again.
    let took = |reply: &Reply| reply.is("ok") && reply.u64(1).is_ok_and(|live| live > 0);
    let durable = ctx.config.replicas_ack.map(|ack| Durable { ack, wrote: took });
    let reply = call
        .script(&scripts().take, durable, |cmd, _| {
            cmd.arg(max).arg("a").arg(&call.keys.channel).arg(0);
        })
        .await?;
    match reply.status() {
        "ok" => take_reply(&call, reply).await,
        "missing" => Ok(Taken::default()),
        other => Err(unexpected("take", other)),
    }
}

/// The fast take (see the module docs), one transaction per page: every pass pops at least one
/// entry or stops. With `notices`, a take that will come back short takes the notice lease
/// (the caller waits for a notice next; without it, it blocks in `BLMPOP`).
pub(crate) async fn fast(call: &Call<'_>, max: u32, notices: bool) -> Result<Fast> {
    let route = call.route().await?;
    let inst = call.instance(route);
    if inst.restricted() {
        // lend.lua and giveback.lua RENAME the head page (see `CommandSet`).
        return Ok(Fast::Slow);
    }
    // lend_fast.lua first, and lend.lua for a pass where it answers 'lend'.
    let mut lender = &scripts().lend_fast;
    let mut raw: Vec<Bytes> = Vec::new();
    let mut next_due = None;
    loop {
        let left = max as usize - raw.len();
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        let mut lend = call.evalsha(lender);
        lend.arg(if notices { left } else { 0 });
        pipe.add_command(lend);
        pipe.cmd("LMPOP").arg(1).arg(call.keys.loan()).arg("LEFT").arg("COUNT").arg(left);
        pipe.add_command(call.evalsha(&scripts().giveback));
        let lend_then_giveback = [lender, &scripts().giveback];
        let mut replies = match call.transaction(inst, &lend_then_giveback, &pipe).await {
            Ok(replies) => replies,
            // What was popped before is handed out; the next take tries again.
            Err(_) if !raw.is_empty() => break,
            // The cluster client does not follow MOVED (nor refresh its slot map) for a
            // transaction: after a failover or a slot move, take.lua (one EVALSHA, routed and
            // redirected like any command) takes instead.
            Err(_) if inst.is_cluster() => return Ok(Fast::Slow),
            Err(e) => return Err(call.fail(inst, e)),
        };
        if replies.len() != 3 {
            return Err(unexpected("take", format!("{} replies to the fast take", replies.len())));
        }
        let popped = replies.swap_remove(1);
        let lent = match replies.swap_remove(0) {
            Value::Array(parts) => parts,
            Value::ServerError(e) => return Err(call.fail(inst, CallError::Redis(e.into()))),
            other => return Err(unexpected("take", format!("{other:?}"))),
        };
        let due_at = |i: usize| {
            let ms = lent.get(i).and_then(text).and_then(|t| t.parse::<i64>().ok());
            ms.and_then(|ms| u64::try_from(ms).ok()).map(std::time::Duration::from_millis)
        };
        match lent.first().and_then(text) {
            Some("lent") => next_due = due_at(3),
            // lend_fast wrote nothing (and nothing was popped): lend.lua decides.
            Some("lend") if std::ptr::eq(lender, &scripts().lend_fast) => {
                lender = &scripts().lend;
                continue;
            }
            Some("empty") if raw.is_empty() => {
                let page = lent.get(1).and_then(text).map(String::from);
                return Ok(page.map_or(Fast::Slow, |page| Fast::Empty(page, due_at(2))));
            }
            _ => break,
        }
        let items = match popped {
            Value::Array(mut parts) if parts.len() == 2 => match parts.pop() {
                Some(Value::Array(items)) => items,
                other => return Err(unexpected("take", format!("{other:?}"))),
            },
            Value::Nil => Vec::new(),
            other => return Err(unexpected("take", format!("{other:?}"))),
        };
        let n = items.len();
        raw.reserve(n);
        for item in items {
            match item {
                Value::BulkString(b) => raw.push(Bytes::from(b)),
                other => return Err(unexpected("take", format!("{other:?}"))),
            }
        }
        let more = matches!(lent.get(2), Some(Value::Int(1)));
        if n == 0 || !more || raw.len() >= max as usize {
            break;
        }
    }
    if raw.is_empty() {
        return Ok(Fast::Slow);
    }
    // Popped means removed: foreign entries go to the quarantine instead of back, so that the
    // next take does not meet them again.
    let (entries, bad) = split(raw);
    let foreign = move_aside(call, bad).await;
    Ok(Fast::Taken(Taken { entries, foreign, next_due, ..Taken::default() }))
}

/// Decodes what an at-most-once take removed (take.lua, or the blocking wait's pop), in
/// order; `foreign` reports what take.lua moved aside already, and what fails the decode here
/// is moved aside too.
pub(crate) async fn taken(
    call: &Call<'_>,
    raw: Vec<Value>,
    mut foreign: Vec<String>,
) -> Result<Taken> {
    let mut bytes = Vec::with_capacity(raw.len());
    for value in raw {
        match value {
            Value::BulkString(b) => bytes.push(Bytes::from(b)),
            other => return Err(unexpected("take", format!("{other:?}"))),
        }
    }
    let (entries, bad) = split(bytes);
    foreign.extend(move_aside(call, bad).await);
    Ok(Taken { entries, foreign, ..Taken::default() })
}

/// Reads take.lua's reply: `{'ok', k, foreign, group1, ..., next due}` (see take.lua).
pub(crate) async fn take_reply(call: &Call<'_>, mut reply: Reply) -> Result<Taken> {
    let foreign = script_reports(reply.take_array(2)?, "take", &moved_to(call))?;
    let end = reply.len().saturating_sub(1);
    let next_due = crate::ops::schedule::millis_until(&reply, end);
    let mut raw = Vec::new();
    for i in 3..end {
        raw.extend(reply.take_array(i)?);
    }
    let mut taken = taken(call, raw, foreign).await?;
    taken.next_due = next_due;
    Ok(taken)
}
