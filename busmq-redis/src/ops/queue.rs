//! The queue's own life and bookkeeping, one script each: attach, renew, detach and close
//! (`lua/{attach,renew,detach,close}.lua`), restore (`restore.lua`), consumer registrations
//! (`consumers.lua`), stat, flush and metadata (`stat.lua`, `flush.lua`, `metadata.lua`).

use crate::ops::call::Ctx;
use crate::script::args::{check_spec, flag, millis, opt, spec_args};
use crate::script::entry::EntryArg;
use crate::script::reply::unexpected;
use crate::script::scripts::scripts;
use busmq_core::store::{
    Attachment, ConsumerKind, ConsumerOp, Entry, Metadata, MetadataOp, QueueSpec, QueueStat,
    Renewal, Restored,
};
use busmq_core::{Error, QueueName, Result};
use std::time::Duration;

pub(crate) async fn attach(ctx: &Ctx, queue: &QueueName, spec: &QueueSpec) -> Result<Attachment> {
    check_spec(spec)?;
    let page = ctx.config.page_size;
    let reply = ctx
        .call("attach", queue)
        .script(&scripts().attach, None, |cmd, create| {
            spec_args(cmd, spec, page);
            cmd.arg(flag(create));
        })
        .await?;
    match reply.status() {
        "ok" => {
            let (generation, spec) = reply.spec(2)?;
            Ok(Attachment { existed: reply.u64(1)? == 1, spec, generation })
        }
        other => Err(unexpected("attach", other)),
    }
}

pub(crate) async fn renew(
    ctx: &Ctx,
    queue: &QueueName,
    generation: u64,
    spec: &QueueSpec,
) -> Result<Renewal> {
    check_spec(spec)?;
    let page = ctx.config.page_size;
    let reply = ctx
        .call("renew", queue)
        .script(&scripts().renew, None, |cmd, create| {
            cmd.arg(generation);
            spec_args(cmd, spec, page);
            cmd.arg(flag(create));
        })
        .await?;
    match reply.status() {
        "alive" => Ok(Renewal::Alive),
        "closed" => Ok(Renewal::Closed),
        "recreated" => {
            let (generation, spec) = reply.spec(1)?;
            Ok(Renewal::Recreated { generation, spec })
        }
        other => Err(unexpected("renew", other)),
    }
}

pub(crate) async fn detach(ctx: &Ctx, queue: &QueueName, generation: u64) -> Result<()> {
    let call = ctx.call("detach", queue);
    let reply = call
        .script(&scripts().detach, None, |cmd, _| {
            cmd.arg(generation);
        })
        .await?;
    match reply.status() {
        "ok" | "missing" => Ok(()),
        other => Err(unexpected("detach", other)),
    }
}

pub(crate) async fn close(ctx: &Ctx, queue: &QueueName, generation: Option<u64>) -> Result<bool> {
    let call = ctx.call("close", queue);
    let reply = call
        .script(&scripts().close, None, |cmd, _| {
            cmd.arg(opt(generation)).arg(&call.keys.channel);
        })
        .await?;
    ctx.fleet.placement.forget(queue.as_str());
    match reply.status() {
        "ok" => Ok(reply.u64(1)? == 1),
        "missing" => Ok(false),
        other => Err(unexpected("close", other)),
    }
}

pub(crate) async fn restore(
    ctx: &Ctx,
    queue: &QueueName,
    generation: u64,
    entries: &[Entry],
) -> Result<Restored> {
    if entries.is_empty() {
        return Ok(Restored::Done);
    }
    let call = ctx.call("restore", queue);
    let reply = call
        .script(&scripts().restore, None, |cmd, _| {
            cmd.arg(generation).arg(&call.keys.channel);
            for e in entries {
                cmd.arg(EntryArg::new(e));
            }
        })
        .await?;
    match reply.status() {
        "ok" => Ok(Restored::Done),
        "closed" => Ok(Restored::Closed),
        "gone" | "missing" => Ok(Restored::Gone),
        other => Err(unexpected("restore", other)),
    }
}

fn kind_code(kind: ConsumerKind) -> &'static str {
    match kind {
        ConsumerKind::Removing => "r",
        ConsumerKind::Replaying => "p",
    }
}

pub(crate) async fn consumers(ctx: &Ctx, queue: &QueueName, op: ConsumerOp) -> Result<()> {
    let (code, id, kind, lease) = match &op {
        ConsumerOp::Register { id, kind, lease } => ("r", id, Some(*kind), *lease),
        ConsumerOp::Renew { id, kind, lease } => ("n", id, Some(*kind), *lease),
        ConsumerOp::Unregister { id } => ("u", id, None, Duration::ZERO),
    };
    let reply = ctx
        .call("consumers", queue)
        .script(&scripts().consumers, None, |cmd, _| {
            cmd.arg(code)
                .arg(id.as_str())
                .arg(kind.map(kind_code).unwrap_or(""))
                .arg(millis(lease).max(1));
        })
        .await?;
    match reply.status() {
        "ok" | "missing" => Ok(()),
        "mixed" => {
            let existing = if reply.text(1) == Some("p") {
                ConsumerKind::Replaying
            } else {
                ConsumerKind::Removing
            };
            Err(Error::MixedConsumers {
                queue: queue.to_string(),
                existing: existing.as_str(),
                requested: kind.unwrap_or(ConsumerKind::Removing).as_str(),
            })
        }
        other => Err(unexpected("consumers", other)),
    }
}

pub(crate) async fn stat(ctx: &Ctx, queue: &QueueName) -> Result<QueueStat> {
    let reply = ctx.call("stat", queue).script(&scripts().stat, None, |_, _| {}).await?;
    match reply.status() {
        "ok" => {
            let (generation, spec) = reply.spec(3)?;
            let last = reply.u64(8)?;
            Ok(QueueStat {
                exists: true,
                count: reply.u64(1)?,
                pending: reply.u64(2)?,
                consumers: reply.u64(10)?,
                spec: Some(spec),
                generation: Some(generation),
                last_id: (last > 0).then_some(last),
                quarantined: reply.u64(9)?,
                delayed: reply.u64(11)?,
                next_due: crate::ops::schedule::millis_until(&reply, 12),
            })
        }
        "missing" => Ok(QueueStat::default()),
        other => Err(unexpected("stat", other)),
    }
}

pub(crate) async fn flush(ctx: &Ctx, queue: &QueueName) -> Result<()> {
    let reply = ctx.call("flush", queue).script(&scripts().flush, None, |_, _| {}).await?;
    match reply.status() {
        "ok" | "missing" => Ok(()),
        other => Err(unexpected("flush", other)),
    }
}

pub(crate) async fn metadata(ctx: &Ctx, queue: &QueueName, op: MetadataOp) -> Result<Metadata> {
    let reply = ctx
        .call("metadata", queue)
        .script(&scripts().metadata, None, |cmd, _| {
            match &op {
                MetadataOp::Get(key) => cmd.arg("g").arg(key),
                MetadataOp::GetAll => cmd.arg("a"),
                MetadataOp::Set(pairs) => {
                    cmd.arg("s");
                    for (k, v) in pairs {
                        cmd.arg(k).arg(v);
                    }
                    cmd
                }
            };
        })
        .await?;
    let missing = reply.is("missing");
    if !missing && !reply.is("ok") {
        return Err(unexpected("metadata", reply.status()));
    }
    let text = |i: usize| -> Result<String> {
        reply
            .text(i)
            .map(str::to_string)
            .ok_or_else(|| unexpected("metadata", format!("item {i} is not UTF-8 text")))
    };
    match op {
        MetadataOp::Get(_) if missing || reply.len() < 2 => Ok(Metadata::Value(None)),
        MetadataOp::Get(_) => Ok(Metadata::Value(Some(text(1)?))),
        MetadataOp::GetAll if missing => Ok(Metadata::All(Vec::new())),
        MetadataOp::GetAll => {
            let mut all = Vec::with_capacity(reply.len() / 2);
            for i in (1..reply.len()).step_by(2) {
                all.push((text(i)?, text(i + 1)?));
            }
            all.sort();
            Ok(Metadata::All(all))
        }
        MetadataOp::Set(_) if missing => Err(Error::NotAttached { queue: queue.to_string() }),
        MetadataOp::Set(_) => Ok(Metadata::Written),
    }
}
