//! Persisted objects (SPEC P3): every operation is one call of `lua/object.lua` on the
//! object's two keys, on the instance that owns the object's name (see the key layout in
//! `script/keys.rs`).
//!
//! Objects are placed by the owner of their name only: unlike queues, they are not looked for
//! where an older membership of instances put them, since they live only `ttl` after their
//! last save or touch: after the set of instances changes, an object whose name now belongs to
//! another instance is not found there (a load gives `None`, a save expecting its version
//! conflicts, a forced save creates it anew) and the old copy expires. Saves do not wait for replicas (`replicas_ack` applies to queue writes): an
//! object is ephemeral state whose holders save it again.

use crate::fault::CallError;
use crate::ops::call::Ctx;
use crate::script::args::millis;
use crate::script::reply::{Reply, unexpected};
use crate::script::scripts::scripts;
use busmq_core::store::{Expect, ObjectOp, ObjectReply, StoredObject};
use busmq_core::{Error, ObjectName, Result};
use bytes::Bytes;
use redis::{ServerErrorKind, Value};

const OP: &str = "object";

pub(crate) async fn object(ctx: &Ctx, name: &ObjectName, op: ObjectOp) -> Result<ObjectReply> {
    let keys = ctx.layout.object(name.as_str());
    let mut cmd = redis::cmd("EVALSHA");
    let script = &scripts().object;
    cmd.arg(&script.sha).arg(2).arg(&keys[..]);
    let code = match &op {
        ObjectOp::Load => "l",
        ObjectOp::Delete => "d",
        ObjectOp::Touch(_) => "t",
        ObjectOp::Save(_) => "s",
    };
    cmd.arg(code);
    match &op {
        ObjectOp::Load | ObjectOp::Delete => {}
        ObjectOp::Touch(ttl) => {
            cmd.arg(millis(*ttl).max(1));
        }
        ObjectOp::Save(save) => {
            if save.ttl.is_zero() {
                return Err(Error::invalid_option(
                    "ttl",
                    "a persisted object's ttl must not be zero",
                ));
            }
            match save.expect {
                Expect::Absent => cmd.arg("a"),
                Expect::Exists => cmd.arg("e"),
                Expect::Version(v) => cmd.arg(v),
            };
            cmd.arg(millis(save.ttl).max(1)).arg(save.set.len());
            for (field, value) in &save.set {
                cmd.arg(field).arg(&value[..]);
            }
            for field in &save.remove {
                cmd.arg(field);
            }
        }
    }
    let inst = ctx.owner(name.as_str());
    let fail = |e| ctx.context(OP, inst, None, None).error(e);
    let mut sent = inst.query(&cmd).await;
    if lacks_script(&sent) {
        // Its script cache was flushed, or a failover reached a server that never saw it.
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(script.body);
        inst.query_for_key(&keys[0], load).await.map_err(fail)?;
        sent = inst.query(&cmd).await;
    }
    let mut reply = Reply::parse(OP, sent.map_err(fail)?)?;
    parse(op, &mut reply)
}

fn lacks_script(sent: &std::result::Result<Value, CallError>) -> bool {
    let no_script = ServerErrorKind::NoScript;
    match sent {
        Ok(Value::ServerError(e)) => e.kind() == Some(no_script),
        Err(CallError::Redis(e)) => e.kind() == redis::ErrorKind::Server(no_script),
        _ => false,
    }
}

pub(crate) fn parse(op: ObjectOp, reply: &mut Reply) -> Result<ObjectReply> {
    let version = |reply: &Reply, i| reply.opt_u64(i);
    Ok(match (op, reply.status()) {
        (ObjectOp::Load, "missing") => ObjectReply::Loaded(None),
        (ObjectOp::Load, "ok") => {
            let version = reply.u64(1)?;
            let mut fields = Vec::with_capacity(reply.len() / 2);
            let mut i = 2;
            while i + 1 < reply.len() {
                let field = String::from_utf8(reply.take_bytes(i)?)
                    .map_err(|_| unexpected(OP, "a field name is not UTF-8"))?;
                fields.push((field, Bytes::from(reply.take_bytes(i + 1)?)));
                i += 2;
            }
            ObjectReply::Loaded(Some(StoredObject { version, fields }))
        }
        (ObjectOp::Save(_), "ok") => {
            ObjectReply::Saved { version: reply.u64(1)?, previous: version(reply, 2)? }
        }
        (ObjectOp::Save(_), "conflict") => ObjectReply::Conflict { current: version(reply, 1)? },
        (ObjectOp::Delete, "ok") => ObjectReply::Deleted(version(reply, 1)?),
        (ObjectOp::Touch(_), "ok") => ObjectReply::Touched(reply.u64(1)? == 1),
        (_, other) => return Err(unexpected(OP, other)),
    })
}
