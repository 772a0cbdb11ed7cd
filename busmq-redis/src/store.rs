//! [`RedisStore`]: the [`Store`] trait over one or several Redis instances. Every queue method
//! is one Lua script call on the instance that holds the queue.

use crate::blocking::Blockers;
use crate::config::{Config, RedisStoreBuilder, ReplicaAck};
use crate::entry::{EntryArg, PushArg, parse};
use crate::errors::{CallError, Context, unexpected};
use crate::fast::Fast;
use crate::instance::Instance;
use crate::keys::{Layout, QueueKeys};
use crate::placement::Placement;
use crate::quarantine::{LEFT_IN_PLACE, describe, moved_to, script_reports, split};
use crate::reliable::Claims;
use crate::reply::Reply;
use crate::scripts::{Script, scripts};
use crate::state::StateTracker;
use crate::url::Endpoint;
use async_trait::async_trait;
use busmq_core::store::{
    Attachment, ConsumerKind, ConsumerOp, Entry, Metadata, MetadataOp, NewEntry, Notice, Position,
    QueueSpec, QueueStat, ReadBatch, Renewal, Settle, Settled, StoreEvent, StoreState, TakeMode,
    Taken,
};
use busmq_core::support::now_micros;
use busmq_core::{Error, QueueName, Result, Store, TopicName};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::{Client, Cmd, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

/// A busmq store over Redis. Cheap to clone (clones share connections and state).
///
/// Build it with [`RedisStore::builder`] (or [`RedisStore::open`] / [`RedisStore::from_urls`]);
/// nothing connects until [`Store::connect`].
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

/// What the store's parts share; the supervisor tasks hold it weakly, so dropping the last
/// [`RedisStore`] stops them.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) layout: Layout,
    pub(crate) placement: Placement,
    pub(crate) instances: Vec<Arc<Instance>>,
    /// Per instance, the connections idle at-most-once consumers block on.
    pub(crate) blockers: Vec<Blockers>,
    pub(crate) state: StateTracker,
    pub(crate) config: Config,
    run: tokio::sync::Mutex<Option<Running>>,
    /// The last id this client saw per queue, to propose the ids of its next push.
    last_ids: Mutex<HashMap<String, u64>>,
    /// Per (queue, consumer), the page list its last blocking pop drained (see `wait.rs`).
    pub(crate) wait_hints: Mutex<HashMap<(String, String), String>>,
    /// Where this client's reliable deliveries are pending (see `reliable.rs`).
    pub(crate) claims: Claims,
}

const LAST_IDS_LIMIT: usize = 100_000;

/// Pushes of at least this many entries go through append.lua (see [`RedisStore::append`]):
/// it runs two script calls and a MULTI instead of one call, which costs more than copying a
/// few values through Lua (a one-entry push took 1.6x the Redis CPU of push.lua), and less
/// from a few dozen values on.
const APPEND_MIN: usize = 32;

#[derive(Debug)]
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Where a queue's operations go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub(crate) index: usize,
    /// The queue lives where an older membership put it: never create it there.
    pub(crate) legacy: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.shared.layout.namespace())
            .field("instances", &self.instances())
            .finish()
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    // Round up so that a positive duration never becomes zero.
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

fn spec_args(cmd: &mut Cmd, spec: &QueueSpec, page_size: u32) {
    cmd.arg(millis(spec.ttl).max(1))
        .arg(opt(spec.maxsize))
        .arg(opt(spec.retention.max_len))
        .arg(opt(spec.retention.max_age.map(|d| millis(d).max(1))))
        .arg(page_size);
}

fn flag(yes: bool) -> &'static str {
    if yes { "1" } else { "0" }
}

/// A write that waits for replicas (see [`RedisStoreBuilder::replicas_ack`]); `wrote` tells
/// from the reply whether the script changed anything, since too few confirmations matter
/// only then.
#[derive(Clone, Copy)]
struct Durable {
    ack: ReplicaAck,
    wrote: fn(&Reply) -> bool,
}

impl Durable {
    fn push(ack: Option<ReplicaAck>) -> Option<Durable> {
        ack.map(|ack| Durable { ack, wrote: |reply| reply.is("ok") })
    }

    fn take(ack: Option<ReplicaAck>) -> Option<Durable> {
        let took = |reply: &Reply| reply.is("ok") && reply.u64(1).is_ok_and(|live| live > 0);
        ack.map(|ack| Durable { ack, wrote: took })
    }
}

/// A write the master applied but too few replicas confirmed in time.
fn not_replicated(
    op: &'static str,
    instance: &str,
    queue: &QueueName,
    ack: ReplicaAck,
    acked: i64,
) -> Error {
    Error::Store {
        backend: "redis",
        operation: op,
        message: format!(
            "redis {instance} (queue {:?}) applied the {op} but only {acked} of {} replicas \
             confirmed it within {:?}; a failover may lose it",
            queue.as_str(),
            ack.replicas,
            ack.timeout
        ),
        retryable: true,
        source: None,
    }
}

fn check_spec(spec: &QueueSpec) -> Result<()> {
    if spec.ttl.is_zero() {
        return Err(Error::invalid_option("ttl", "must be greater than zero"));
    }
    Ok(())
}

impl RedisStore {
    /// Options for a new store.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// A store over one instance with default options.
    pub fn open(url: impl Into<String>) -> Result<RedisStore> {
        Self::builder().url(url).build()
    }

    /// A store over several instances (queues and topics are spread over them) with default
    /// options. The order of the URLs does not matter.
    pub fn from_urls<I, S>(urls: I) -> Result<RedisStore>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::builder().urls(urls).build()
    }

    pub(crate) fn new(
        endpoints: Vec<Endpoint>,
        layout: Layout,
        config: Config,
    ) -> Result<RedisStore> {
        let placement = Placement::new(endpoints.iter().map(|e| e.identity.clone()).collect());
        let blockers = endpoints
            .iter()
            .map(|e| {
                // A Sentinel group's master and a cluster slot's node change under a blocked
                // pop, so only fixed addresses block; the others wait for notices.
                let fixed = e.sentinel.is_none() && e.cluster.is_none();
                let client = if fixed { Client::open(e.info.clone()).ok() } else { None };
                Blockers::new(client, config.connect_timeout)
            })
            .collect();
        let instances = endpoints
            .into_iter()
            .map(|e| Instance::new(e, config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(RedisStore {
            shared: Arc::new(Shared {
                layout,
                placement,
                instances,
                blockers,
                state: StateTracker::new(),
                config,
                run: tokio::sync::Mutex::new(None),
                last_ids: Mutex::new(HashMap::new()),
                wait_hints: Mutex::new(HashMap::new()),
                claims: Claims::new(),
            }),
        })
    }

    /// The namespace prefixing every key.
    pub fn namespace(&self) -> &str {
        self.shared.layout.namespace()
    }

    /// The identities (`host:port/db` or `unix:<path>/db`) of the configured instances, in the
    /// order they were given.
    pub fn instances(&self) -> Vec<String> {
        self.shared.instances.iter().map(|i| i.identity().to_string()).collect()
    }

    /// The identity of the instance that owns `queue` under the configured instances (where a
    /// new queue of that name is created). See the crate documentation for the rule.
    pub fn owner(&self, queue: &QueueName) -> String {
        let s = &self.shared;
        s.placement.identity(s.placement.owner(queue.as_str())).to_string()
    }

    /// The identity of the instance that carries `topic`.
    pub fn topic_owner(&self, topic: &TopicName) -> String {
        let s = &self.shared;
        s.placement.identity(s.placement.owner(topic.as_str())).to_string()
    }
}

impl Shared {
    pub(crate) fn context<'a>(
        &self,
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

    /// Finds the instance holding `queue` (see the placement rule in the crate docs).
    pub(crate) async fn route(
        &self,
        op: &'static str,
        queue: &QueueName,
        keys: &QueueKeys,
    ) -> Result<Route> {
        let name = queue.as_str();
        let owner = self.placement.owner(name);
        let candidates = self.placement.candidates(name);
        if candidates.is_empty() {
            return Ok(Route { index: owner, legacy: false });
        }
        if let Some(index) = self.placement.cached(name) {
            return Ok(Route { index, legacy: index != owner });
        }
        let probes = std::iter::once(owner).chain(candidates).map(|i| async move {
            let answer = self.instances[i].query(redis::cmd("EXISTS").arg(keys.meta())).await;
            (i, answer)
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
            // The queue may live on the instance that did not answer: creating it on the
            // owner now could split it in two.
            (None, Some((i, e))) => {
                let inst = &self.instances[i];
                return Err(self.context(op, inst, Some(name), None).error(e));
            }
            (None, None) => owner,
        };
        self.placement.remember(name, index);
        Ok(Route { index, legacy: index != owner })
    }

    /// Runs one queue script on the queue's instance. `args` gets whether the script may
    /// create the queue there.
    pub(crate) async fn run(
        &self,
        op: &'static str,
        queue: &QueueName,
        script: &Script,
        args: impl Fn(&mut Cmd, bool),
    ) -> Result<Reply> {
        self.run_with(op, queue, script, None, args).await
    }

    /// [`Shared::run`], followed by `WAIT` for a [`Durable`] write.
    async fn run_with(
        &self,
        op: &'static str,
        queue: &QueueName,
        script: &Script,
        durable: Option<Durable>,
        args: impl Fn(&mut Cmd, bool),
    ) -> Result<Reply> {
        let keys = self.layout.queue(queue.as_str());
        let mut retried = false;
        loop {
            let route = self.route(op, queue, &keys).await?;
            let inst = &self.instances[route.index];
            let context = || self.context(op, inst, Some(queue.as_str()), None);
            let (value, shortfall) = match durable {
                None => (inst.eval(script, &keys, |cmd| args(cmd, !route.legacy)).await, None),
                Some(d) => {
                    match inst
                        .eval_acked(script, &keys, d.ack, |cmd| args(cmd, !route.legacy))
                        .await
                    {
                        Ok((value, acked)) if acked < i64::from(d.ack.replicas) => {
                            (Ok(value), Some((d, acked)))
                        }
                        other => (other.map(|(value, _)| value), None),
                    }
                }
            };
            let value = value.map_err(|e| context().error(e))?;
            let reply = Reply::parse(op, value)?;
            if let Some((d, acked)) = shortfall.filter(|(d, _)| (d.wrote)(&reply)) {
                return Err(not_replicated(op, inst.identity(), queue, d.ack, acked));
            }
            if route.legacy && reply.is("missing") && !retried {
                // It expired or was closed where it used to live: from now on it belongs to
                // its current owner.
                self.placement.forget(queue.as_str());
                retried = true;
                continue;
            }
            return Ok(reply);
        }
    }

    /// The first id to propose for a push of `n` entries: above the last id this client saw
    /// and at least its clock, so that the script can usually keep the ids as they are.
    fn propose(&self, queue: &QueueName) -> u64 {
        let last =
            self.last_ids.lock().unwrap_or_else(|e| e.into_inner()).get(queue.as_str()).copied();
        now_micros().max(last.map_or(0, |l| l + 1))
    }

    fn saw_last(&self, queue: &QueueName, last: Option<u64>) {
        let mut ids = self.last_ids.lock().unwrap_or_else(|e| e.into_inner());
        match last {
            Some(last) => {
                if ids.len() >= LAST_IDS_LIMIT && !ids.contains_key(queue.as_str()) {
                    ids.clear();
                }
                ids.insert(queue.as_str().to_string(), last);
            }
            None => {
                ids.remove(queue.as_str());
            }
        }
    }

    fn topic_instance(&self, topic: &TopicName) -> &Arc<Instance> {
        &self.instances[self.placement.owner(topic.as_str())]
    }
}

impl RedisStore {
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The push as one MULTI of append.lua's prepare, `RPUSHX` of the entries and commit (see
    /// append.lua), so that Redis appends the values as they arrive instead of copying them
    /// into Lua and out again. Returns prepare's reply when it decided (ok, closed, full), and
    /// `None` when push.lua must do the push instead (ids refused, queue missing, scripts not
    /// loaded); in that case nothing was written.
    async fn append(
        &self,
        queue: &QueueName,
        generation: u64,
        spec: &QueueSpec,
        entries: &[NewEntry],
        proposed: u64,
    ) -> Result<Option<Reply>> {
        let s = &self.shared;
        let keys = s.layout.queue(queue.as_str());
        let route = s.route("push", queue, &keys).await?;
        let inst = &s.instances[route.index];
        let context = || s.context("push", inst, Some(queue.as_str()), None);
        let meta = keys.meta();
        let into = format!("{}in", &meta[..meta.len() - 1]);
        let script = &scripts().append;
        let mut prepare = redis::cmd("EVALSHA");
        prepare.arg(&script.sha).arg(keys.keys.len()).arg(&keys.keys[..]).arg("p").arg(generation);
        spec_args(&mut prepare, spec, s.config.page_size);
        prepare.arg(flag(!route.legacy)).arg(proposed).arg(entries.len());
        let mut values = redis::cmd("RPUSHX");
        values.arg(&into);
        for (i, e) in entries.iter().enumerate() {
            values.arg(PushArg::new(e, proposed + i as u64));
        }
        let mut commit = redis::cmd("EVALSHA");
        commit.arg(&script.sha).arg(keys.keys.len()).arg(&keys.keys[..]);
        commit.arg("c").arg(&keys.channel).arg(entries.len());
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors().add_command(prepare).add_command(values).add_command(commit);
        let mut replies = match inst.query_pipe(&pipe).await {
            Ok(replies) => replies,
            // A command refused while queueing (READONLY from a demoted master, OOM) discards
            // the transaction: nothing ran, and push.lua gets (and reports) the plain error.
            Err(CallError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(context().error(e)),
        };
        if replies.len() != 3 {
            return Err(unexpected("push", format!("{} replies to the append", replies.len())));
        }
        let committed = replies.pop();
        let prepared = match replies.swap_remove(0) {
            Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
                // Loaded for the next push; push.lua (which loads itself) does this one.
                let load = inst.query(redis::cmd("SCRIPT").arg("LOAD").arg(script.body)).await;
                load.map_err(|e| context().error(e))?;
                return Ok(None);
            }
            Value::ServerError(e) => return Err(context().error(CallError::Redis(e.into()))),
            other => Reply::parse("push", other)?,
        };
        if !prepared.is("ok") {
            return Ok(match prepared.status() {
                "closed" | "full" => Some(prepared),
                _ => None,
            });
        }
        match committed {
            Some(Value::ServerError(e)) => Err(context().error(CallError::Redis(e.into()))),
            Some(other) => match Reply::parse("push", other)? {
                r if r.is("ok") => Ok(Some(prepared)),
                r => Err(unexpected("push", format!("append commit said {}", r.status()))),
            },
            None => Err(unexpected("push", "no reply to the append commit")),
        }
    }

    /// Decodes what an at-most-once take removed (take.lua, or the blocking wait's pop), in
    /// order; `foreign` reports what take.lua moved aside already, and what fails the decode
    /// here is moved aside too.
    pub(crate) async fn taken(
        &self,
        queue: &QueueName,
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
        foreign.extend(self.move_aside(queue, bad).await);
        Ok(Taken { entries, dead: Vec::new(), foreign })
    }

    /// Reads take.lua's reply: `{'ok', k, foreign, group1, ...}` (see take.lua).
    pub(crate) async fn take_reply(&self, queue: &QueueName, mut reply: Reply) -> Result<Taken> {
        let foreign = script_reports(reply.take_array(2)?, "take", &moved_to(queue, self))?;
        let mut raw = Vec::new();
        for i in 3..reply.len() {
            raw.extend(reply.take_array(i)?);
        }
        self.taken(queue, raw, foreign).await
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn connect(&self) -> Result<StoreState> {
        let s = &self.shared;
        let mut run = s.run.lock().await;
        if run.is_some() {
            return Ok(s.state.get());
        }
        s.state.set_quiet(true);
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::with_capacity(s.instances.len());
        let mut firsts = Vec::with_capacity(s.instances.len());
        for inst in &s.instances {
            inst.hub.reopen();
            let (tx, rx) = oneshot::channel();
            let task = Arc::clone(inst).supervise(Arc::downgrade(s), stop_rx.clone(), tx);
            tasks.push(tokio::spawn(task));
            firsts.push(rx);
        }
        let mut refused = None;
        for rx in firsts {
            if let Ok(Some(error)) = rx.await {
                refused = refused.or(Some(error));
            }
        }
        *run = Some(Running { stop, tasks });
        if let Some(error) = refused {
            // Left connected, the other supervisors would keep a store running that its
            // owner was told did not connect; stopped, a later connect starts afresh.
            drop(run);
            self.disconnect().await?;
            return Err(error);
        }
        s.state.set_quiet(false);
        s.state.recompute(&s.instances);
        Ok(s.state.get())
    }

    async fn disconnect(&self) -> Result<()> {
        let s = &self.shared;
        let running = s.run.lock().await.take();
        s.state.set_quiet(true);
        if let Some(running) = running {
            let _ = running.stop.send(true);
            for task in running.tasks {
                let _ = task.await;
            }
        }
        for inst in &s.instances {
            inst.go_down();
            inst.hub.close();
        }
        for b in &s.blockers {
            b.clear();
        }
        s.state.force(StoreState::Offline);
        s.state.set_quiet(false);
        Ok(())
    }

    fn state(&self) -> StoreState {
        self.shared.state.get()
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.shared.state.subscribe()
    }

    async fn attach(&self, queue: &QueueName, spec: &QueueSpec) -> Result<Attachment> {
        check_spec(spec)?;
        let s = &self.shared;
        let page = s.config.page_size;
        let reply = s
            .run("attach", queue, &scripts().attach, |cmd, create| {
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

    async fn renew(&self, queue: &QueueName, generation: u64, spec: &QueueSpec) -> Result<Renewal> {
        check_spec(spec)?;
        let s = &self.shared;
        let page = s.config.page_size;
        let reply = s
            .run("renew", queue, &scripts().renew, |cmd, create| {
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

    async fn detach(&self, queue: &QueueName, generation: u64) -> Result<()> {
        let reply = self
            .shared
            .run("detach", queue, &scripts().detach, |cmd, _| {
                cmd.arg(generation);
            })
            .await?;
        match reply.status() {
            "ok" | "missing" => Ok(()),
            other => Err(unexpected("detach", other)),
        }
    }

    async fn close(&self, queue: &QueueName, generation: Option<u64>) -> Result<bool> {
        let s = &self.shared;
        let channel = s.layout.queue(queue.as_str()).channel;
        let reply = s
            .run("close", queue, &scripts().close, |cmd, _| {
                cmd.arg(opt(generation)).arg(&channel);
            })
            .await?;
        s.placement.forget(queue.as_str());
        match reply.status() {
            "ok" => Ok(reply.u64(1)? == 1),
            "missing" => Ok(false),
            other => Err(unexpected("close", other)),
        }
    }

    async fn push(
        &self,
        queue: &QueueName,
        generation: u64,
        spec: &QueueSpec,
        entries: &[NewEntry],
    ) -> Result<u64> {
        check_spec(spec)?;
        if entries.is_empty() {
            return Err(Error::invalid_option("entries", "a push needs at least one entry"));
        }
        let s = &self.shared;
        let page = s.config.page_size;
        let channel = s.layout.queue(queue.as_str()).channel;
        let proposed = s.propose(queue);
        // A push that must wait for replicas keeps to one script call followed by WAIT.
        let appended = match s.config.replicas_ack {
            None if entries.len() >= APPEND_MIN => {
                self.append(queue, generation, spec, entries, proposed).await?
            }
            _ => None,
        };
        let reply = match appended {
            Some(reply) => reply,
            None => {
                let durable = Durable::push(s.config.replicas_ack);
                s.run_with("push", queue, &scripts().push, durable, |cmd, create| {
                    cmd.arg(generation);
                    spec_args(cmd, spec, page);
                    cmd.arg(flag(create)).arg(&channel).arg(proposed);
                    for (i, e) in entries.iter().enumerate() {
                        cmd.arg(PushArg::new(e, proposed + i as u64));
                    }
                })
                .await?
            }
        };
        match reply.status() {
            "ok" => {
                let first = reply.u64(1)?;
                s.saw_last(queue, Some(first + entries.len() as u64 - 1));
                Ok(first)
            }
            "closed" => {
                s.saw_last(queue, None);
                Err(Error::Closed { queue: queue.to_string() })
            }
            "full" => Err(Error::QueueFull { queue: queue.to_string(), maxsize: reply.u64(1)? }),
            other => Err(unexpected("push", other)),
        }
    }

    async fn take(
        &self,
        queue: &QueueName,
        _consumer: &ConsumerId,
        max: u32,
        mode: TakeMode,
    ) -> Result<Taken> {
        if max == 0 {
            return Ok(Taken::default());
        }
        if matches!(mode, TakeMode::AtMostOnce) && self.shared.config.replicas_ack.is_none() {
            match self.fast_take(queue, max).await? {
                Fast::Taken(taken) => return Ok(taken),
                Fast::Empty(_) => return Ok(Taken::default()),
                Fast::Slow => {}
            }
        }
        if let TakeMode::Reliable { visibility, max_deliveries } = mode {
            return self.claim(queue, max, visibility, max_deliveries).await;
        }
        // An at-most-once take lost in a failover would hand its messages out again.
        let ack = Durable::take(self.shared.config.replicas_ack);
        let reply = self
            .shared
            .run_with("take", queue, &scripts().take, ack, |cmd, _| {
                cmd.arg(max).arg("a").arg(0).arg(0);
            })
            .await?;
        match reply.status() {
            "ok" => self.take_reply(queue, reply).await,
            "missing" => Ok(Taken::default()),
            other => Err(unexpected("take", other)),
        }
    }

    fn waits_natively(&self) -> bool {
        let s = &self.shared;
        // A take that must wait for replicas cannot be a bare pop.
        s.config.replicas_ack.is_none() && s.blockers.iter().all(Blockers::enabled)
    }

    async fn take_wait(
        &self,
        queue: &QueueName,
        consumer: &ConsumerId,
        max: u32,
        wait: Duration,
        cancel: &tokio::sync::Notify,
    ) -> Result<Taken> {
        if max == 0 || !self.waits_natively() {
            return self.take(queue, consumer, max, TakeMode::AtMostOnce).await;
        }
        self.wait_take(queue, consumer, max, wait, cancel).await
    }

    async fn restore(&self, queue: &QueueName, spec: &QueueSpec, entries: &[Entry]) -> Result<()> {
        check_spec(spec)?;
        if entries.is_empty() {
            return Ok(());
        }
        let s = &self.shared;
        let page = s.config.page_size;
        let channel = s.layout.queue(queue.as_str()).channel;
        let reply = s
            .run("restore", queue, &scripts().restore, |cmd, create| {
                spec_args(cmd, spec, page);
                cmd.arg(flag(create)).arg(&channel);
                for e in entries {
                    cmd.arg(EntryArg::new(e));
                }
            })
            .await?;
        match reply.status() {
            "ok" => Ok(()),
            other => Err(unexpected("restore", other)),
        }
    }

    async fn settle(&self, queue: &QueueName, ops: &[Settle]) -> Result<Vec<Settled>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.settle_claims(queue, ops).await
    }

    async fn read(&self, queue: &QueueName, from: Position, max: u32) -> Result<ReadBatch> {
        let (kind, value) = match from {
            Position::Start => ("i", 0),
            Position::Index(n) => ("i", n),
            Position::FromId(id) => ("f", id),
            Position::AfterId(id) => ("a", id),
            Position::End => ("e", 0),
        };
        let mut reply = self
            .shared
            .run("read", queue, &scripts().read, |cmd, _| {
                cmd.arg(kind).arg(value).arg(max);
            })
            .await?;
        match reply.status() {
            "ok" => {
                let last_id = reply.opt_u64(1)?;
                let mut foreign = script_reports(reply.take_array(2)?, "read", LEFT_IN_PLACE)?;
                // As read.lua does: only those before an entry that is handed out are named,
                // so that a reader continuing after it names each once.
                let mut held = Vec::new();
                let mut entries = Vec::with_capacity(reply.len().saturating_sub(3));
                for i in 3..reply.len() {
                    let raw = Bytes::from(reply.take_bytes(i)?);
                    match parse(raw.clone()) {
                        Ok(mut e) => {
                            e.deliveries = 0;
                            foreign.append(&mut held);
                            entries.push(e);
                        }
                        Err(reason) => held.push(describe(&reason, &raw, raw.len(), LEFT_IN_PLACE)),
                    }
                }
                Ok(ReadBatch { entries, last_id, foreign })
            }
            "missing" => Ok(ReadBatch::default()),
            other => Err(unexpected("read", other)),
        }
    }

    async fn consumers(&self, queue: &QueueName, op: ConsumerOp) -> Result<()> {
        fn kind_code(kind: ConsumerKind) -> &'static str {
            match kind {
                ConsumerKind::Removing => "r",
                ConsumerKind::Replaying => "p",
            }
        }
        let (code, id, kind, lease) = match &op {
            ConsumerOp::Register { id, kind, lease } => ("r", id, Some(*kind), *lease),
            ConsumerOp::Renew { id, kind, lease } => ("n", id, Some(*kind), *lease),
            ConsumerOp::Unregister { id } => ("u", id, None, Duration::ZERO),
        };
        let reply = self
            .shared
            .run("consumers", queue, &scripts().consumers, |cmd, _| {
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
                let requested = kind.unwrap_or(ConsumerKind::Removing);
                Err(Error::MixedConsumers {
                    queue: queue.to_string(),
                    existing: existing.as_str(),
                    requested: requested.as_str(),
                })
            }
            other => Err(unexpected("consumers", other)),
        }
    }

    async fn stat(&self, queue: &QueueName) -> Result<QueueStat> {
        let reply = self.shared.run("stat", queue, &scripts().stat, |_, _| {}).await?;
        match reply.status() {
            "ok" => {
                let (generation, spec) = reply.spec(3)?;
                let last = reply.u64(8)?;
                Ok(QueueStat {
                    exists: true,
                    count: reply.u64(1)?,
                    pending: reply.u64(2)?,
                    spec: Some(spec),
                    generation: Some(generation),
                    last_id: (last > 0).then_some(last),
                    quarantined: reply.u64(9)?,
                })
            }
            "missing" => Ok(QueueStat::default()),
            other => Err(unexpected("stat", other)),
        }
    }

    async fn flush(&self, queue: &QueueName) -> Result<()> {
        let reply = self.shared.run("flush", queue, &scripts().flush, |_, _| {}).await?;
        match reply.status() {
            "ok" | "missing" => Ok(()),
            other => Err(unexpected("flush", other)),
        }
    }

    async fn metadata(&self, queue: &QueueName, op: MetadataOp) -> Result<Metadata> {
        let reply = self
            .shared
            .run("metadata", queue, &scripts().metadata, |cmd, _| {
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

    async fn watch(&self, queue: &QueueName) -> Result<BoxStream<'static, Notice>> {
        let s = &self.shared;
        let keys = s.layout.queue(queue.as_str());
        let route = s.route("watch", queue, &keys).await?;
        let inst = &s.instances[route.index];
        let context = s.context("watch", inst, Some(queue.as_str()), None);
        // A close that happened before this call may still have its notice in flight on the
        // shared subscription: remember which generation was closed already.
        let closed = inst
            .query(redis::cmd("HGET").arg(&keys.keys[1]).arg("closed"))
            .await
            .map_err(|e| context.error(e))?;
        let closed_before = match closed {
            Value::BulkString(b) => std::str::from_utf8(&b).ok().and_then(|t| t.parse().ok()),
            _ => None,
        }
        .unwrap_or(0);
        let main = inst
            .hub
            .watch(keys.channel.clone(), closed_before)
            .await
            .map_err(|e| context.error(e))?;
        if route.legacy {
            // If the queue expires where it lives now, it is recreated on its owner: watch
            // there too. (An owner that is down cannot hold it yet, so that part may fail.)
            let owner = &s.instances[s.placement.owner(queue.as_str())];
            if let Ok(second) = owner.hub.watch(keys.channel.clone(), closed_before).await {
                return Ok(futures::stream::select(main, second).boxed());
            }
        }
        Ok(main.boxed())
    }

    async fn publish(&self, topic: &TopicName, payload: Bytes) -> Result<u64> {
        let s = &self.shared;
        let inst = s.topic_instance(topic);
        let channel = s.layout.topic_channel(topic.as_str());
        let value = inst
            .query(redis::cmd(inst.publish_command()).arg(&channel).arg(&payload[..]))
            .await
            .map_err(|e| s.context("publish", inst, None, Some(topic.as_str())).error(e))?;
        match value {
            // Redis counts receiving connections: one per subscribed store, not per stream.
            Value::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
            other => Err(unexpected("publish", format!("{other:?}"))),
        }
    }

    async fn subscribe(&self, topic: &TopicName) -> Result<BoxStream<'static, Bytes>> {
        let s = &self.shared;
        let inst = s.topic_instance(topic);
        let channel = s.layout.topic_channel(topic.as_str());
        let sub = inst
            .hub
            .topic(channel)
            .await
            .map_err(|e| s.context("subscribe", inst, None, Some(topic.as_str())).error(e))?;
        Ok(sub.boxed())
    }
}

use busmq_core::store::ConsumerId;
