//! The blocking take: an at-most-once take that, when nothing is ready, blocks in Redis
//! (`BLMPOP` on the page list the next push appends to, on a connection of its own from
//! `session/blockers.rs`) so that a push wakes the consumer with its entries in the same step,
//! instead of a notice and then a take.
//!
//! A pop that drained its page returns that page's key as its resume receipt. The consumer's
//! next wait, given that receipt back, skips the take and blocks at once on that page and the
//! next one (a push may have crossed into it): the page the consumer drained is the head or
//! below it, so a pop there keeps the queue's order. Entries released by a reliable consumer
//! meanwhile (the returned zset) are not seen by such a wait, so it blocks for at most
//! [`RESUMED_BLOCK`] before the next wait takes normally.
//!
//! The pop also blocks on the queue's wake list (first): scripts push a token there when an
//! entry becomes takeable where the pop does not look (a level above 0, an ordering key's
//! gate passing) or when a schedule makes the earliest due time earlier; a consumer woken by
//! a token takes nothing from it and returns, and its next wait takes first.
//!
//! The wait ends early (`CLIENT UNBLOCK`) when the caller cancels, the queue is closed or the
//! session is reset; a blocked pop is never abandoned before Redis answered, so whatever it
//! popped reaches the caller. Without a free blocking connection, or when the queue does not
//! exist, it waits for a notice and takes.

use crate::fault::{CallError, is_connection_error};
use crate::ops::call::{Call, Ctx};
use crate::ops::take::{Fast, fast, take, take_reply, taken};
use crate::script::reply::unexpected;
use crate::script::scripts::scripts;
use busmq_core::store::{Notice, Receipt, Taken};
use busmq_core::{QueueName, Result};
use futures::StreamExt;
use redis::Value;
use std::time::Duration;
use tokio::sync::Notify;

/// Server-side block time bounds (the caller's wait is clamped into them).
const MIN_BLOCK: Duration = Duration::from_millis(10);
const MAX_BLOCK: Duration = Duration::from_secs(60);
/// The longest block of a wait that resumed without a take (see above).
const RESUMED_BLOCK: Duration = Duration::from_millis(100);

pub(crate) async fn take_wait(
    ctx: &Ctx,
    queue: &QueueName,
    max: u32,
    wait: Duration,
    cancel: &Notify,
    resume: &Receipt,
) -> Result<Taken> {
    if max == 0 {
        return Ok(Taken::default());
    }
    let call = ctx.call("take", queue);
    let route = call.route().await?;
    let inst = call.instance(route);
    let Some(blockers) = &ctx.fleet.blockers[route.index] else {
        return take(ctx, queue, max).await;
    };
    // Watched before the take, so that a close or a reset in between still ends the wait.
    let mut notices =
        inst.hub.watch(call.keys.channel.clone(), 0).await.map_err(|e| call.fail(inst, e))?;
    let resumed = resume.token().and_then(|key| call.keys.page_number(key));
    let started = tokio::time::Instant::now();
    // A delayed message coming due ends the block: the next take promotes it (SPEC P8).
    let (page, block, due) = match resumed {
        Some(page) => (Some(page), wait.min(RESUMED_BLOCK), None),
        None => match take_or_page(&call, max).await? {
            Ok(taken) => return Ok(taken),
            Err((page, due)) => (page, due.map_or(wait, |due| wait.min(due)), due),
        },
    };
    let due_left = |taken: Taken| Taken {
        next_due: due.map(|due| due.saturating_sub(started.elapsed())),
        ..taken
    };
    let lease = match page {
        Some(_) => blockers.lease().await.map_err(|e| call.fail(inst, e))?,
        None => None,
    };
    let (Some(page), Some(mut lease)) = (page, lease) else {
        // Wait for a notice, then take. Pushes publish only while a short take holds the
        // notice lease, and the take above did not take it (it was to block): take once more,
        // which takes it if this one comes back short too.
        let taken = take(ctx, queue, max).await?;
        if !taken.entries.is_empty() || !taken.foreign.is_empty() {
            return Ok(taken);
        }
        tokio::select! {
            _ = notices.next() => {}
            _ = cancel.notified() => return Ok(due_left(Taken::default())),
            _ = tokio::time::sleep(block) => return Ok(due_left(Taken::default())),
        }
        return take(ctx, queue, max).await;
    };
    let (mut conn, id) = (lease.conn.clone(), lease.id);
    let block = block.clamp(MIN_BLOCK, MAX_BLOCK);
    // Sized for its keys: grown from empty, the buffers were reallocated several times a wait.
    let mut cmd = redis::Cmd::with_capacity(10, 4 * call.keys.channel.len() + 64);
    cmd.arg("BLMPOP");
    cmd.arg(format!("{:.3}", block.as_secs_f64()));
    // The wake list first: a token there means an entry became takeable where a pop of the
    // pages does not look (a priority, a key's gate passing) or a delayed message became the
    // earliest; the consumer then takes again (see "Side entries" in lua/lib.lua).
    let wake = call.keys.wake();
    match resumed {
        Some(_) => cmd.arg(3).arg(&wake).arg(call.keys.page(page)).arg(call.keys.page(page + 1)),
        None => cmd.arg(2).arg(&wake).arg(call.keys.page(page)),
    };
    cmd.arg("LEFT").arg("COUNT").arg(max);
    let pop = async move { cmd.query_async::<Value>(&mut conn).await };
    tokio::pin!(pop);
    // The connection has no response timeout: this deadline is the backstop.
    let limit = tokio::time::sleep(block + ctx.config.response_timeout);
    tokio::pin!(limit);
    let mut unblocked = false;
    let outcome = loop {
        let stop = tokio::select! {
            r = &mut pop => break Some(r),
            _ = &mut limit => break None,
            _ = cancel.notified(), if !unblocked => true,
            n = notices.next(), if !unblocked => !matches!(n, Some(Notice::Available)),
        };
        if stop {
            unblocked = true;
            let _ = inst.query(redis::cmd("CLIENT").arg("UNBLOCK").arg(id)).await;
        }
    };
    match outcome {
        None => {
            // Closing the connection ends the block on the server.
            lease.discard();
            Ok(due_left(Taken::default()))
        }
        Some(Err(e)) if is_connection_error(&e) => {
            // Most likely a connection left over from before a restart; the next wait opens a
            // fresh one (and its take reports the instance if it is down).
            lease.discard();
            Ok(Taken::default())
        }
        Some(Err(e)) => {
            lease.discard();
            Err(call.fail(inst, CallError::from(e)))
        }
        Some(Ok(Value::Nil)) => Ok(due_left(Taken::default())),
        Some(Ok(Value::Array(mut parts))) if parts.len() == 2 => {
            drop(lease);
            let items = match parts.pop() {
                Some(Value::Array(items)) => items,
                other => return Err(unexpected("take", format!("{other:?}"))),
            };
            let drained = items.len() < max as usize;
            let from = match parts.pop() {
                Some(Value::BulkString(key)) => String::from_utf8(key).ok(),
                _ => None,
            };
            if from.as_deref() == Some(wake.as_str()) {
                // Woken, not served: the caller's next wait takes first. Its block time is
                // the caller's, so a due time learned this way is not reported from here.
                return Ok(Taken::default());
            }
            // Popped means removed: foreign entries are moved aside (see `taken`).
            let mut out = taken(&call, items, Vec::new()).await?;
            if let Some(from) = from.filter(|_| drained) {
                // The pop drained that page: the next wait may block on it at once.
                out.resume = Receipt::new(from, 0);
            }
            Ok(due_left(out))
        }
        Some(Ok(other)) => Err(unexpected("take", format!("{other:?}"))),
    }
}

/// The take before a wait: its entries, or (when nothing is ready) the number of the page list
/// the next push appends to (`None` when the queue does not exist).
async fn take_or_page(
    call: &Call<'_>,
    max: u32,
) -> Result<std::result::Result<Taken, (Option<u64>, Option<Duration>)>> {
    let page_of = |key: &str| call.keys.page_number(key);
    match fast(call, max, false).await? {
        Fast::Taken(taken) => return Ok(Ok(taken)),
        Fast::Empty(page, due) => return Ok(Err((page_of(&page), due))),
        Fast::Slow => {}
    }
    let reply = call
        .script(&scripts().take, None, |cmd, _| {
            cmd.arg(max).arg("a").arg(&call.keys.channel).arg(0).arg("w");
        })
        .await?;
    match reply.status() {
        "ok" if reply.text(2).is_some() => Ok(Err((
            reply.text(2).and_then(page_of),
            crate::ops::schedule::millis_until(&reply, 3),
        ))),
        "ok" => take_reply(call, reply).await.map(Ok),
        "missing" => Ok(Err((None, None))),
        other => Err(unexpected("take", other)),
    }
}
