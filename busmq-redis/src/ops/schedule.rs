//! Delayed messages (SPEC P8): `lua/schedule.lua` and `lua/cancel.lua`, and reading the "next
//! due" element that takes, reads and stats end their replies with (see `promote()` in
//! `lua/lib.lua`).

use crate::ops::call::{Ctx, Durable};
use crate::script::args::{check_spec, flag, spec_args};
use crate::script::entry::PushArg;
use crate::script::reply::{Reply, unexpected};
use crate::script::scripts::scripts;
use busmq_core::store::{MAX_DELAY, ScheduleBatch, Scheduled, check_retention};
use busmq_core::{Error, QueueName, Result};
use std::time::Duration;

/// Schedules one message; written like a push (with `replicas_ack`, it waits for the replicas).
pub(crate) async fn schedule(
    ctx: &Ctx,
    queue: &QueueName,
    batch: &ScheduleBatch<'_>,
) -> Result<Scheduled> {
    check_spec(batch.spec)?;
    batch.entry.check_routing()?;
    check_retention(batch.spec, [batch.entry])?;
    if batch.delay > MAX_DELAY {
        return Err(Error::invalid_option("delay", "a message is delayed by at most 30 days"));
    }
    let call = ctx.call("schedule", queue);
    let page = ctx.config.page_size;
    let durable = ctx.config.replicas_ack.map(|ack| Durable { ack, wrote: |reply| reply.is("ok") });
    let delay_ms = u64::try_from(batch.delay.as_millis()).unwrap_or(u64::MAX);
    let reply = call
        .script(&scripts().schedule, durable, |cmd, create| {
            cmd.arg(batch.generation);
            spec_args(cmd, batch.spec, page);
            cmd.arg(flag(create)).arg(&call.keys.channel).arg(delay_ms);
            // The id is a placeholder: the message gets its id when it is promoted.
            cmd.arg(PushArg::scheduled(batch.entry));
        })
        .await?;
    match reply.status() {
        "ok" => Ok(Scheduled::new(reply.u64(1)?, reply.u64(2)?, reply.u64(3)?)),
        "closed" => Err(Error::Closed { queue: queue.to_string() }),
        "retained" => Err(crate::ops::push::retained([batch.entry])),
        other => Err(unexpected("schedule", other)),
    }
}

/// Withdraws a scheduled message if it is not due yet.
pub(crate) async fn cancel(ctx: &Ctx, queue: &QueueName, scheduled: &Scheduled) -> Result<bool> {
    let call = ctx.call("cancel", queue);
    let durable = ctx.config.replicas_ack.map(|ack| Durable { ack, wrote: |reply| reply.is("ok") });
    let reply = call
        .script(&scripts().cancel, durable, |cmd, _| {
            cmd.arg(scheduled.generation()).arg(scheduled.seq()).arg(scheduled.due());
        })
        .await?;
    match reply.status() {
        "ok" => Ok(reply.u64(1)? == 1),
        other => Err(unexpected("cancel", other)),
    }
}

/// A "ms until then" element at `i` (`-1`: nothing waits): when the earliest delayed message
/// comes due, or when the earliest pending delivery runs out.
pub(crate) fn millis_until(reply: &Reply, i: usize) -> Option<Duration> {
    let ms = reply.text(i)?.parse::<i64>().ok()?;
    u64::try_from(ms).ok().map(Duration::from_millis)
}
