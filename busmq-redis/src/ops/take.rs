//! The fast at-most-once take: one MULTI with lend.lua, `LMPOP` on the loan key and
//! giveback.lua, so that the taken entries leave Redis without passing through Lua (Lua
//! copying every entry into a table and back was most of the cost of a take). When a plain pop
//! is not what take.lua would do (released entries waiting, retention by age), lend.lua says
//! so and the caller runs take.lua.

use crate::errors::{CallError, unexpected};
use crate::instance::Instance;
use crate::keys::QueueKeys;
use crate::quarantine::split;
use crate::scripts::{Script, scripts};
use crate::store::RedisStore;
use busmq_core::store::Taken;
use busmq_core::{QueueName, Result};
use bytes::Bytes;
use redis::{ServerErrorKind, Value};

/// What a fast take found.
#[derive(Debug)]
pub(crate) enum Fast {
    Taken(Taken),
    /// Nothing ready; the page list the next push appends to.
    Empty(String),
    /// Run take.lua instead.
    Slow,
}

fn eval(pipe: &mut redis::Pipeline, script: &Script, keys: &QueueKeys) {
    pipe.cmd("EVALSHA").arg(&script.sha).arg(keys.keys.len()).arg(&keys.keys[..]);
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// Loads the fast-take scripts after a NOSCRIPT (the session loads them on connect).
async fn load(inst: &Instance) -> std::result::Result<(), CallError> {
    for s in [&scripts().lend, &scripts().giveback] {
        inst.query(redis::cmd("SCRIPT").arg("LOAD").arg(s.body)).await?;
    }
    Ok(())
}

impl RedisStore {
    pub(crate) async fn fast_take(&self, queue: &QueueName, max: u32) -> Result<Fast> {
        let s = self.shared();
        let keys = s.layout.queue(queue.as_str());
        let route = s.route("take", queue, &keys).await?;
        let inst = &s.instances[route.index];
        let context = || s.context("take", inst, Some(queue.as_str()), None);
        let meta = &keys.keys[0];
        let loan = format!("{}loan", &meta[..meta.len() - 1]);
        let mut raw: Vec<Bytes> = Vec::new();
        // One transaction per page: every pass pops at least one entry or stops.
        loop {
            let left = max as usize - raw.len();
            let mut pipe = redis::pipe();
            pipe.atomic().ignore_errors();
            eval(&mut pipe, &scripts().lend, &keys);
            pipe.cmd("LMPOP").arg(1).arg(&loan).arg("LEFT").arg("COUNT").arg(left);
            eval(&mut pipe, &scripts().giveback, &keys);
            let mut replies = match inst.query_pipe(&pipe).await {
                Ok(replies) => replies,
                // What was popped before is handed out; the next take tries again.
                Err(_) if !raw.is_empty() => break,
                // The cluster client does not follow MOVED (nor refresh its slot map) for a
                // transaction: after a failover or a slot move, take.lua (one EVALSHA, routed
                // and redirected like any command) takes instead.
                Err(_) if inst.is_cluster() => return Ok(Fast::Slow),
                Err(e) => return Err(context().error(e)),
            };
            if replies.len() != 3 {
                return Err(unexpected(
                    "take",
                    format!("{} replies to the fast take", replies.len()),
                ));
            }
            let popped = replies.swap_remove(1);
            let lent = match replies.swap_remove(0) {
                Value::Array(parts) => parts,
                Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                    load(inst).await.map_err(|e| context().error(e))?;
                    break;
                }
                Value::ServerError(e) => {
                    return Err(context().error(CallError::Redis(e.into())));
                }
                other => return Err(unexpected("take", format!("{other:?}"))),
            };
            match lent.first().and_then(text) {
                Some("lent") => {}
                Some("empty") if raw.is_empty() => {
                    let page = lent.get(1).and_then(text).map(String::from);
                    return Ok(page.map_or(Fast::Slow, Fast::Empty));
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
        // Popped means removed: foreign entries go to the quarantine instead of back, so that
        // the next take does not meet them again.
        let (entries, bad) = split(raw);
        let foreign = self.move_aside(queue, bad).await;
        Ok(Fast::Taken(Taken { entries, dead: Vec::new(), foreign }))
    }
}
