//! Reliable takes and settlements without passing entries through Lua: claim.lua moves ready
//! entries into pending batch lists (RENAME or `SORT .. STORE` of a page) inside one MULTI whose
//! `LRANGE`s hand them to the client, and the client remembers, per delivery, the batch and the
//! index in it, so that settle.lua sets one bit per acknowledged entry instead of looking
//! entries up by id. Nothing ever moves a pending entry to another batch or index (an
//! extension gives it a deadline of its own in place), so a settlement racing with another
//! settle call of the same client (acks and the consumer's periodic extensions) stays valid.
//! (Copying every entry into the pending hash and settling it by id made Redis spend about
//! 6.5 us per reliable message.)

use crate::entry::parse;
use crate::errors::{CallError, unexpected};
use crate::quarantine::{Foreign, Pending, moved_to, script_reports};
use crate::reply::Reply;
use crate::scripts::scripts;
use crate::store::{RedisStore, millis};
use busmq_core::store::{Settle, Settled, Taken};
use busmq_core::support::random_u64;
use busmq_core::{QueueName, Result};
use bytes::Bytes;
use redis::{ServerErrorKind, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Page segments a reliable take moves inside Redis (claim.lua's K): a take up to the page
/// size spans at most two pages; anything beyond goes through Lua in one more segment.
const SEGMENTS: usize = 2;

/// Most deliveries remembered per queue. Past it the memory is cleared: the forgotten
/// deliveries settle as stale and come back after their visibility timeout (at least once
/// still holds), so a client whose deliveries are never settled cannot grow without bound.
const MAX_CLAIMS: usize = 1_000_000;

/// Where one pending delivery is in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    delivery: u32,
    batch: Arc<str>,
    index: u32,
}

/// The deliveries this client took and has not settled yet, per queue, and the names of the
/// batches it creates.
#[derive(Debug)]
pub(crate) struct Claims {
    by_queue: Mutex<HashMap<String, HashMap<u64, Claim>>>,
    /// Random per client, so that batch names never collide between clients, and a counter,
    /// so that they are never reused: a settlement from an old incarnation of a queue cannot
    /// reach a new batch.
    prefix: String,
    next: AtomicU64,
}

impl Claims {
    pub(crate) fn new() -> Claims {
        Claims {
            by_queue: Mutex::new(HashMap::new()),
            prefix: format!("{:x}", random_u64()),
            next: AtomicU64::new(0),
        }
    }

    fn name(&self) -> String {
        format!("{}.{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Claim>>> {
        self.by_queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn settle_parts(op: &Settle) -> (&'static str, u64, u32, Option<Duration>) {
    match *op {
        Settle::Ack { id, delivery } => ("a", id, delivery, None),
        Settle::Release { id, delivery } => ("l", id, delivery, None),
        Settle::Return { id, delivery } => ("r", id, delivery, None),
        Settle::Extend { id, delivery, by } => ("e", id, delivery, Some(by)),
    }
}

impl RedisStore {
    /// A reliable take (see the module docs): entries past `max_deliveries` come back in
    /// [`Taken::dead`].
    pub(crate) async fn claim(
        &self,
        queue: &QueueName,
        max: u32,
        visibility: Duration,
        max_deliveries: u32,
    ) -> Result<Taken> {
        let s = self.shared();
        let keys = s.layout.queue(queue.as_str());
        let meta = &keys.keys[0];
        let base = &meta[..meta.len() - 1];
        let mut retried = false;
        let mut loaded = false;
        loop {
            let route = s.route("take", queue, &keys).await?;
            let inst = &s.instances[route.index];
            let context = || s.context("take", inst, Some(queue.as_str()), None);
            let prefix = s.claims.name();
            let mut pipe = redis::pipe();
            pipe.atomic().ignore_errors();
            pipe.cmd("EVALSHA")
                .arg(&scripts().claim.sha)
                .arg(keys.keys.len())
                .arg(&keys.keys[..])
                .arg(max)
                .arg(&prefix)
                .arg(millis(visibility))
                .arg(SEGMENTS);
            for seg in 0..SEGMENTS + 2 {
                pipe.cmd("LRANGE").arg(format!("{base}b:{prefix}.{seg}")).arg(0).arg(-1);
            }
            let mut replies = inst.query_pipe(&pipe).await.map_err(|e| context().error(e))?;
            if replies.len() != SEGMENTS + 3 {
                return Err(unexpected(
                    "take",
                    format!("{} replies to the reliable take", replies.len()),
                ));
            }
            let lists = replies.split_off(1);
            let reply = match replies.pop() {
                Some(Value::ServerError(e)) if e.kind() == Some(ServerErrorKind::NoScript) => {
                    if loaded {
                        return Err(context().error(CallError::Redis(e.into())));
                    }
                    // Loads the script where the queue lives (a take of nothing changes
                    // nothing) and tries again.
                    loaded = true;
                    inst.eval(&scripts().claim, &keys, |cmd| {
                        cmd.arg(0).arg(&prefix).arg(0).arg(SEGMENTS);
                    })
                    .await
                    .map_err(|e| context().error(e))?;
                    continue;
                }
                Some(Value::ServerError(e)) => {
                    return Err(context().error(CallError::Redis(e.into())));
                }
                Some(value) => Reply::parse("take", value)?,
                None => return Err(unexpected("take", "no reply")),
            };
            match reply.status() {
                "ok" => {}
                "missing" if route.legacy && !retried => {
                    // It expired or was closed where it used to live: from now on it belongs
                    // to its current owner.
                    s.placement.forget(queue.as_str());
                    retried = true;
                    continue;
                }
                "missing" => return Ok(Taken::default()),
                other => return Err(unexpected("take", other)),
            }
            return self.claimed(queue, &prefix, reply, lists, max_deliveries).await;
        }
    }

    /// Decodes what a reliable take claimed and remembers where each delivery is pending.
    /// Foreign entries are settled as moved aside (see `settle_foreign`), so that they are
    /// neither handed out nor redelivered, and the others are delivered as usual.
    async fn claimed(
        &self,
        queue: &QueueName,
        prefix: &str,
        mut reply: Reply,
        lists: Vec<Value>,
        max_deliveries: u32,
    ) -> Result<Taken> {
        let mut taken = Taken::default();
        let mut claims = Vec::new();
        let mut bad = Vec::new();
        for (seg, list) in lists.into_iter().enumerate() {
            let count = reply.u64(seg + 1)?;
            let items = match list {
                Value::Array(items) => items,
                Value::Nil => Vec::new(),
                other => return Err(unexpected("take", format!("{other:?}"))),
            };
            if items.len() as u64 != count {
                return Err(unexpected(
                    "take",
                    format!("segment {seg} holds {} entries, not {count}", items.len()),
                ));
            }
            if items.is_empty() {
                continue;
            }
            let batch: Arc<str> = format!("{prefix}.{seg}").into();
            for (index, item) in items.into_iter().enumerate() {
                let raw = match item {
                    Value::BulkString(b) => Bytes::from(b),
                    other => return Err(unexpected("take", format!("{other:?}"))),
                };
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                match parse(raw.clone()) {
                    Ok(mut e) => {
                        // The stored header keeps the previous delivery count.
                        e.deliveries = e.deliveries.saturating_add(1);
                        claims.push((
                            e.id,
                            Claim { delivery: e.deliveries, batch: batch.clone(), index },
                        ));
                        if e.deliveries > max_deliveries {
                            taken.dead.push(e);
                        } else {
                            taken.entries.push(e);
                        }
                    }
                    Err(reason) => bad.push(Pending {
                        batch: batch.clone(),
                        index,
                        value: Foreign { raw, reason },
                    }),
                }
            }
        }
        // What the script moved aside itself (returned or expired entries).
        let by_script = match reply.len() {
            n if n > SEGMENTS + 3 => reply.take_array(SEGMENTS + 3)?,
            _ => Vec::new(),
        };
        taken.foreign = script_reports(by_script, "take", &moved_to(queue, self))?;
        taken.foreign.extend(self.settle_foreign(queue, bad).await);
        if !claims.is_empty() {
            let mut all = self.shared().claims.lock();
            let mine = all.entry(queue.as_str().to_string()).or_default();
            if mine.len() + claims.len() > MAX_CLAIMS {
                mine.clear();
            }
            mine.extend(claims);
        }
        Ok(taken)
    }

    /// Settles reliable deliveries taken by this client (see the module docs). A delivery this
    /// client does not hold with that number (settled already, or taken again since) is stale
    /// without asking Redis.
    pub(crate) async fn settle_claims(
        &self,
        queue: &QueueName,
        ops: &[Settle],
    ) -> Result<Vec<Settled>> {
        let s = self.shared();
        let mut out = vec![Settled::Stale; ops.len()];
        let mut sent: Vec<(usize, Claim)> = Vec::with_capacity(ops.len());
        {
            let all = s.claims.lock();
            if let Some(mine) = all.get(queue.as_str()) {
                for (i, op) in ops.iter().enumerate() {
                    let (_, id, delivery, _) = settle_parts(op);
                    if let Some(c) = mine.get(&id).filter(|c| c.delivery == delivery) {
                        sent.push((i, c.clone()));
                    }
                }
            }
        }
        if sent.is_empty() {
            return Ok(out);
        }
        let channel = s.layout.queue(queue.as_str()).channel;
        let reply = s
            .run("settle", queue, &scripts().settle, |cmd, _| {
                cmd.arg(&channel).arg("");
                // Groups of consecutive settlements of one kind in one batch (see settle.lua).
                let mut k = 0;
                while k < sent.len() {
                    let (kind, ..) = settle_parts(&ops[sent[k].0]);
                    let batch = &sent[k].1.batch;
                    let len = sent[k..]
                        .iter()
                        .take_while(|(i, c)| settle_parts(&ops[*i]).0 == kind && c.batch == *batch)
                        .count();
                    cmd.arg(kind).arg(&**batch).arg(len);
                    for (i, c) in &sent[k..k + len] {
                        cmd.arg(c.index);
                        if let (_, _, _, Some(by)) = settle_parts(&ops[*i]) {
                            cmd.arg(millis(by));
                        }
                    }
                    k += len;
                }
            })
            .await?;
        let done: Vec<bool> = match reply.status() {
            "ok" if reply.len() == sent.len() + 1 => {
                (1..reply.len()).map(|k| reply.u64(k).map(|d| d == 1)).collect::<Result<_>>()?
            }
            "missing" => vec![false; sent.len()],
            other => return Err(unexpected("settle", other)),
        };
        let mut all = s.claims.lock();
        let mut empty = false;
        for ((i, _), done) in sent.iter().zip(&done) {
            if *done {
                out[*i] = Settled::Done;
            }
        }
        if let Some(mine) = all.get_mut(queue.as_str()) {
            for ((i, claim), done) in sent.into_iter().zip(done) {
                // An extended delivery stays pending where it is.
                if done && matches!(ops[i], Settle::Extend { .. }) {
                    continue;
                }
                let (_, id, _, _) = settle_parts(&ops[i]);
                // Taken again meanwhile: the newer delivery is not this one's to forget.
                if mine.get(&id) == Some(&claim) {
                    mine.remove(&id);
                }
            }
            empty = mine.is_empty();
        }
        if empty {
            all.remove(queue.as_str());
        }
        Ok(out)
    }
}
