//! The one call path of every queue operation: the lower context the operations run on
//! ([`Ctx`]), routing to the instance that holds the queue (the placement probe, and the retry
//! when a queue left an older instance), scripts by digest with their reload on NOSCRIPT
//! (for single calls and for the MULTI compositions alike), the optional replica `WAIT`, reply
//! parsing, and the translation of failures.

use crate::config::settings::{Config, ReplicaAck};
use crate::errors::Context;
use crate::fault::CallError;
use crate::ops::full_claims::FullClaims;
use crate::script::keycache::KeyCache;
use crate::script::keys::{BatchNames, Layout, QueueKeys};
use crate::script::reply::Reply;
use crate::script::scripts::Script;
use crate::session::fleet::Fleet;
use crate::session::instance::Instance;
use busmq_core::{Error, QueueName, Result};
use redis::{Cmd, Pipeline, ServerErrorKind, Value};
use std::future::Future;
use std::sync::Arc;

/// What every operation runs on: the key layout, the settings, the instances, and the names
/// of the pending batches this store creates.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) layout: Layout,
    pub(crate) config: Config,
    pub(crate) fleet: Fleet,
    pub(crate) batches: BatchNames,
    pub(crate) keys: KeyCache,
    /// Queues whose reliable takes skip claim_fast.lua for now (`full_claims.rs`).
    pub(crate) full_claims: FullClaims,
}

impl Ctx {
    /// What a failing call was about, for its error.
    pub(crate) fn context<'a>(
        &'a self,
        operation: &'static str,
        instance: &'a Instance,
        queue: Option<&'a str>,
        topic: Option<&'a str>,
    ) -> Context<'a> {
        Context {
            operation,
            instance: instance.identity(),
            who: instance.who(),
            queue,
            topic,
            timeout: self.config.response_timeout,
        }
    }

    /// One operation `op` on `queue`.
    pub(crate) fn call<'a>(&'a self, op: &'static str, queue: &'a QueueName) -> Call<'a> {
        Call { ctx: self, op, queue, keys: self.keys.queue(&self.layout, queue.as_str()) }
    }

    /// The instance that carries `name` when it is not stored (topics).
    pub(crate) fn owner(&self, name: &str) -> &Instance {
        &self.fleet.instances[self.fleet.placement.owner(name)]
    }
}

/// Where a queue's operations go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub(crate) index: usize,
    /// The queue lives where an older membership put it: never create it there.
    pub(crate) legacy: bool,
}

/// A write that waits for replicas (see `RedisStoreBuilder::replicas_ack`); `wrote` tells from
/// the reply whether the script changed anything, since too few confirmations matter only then.
#[derive(Clone, Copy)]
pub(crate) struct Durable {
    pub(crate) ack: ReplicaAck,
    pub(crate) wrote: fn(&Reply) -> bool,
}

/// Whether Redis answered NOSCRIPT: its script cache was flushed, or a failover reached a
/// server that never saw the scripts.
fn lacks_script<T: Answer>(result: &std::result::Result<T, CallError>) -> bool {
    match result {
        Err(CallError::Redis(e)) => e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript),
        Ok(answer) => answer.lacks_script(),
        Err(_) => false,
    }
}

/// An answer that can carry NOSCRIPT inside it (a MULTI's replies).
trait Answer {
    fn lacks_script(&self) -> bool;
}

impl Answer for Value {
    fn lacks_script(&self) -> bool {
        matches!(self, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript))
    }
}

impl Answer for Vec<Value> {
    fn lacks_script(&self) -> bool {
        self.iter().any(Answer::lacks_script)
    }
}

impl Answer for (Value, Option<i64>) {
    fn lacks_script(&self) -> bool {
        self.0.lacks_script()
    }
}

/// One operation on one queue: its name and keys, and where it goes.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) op: &'static str,
    pub(crate) queue: &'a QueueName,
    pub(crate) keys: Arc<QueueKeys>,
}

impl Call<'_> {
    pub(crate) fn instance(&self, route: Route) -> &Instance {
        &self.ctx.fleet.instances[route.index]
    }

    /// The busmq error for a call to `inst` that failed.
    pub(crate) fn fail(&self, inst: &Instance, e: CallError) -> Error {
        self.ctx.context(self.op, inst, Some(self.queue.as_str()), None).error(e)
    }

    /// `EVALSHA <script> <the queue's keys>`, for the arguments to follow.
    pub(crate) fn evalsha(&self, script: &Script) -> Cmd {
        // Sized for the keys and a push of one small entry or a take's arguments: grown from
        // empty, the buffers were reallocated about ten times per call.
        let keys: usize = self.keys.keys.iter().map(String::len).sum();
        let mut cmd = Cmd::with_capacity(24, 64 + keys + 256);
        cmd.arg("EVALSHA");
        cmd.arg(&script.sha).arg(self.keys.keys.len()).arg(&self.keys.keys[..]);
        cmd
    }

    /// Finds the instance holding the queue (see the placement rule in the crate docs): its
    /// owner, unless an older membership may have put it elsewhere, which only those older
    /// owners are asked about (and the answer cached).
    pub(crate) async fn route(&self) -> Result<Route> {
        let placement = &self.ctx.fleet.placement;
        let name = self.queue.as_str();
        let owner = placement.owner(name);
        let candidates = placement.candidates(name);
        if candidates.is_empty() {
            return Ok(Route { index: owner, legacy: false });
        }
        if let Some(index) = placement.cached(name) {
            return Ok(Route { index, legacy: index != owner });
        }
        let instances = &self.ctx.fleet.instances;
        let probes = std::iter::once(owner).chain(candidates).map(|i| async move {
            (i, instances[i].query(redis::cmd("EXISTS").arg(self.keys.meta())).await)
        });
        let mut found: Option<usize> = None;
        let mut unreachable: Option<(usize, CallError)> = None;
        for (i, answer) in futures::future::join_all(probes).await {
            match answer {
                Ok(Value::Int(1)) if found.is_none() || i == owner => found = Some(i),
                Ok(_) => {}
                Err(e) => {
                    unreachable.get_or_insert((i, e));
                }
            }
        }
        let index = match (found, unreachable) {
            (Some(i), _) => i,
            // The queue may live on the instance that did not answer: creating it on the owner
            // now could split it in two.
            (None, Some((i, e))) => return Err(self.fail(&instances[i], e)),
            (None, None) => owner,
        };
        placement.remember(name, index);
        Ok(Route { index, legacy: index != owner })
    }

    /// Runs `attempt` where the queue lives. When that is where an older membership put it and
    /// the attempt finds the queue `gone` (it expired or was closed there), the name belongs to
    /// its current owner from now on: the attempt runs once more, there.
    pub(crate) async fn routed<T, F, Fut>(&self, attempt: F, gone: impl Fn(&T) -> bool) -> Result<T>
    where
        F: Fn(Route) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let route = self.route().await?;
        let out = attempt(route).await?;
        if !(route.legacy && gone(&out)) {
            return Ok(out);
        }
        self.ctx.fleet.placement.forget(self.queue.as_str());
        attempt(self.route().await?).await
    }

    /// Sends a request that runs `scripts` by digest; when Redis lacks one, loads them on the
    /// node that holds the queue and sends the request once more. Requests that run scripts
    /// change nothing when one is missing, so sending them again is safe.
    async fn with_scripts<T: Answer, F, Fut>(
        &self,
        inst: &Instance,
        scripts: &[&Script],
        send: F,
    ) -> std::result::Result<T, CallError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, CallError>>,
    {
        let first = send().await;
        if !lacks_script(&first) {
            return first;
        }
        tracing::debug!(
            instance = inst.identity(),
            operation = self.op,
            queue = self.queue.as_str(),
            "redis lacks busmq's scripts (NOSCRIPT: its script cache was flushed, or a failover); \
             reloading them"
        );
        if inst.is_cluster() {
            // SCRIPT LOAD carries no key, so nothing redirects it: with the slot map of before
            // a failover it would load the scripts on the old master (back as a replica) and
            // the retry would meet NOSCRIPT again on the new one.
            self.refresh_slots(inst).await;
        }
        for script in scripts {
            let mut load = redis::cmd("SCRIPT");
            load.arg("LOAD").arg(script.body);
            inst.query_for_key(self.keys.meta(), load).await?;
        }
        send().await
    }

    /// A MULTI (or pipeline) that runs `scripts` among other commands, reloading them once on
    /// NOSCRIPT. The replies are the caller's to read; errors inside them stay there.
    pub(crate) async fn transaction(
        &self,
        inst: &Instance,
        scripts: &[&Script],
        pipe: &Pipeline,
    ) -> std::result::Result<Vec<Value>, CallError> {
        let result = self.with_scripts(inst, scripts, || inst.query_pipe(pipe)).await;
        if result.is_err() && inst.is_cluster() {
            // The cluster client neither follows MOVED nor refreshes its slot map for a
            // transaction, so after a failover every retry would go to the old master until
            // some single command of this client met the move. A routed single command on the
            // queue's key does both now (its answer does not matter), so the caller's next
            // try reaches the slot's current master.
            tracing::debug!(
                queue = self.queue.as_str(),
                "transaction failed on the cluster; refreshing its slot map"
            );
            self.refresh_slots(inst).await;
        }
        result
    }

    /// Makes the cluster client follow a move of the queue's slot: a routed single command on
    /// the queue's key meets MOVED, which the client follows and which refreshes its slot map.
    /// Its answer does not matter.
    async fn refresh_slots(&self, inst: &Instance) {
        let _ = inst.query(redis::cmd("EXISTS").arg(self.keys.meta())).await;
    }

    /// The script call, followed by `WAIT` when `ack` is set: in one pipeline on one node, so
    /// that `WAIT` covers this write; on a cluster separately, to the same slot's master (a
    /// cluster pipeline does not follow MOVED/ASK, and the cluster client's one connection per
    /// node makes `WAIT` cover the write; should the slot move in between, `WAIT` asks the new
    /// master, which confirms nothing of it). Returns how many replicas confirmed.
    async fn send(
        &self,
        inst: &Instance,
        cmd: &Cmd,
        ack: Option<ReplicaAck>,
    ) -> std::result::Result<(Value, Option<i64>), CallError> {
        let Some(ack) = ack else {
            return Ok((inst.query(cmd).await?, None));
        };
        let mut wait = redis::cmd("WAIT");
        wait.arg(ack.replicas).arg(ack.timeout.as_millis().max(1) as u64);
        let (value, acked) = if inst.is_cluster() {
            let value = inst.query(cmd).await?;
            (value, inst.query_for_key(self.keys.meta(), wait).await?)
        } else {
            let mut pipe = redis::pipe();
            pipe.add_command(cmd.clone()).add_command(wait);
            let mut replies = inst.query_pipe(&pipe).await?.into_iter();
            (replies.next().unwrap_or(Value::Nil), replies.next().unwrap_or(Value::Nil))
        };
        let acked = match acked {
            Value::Int(n) => n,
            _ => 0,
        };
        Ok((value, Some(acked)))
    }

    /// Runs one queue script where the queue lives and parses its reply. `args` gets whether
    /// the script may create the queue there. A [`Durable`] write is followed by `WAIT`, and
    /// fails (retryably) when it wrote and too few replicas confirmed it in time.
    pub(crate) async fn script(
        &self,
        script: &Script,
        durable: Option<Durable>,
        args: impl Fn(&mut Cmd, bool),
    ) -> Result<Reply> {
        let attempt = |route: Route| {
            let args = &args;
            async move {
                let inst = self.instance(route);
                let mut cmd = self.evalsha(script);
                args(&mut cmd, !route.legacy);
                let ack = durable.map(|d| d.ack);
                let sent = self.with_scripts(inst, &[script], || self.send(inst, &cmd, ack)).await;
                let (value, acked) = sent.map_err(|e| self.fail(inst, e))?;
                let reply = Reply::parse(self.op, value)?;
                if let (Some(d), Some(acked)) = (durable, acked) {
                    if acked < i64::from(d.ack.replicas) && (d.wrote)(&reply) {
                        return Err(self.not_replicated(inst, d.ack, acked));
                    }
                }
                Ok(reply)
            }
        };
        self.routed(attempt, |reply| reply.is("missing")).await
    }

    /// A write the master applied but too few replicas confirmed in time.
    fn not_replicated(&self, inst: &Instance, ack: ReplicaAck, acked: i64) -> Error {
        Error::NotReplicated {
            backend: "redis",
            operation: self.op,
            confirmed: u64::try_from(acked).unwrap_or(0),
            required: u64::from(ack.replicas),
            detail: format!(
                "redis {}, queue {:?}, waited {:?}",
                inst.identity(),
                self.queue.as_str(),
                ack.timeout
            ),
        }
    }
}
