//! Pushes: `lua/push_fast.lua` for the common case, `lua/push.lua` (one script call) for the
//! others and when push_fast answers 'slow', or for large batches `lua/append_fast.lua` (or
//! `lua/append.lua` where it answers 'slow') around an `RPUSHX` of the entries in one MULTI, so
//! that Redis appends the values as they arrive instead of copying them into Lua and out again.
//!
//! Both take the ids the client proposes, `max(newest id the producer saw + 1, its clock)`
//! (the producer's `PushBatch::after`), when they are above the queue's last id and within a
//! second of the server's clock; otherwise push.lua assigns `max(last + 1, now)` itself and
//! append.lua leaves the push to push.lua.

use crate::fault::CallError;
use crate::ops::call::{Call, Ctx, Durable};
use crate::script::args::{check_spec, flag, spec_args};
use crate::script::entry::{PushArg, Route};
use crate::script::reply::{Reply, unexpected};
use crate::script::scripts::{Script, scripts};
use busmq_core::store::{Link, NewEntry, PushBatch, QueueSpec, Retention, check_retention};
use busmq_core::support::now_micros;
use busmq_core::{Error, QueueName, Result};
use redis::{ServerErrorKind, Value};

/// Pushes of at least this many entries go through append.lua: it runs two script calls and
/// a MULTI instead of one call, which costs more than copying a few values through Lua (a
/// one-entry push took 1.6x the Redis CPU of push.lua), and less from a few dozen values on.
const APPEND_MIN: usize = 32;

/// The fewest entries of a push that follows another: only append_fast.lua links pushes.
pub(crate) const LINKED_MIN: usize = APPEND_MIN;

pub(crate) async fn push(ctx: &Ctx, queue: &QueueName, batch: &PushBatch<'_>) -> Result<u64> {
    match push_linked(ctx, queue, batch, None).await? {
        Some(first) => Ok(first),
        None => Err(unexpected("push", "nothing written by a push without a link")),
    }
}

/// A push, linked (see [`Link`]) or not. A push that follows another is written only by
/// append_fast.lua: any other path must first look at what the push it follows did. So such a
/// push is refused (`None`, nothing written) without being sent when it is small, keyed or
/// routed, when it must wait for replicas or the server is restricted; and after it was sent,
/// when append_fast answers 'slow', 'refused' or 'behind', or Redis refused the transaction.
pub(crate) async fn push_linked(
    ctx: &Ctx,
    queue: &QueueName,
    batch: &PushBatch<'_>,
    link: Option<Link>,
) -> Result<Option<u64>> {
    let PushBatch { generation, spec, entries, after, dedupe } = *batch;
    check_spec(spec)?;
    if entries.is_empty() {
        return Err(Error::invalid_option("entries", "a push needs at least one entry"));
    }
    // Typed refusals before anything is sent (the scripts could not store a level above 9 or
    // a key with a NUL byte), as the memory store makes them.
    for entry in entries {
        entry.check_routing()?;
    }
    check_retention(spec, entries)?;
    let routed = entries.iter().any(|e| e.is_routed());
    let call = ctx.call("push", queue);
    let proposed = match link {
        Some(link) => link.first,
        None => now_micros().max(after.map_or(0, |last| last + 1)),
    };
    // A push that must wait for replicas keeps to one script call followed by WAIT.
    // A keyed push (SPEC P10) is push_once.lua: the key is checked and written in the push.
    let appendable = ctx.config.replicas_ack.is_none()
        && entries.len() >= APPEND_MIN
        && dedupe.is_none()
        && !routed;
    let follows = link.is_some_and(|l| l.follows.is_some());
    let appended = match appendable {
        true => append(&call, batch, proposed, link).await?,
        false => None,
    };
    let reply = match appended {
        Some(reply) => reply,
        None if follows => return Ok(None),
        None => {
            let page = ctx.config.page_size;
            let args = |cmd: &mut redis::Cmd, create: bool| {
                cmd.arg(generation);
                spec_args(cmd, spec, page);
                cmd.arg(flag(create)).arg(&call.keys.channel).arg(proposed);
                cmd.arg(if routed { "r" } else { "" });
                for (i, e) in entries.iter().enumerate() {
                    if routed {
                        cmd.arg(Route(e));
                    }
                    cmd.arg(PushArg::new(e, proposed + i as u64));
                }
                if let Some(d) = dedupe {
                    let window = u64::try_from(d.window.as_millis()).unwrap_or(u64::MAX).max(1);
                    cmd.arg(d.key).arg(window);
                }
            };
            // The common case first (push_fast.lua: plain entries, the live incarnation, no
            // retention, nothing due); it answers 'slow' without writing when push.lua must
            // do the push. Pushes that wait for replicas keep to one script call and WAIT.
            let fast = match ctx.config.replicas_ack {
                None if dedupe.is_none() && !routed => {
                    Some(call.script(&scripts().push_fast, None, args).await?)
                }
                _ => None,
            };
            match fast {
                Some(reply) if !reply.is("slow") => reply,
                _ => {
                    let durable = ctx
                        .config
                        .replicas_ack
                        .map(|ack| Durable { ack, wrote: |reply| reply.is("ok") });
                    let script =
                        if dedupe.is_some() { &scripts().push_once } else { &scripts().push };
                    call.script(script, durable, args).await?
                }
            }
        }
    };
    match reply.status() {
        "ok" => reply.u64(1).map(Some),
        "closed" => Err(Error::Closed { queue: queue.to_string() }),
        "full" => Err(Error::QueueFull { queue: queue.to_string(), maxsize: reply.u64(1)? }),
        "retained" => Err(retained(entries)),
        other => Err(unexpected("push", other)),
    }
}

/// The refusal of routed `entries` by a live queue with retention (the caller's spec had
/// none): the same error `check_retention` gives for a spec with retention.
pub(crate) fn retained<'e>(entries: impl IntoIterator<Item = &'e NewEntry>) -> Error {
    let replay = QueueSpec {
        retention: Retention { max_len: Some(1), max_age: None },
        ..QueueSpec::default()
    };
    match check_retention(&replay, entries) {
        Err(error) => error,
        Ok(()) => unexpected("push", "retained, for entries without a level or key"),
    }
}

/// The push as one MULTI of append_fast.lua's prepare, `RPUSHX` of the entries and commit, or
/// append.lua's where append_fast answers 'slow' (see both scripts). Returns prepare's reply
/// when it decided (ok, closed, full), and `None` when push.lua must do the push instead (ids
/// refused, queue missing, the transaction refused, a server without `RENAME`); in that case
/// nothing was written. A push that follows another (see [`Link`]) goes through append_fast
/// alone, and is also `None` when it answers 'slow' or 'behind'.
async fn append(
    call: &Call<'_>,
    batch: &PushBatch<'_>,
    proposed: u64,
    link: Option<Link>,
) -> Result<Option<Reply>> {
    let route = call.route().await?;
    let inst = call.instance(route);
    if inst.restricted() {
        // append.lua RENAMEs the tail page (see `CommandSet`).
        return Ok(None);
    }
    let follows = link.is_some_and(|l| l.follows.is_some());
    let tries: &[&Script] = match follows {
        true => &[&scripts().append_fast],
        false => &[&scripts().append_fast, &scripts().append],
    };
    for &script in tries {
        let pipe = append_pipe(call, script, batch, proposed, !route.legacy, link);
        let mut replies = match call.transaction(inst, &[script], &pipe).await {
            Ok(replies) => replies,
            // A command refused while queueing (READONLY from a demoted master, OOM) discards
            // the transaction: nothing ran, and push.lua gets (and reports) the plain error.
            Err(CallError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(ServerErrorKind::ExecAbort) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(call.fail(inst, e)),
        };
        if replies.len() != 3 {
            return Err(unexpected("push", format!("{} replies to the append", replies.len())));
        }
        let committed = replies.pop();
        let prepared = match replies.swap_remove(0) {
            Value::ServerError(e) => return Err(call.fail(inst, CallError::Redis(e.into()))),
            other => Reply::parse("push", other)?,
        };
        if prepared.is("slow") {
            // append_fast wrote nothing; append.lua decides.
            continue;
        }
        if !prepared.is("ok") {
            return Ok(match prepared.status() {
                "closed" | "full" => Some(prepared),
                _ => None,
            });
        }
        return match committed {
            Some(Value::ServerError(e)) => Err(call.fail(inst, CallError::Redis(e.into()))),
            Some(other) => match Reply::parse("push", other)? {
                r if r.is("ok") => Ok(Some(prepared)),
                r => Err(unexpected("push", format!("append commit said {}", r.status()))),
            },
            None => Err(unexpected("push", "no reply to the append commit")),
        };
    }
    match follows {
        true => Ok(None),
        false => Err(unexpected("push", "append.lua answered 'slow'")),
    }
}

/// The MULTI of `script`'s prepare, the `RPUSHX` of the batch's entries and its commit.
fn append_pipe(
    call: &Call<'_>,
    script: &Script,
    batch: &PushBatch<'_>,
    proposed: u64,
    create: bool,
    link: Option<Link>,
) -> redis::Pipeline {
    let count = batch.entries.len();
    let mut prepare = call.evalsha(script);
    prepare.arg("p").arg(batch.generation);
    spec_args(&mut prepare, batch.spec, call.ctx.config.page_size);
    prepare.arg(flag(create)).arg(proposed).arg(count);
    if let Some(link) = link {
        // append.lua ignores both.
        prepare.arg(link.mark);
        match link.follows {
            Some(mark) => prepare.arg(mark),
            None => prepare.arg(""),
        };
    }
    // Sized up front: grown by doubling, the buffer of a batch's values was copied several
    // times over (the header is at most 44 bytes besides the attrs; more only costs a regrowth).
    let data = batch.entries.iter().map(|e| e.payload.len() + 48).sum::<usize>() + 64;
    let mut values = redis::Cmd::with_capacity(count + 2, data);
    values.arg("RPUSHX").arg(call.keys.append_in());
    for (i, e) in batch.entries.iter().enumerate() {
        values.arg(PushArg::new(e, proposed + i as u64));
    }
    let mut commit = call.evalsha(script);
    commit.arg("c").arg(&call.keys.channel).arg(count).arg(proposed);
    let mut pipe = redis::pipe();
    pipe.atomic().ignore_errors().add_command(prepare).add_command(values).add_command(commit);
    pipe
}
