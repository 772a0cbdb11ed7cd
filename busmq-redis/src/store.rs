//! [`RedisStore`]: the handle users hold, and busmq's store traits over it. Each method only
//! delegates: the session to `session/fleet.rs`, every queue or object operation to its module
//! in `ops/` (one atomic operation each: one Lua script, or one MULTI around scripts).

use crate::config::builder::RedisStoreBuilder;
use crate::ops::call::Ctx;
use crate::ops::{list, object, push, queue, read, reliable, schedule, take, topics, wait};
use crate::script::keys::BatchNames;
use crate::session::fleet::Fleet;
use async_trait::async_trait;
use busmq_core::store::{
    Attachment, BlockingTake, ConsumerOp, Entry, Inspect, Link, Metadata, MetadataOp, Notice,
    ObjectOp, ObjectReply, PipelinedPush, Position, PushBatch, QueuePage, QueueSpec, QueueStat,
    ReadBatch, Receipt, Renewal, Restored, ScheduleBatch, Scheduled, Session, Settle, Settled,
    StoreEvent, StoreState, TakeMode, Taken, Topics,
};
use busmq_core::{ObjectName, QueueName, Result, Store, TopicName};
use bytes::Bytes;
use futures::stream::BoxStream;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};

/// A busmq store over Redis. Cheap to clone (clones share connections and state).
///
/// Build it with [`RedisStore::builder`] (or [`RedisStore::open`] / [`RedisStore::from_urls`]);
/// nothing connects until [`Session::connect`].
#[derive(Clone)]
pub struct RedisStore {
    ctx: Arc<Ctx>,
}

impl RedisStoreBuilder {
    /// Checks everything and builds the store (unconnected).
    pub fn build(self) -> Result<RedisStore> {
        let checked = self.check()?;
        let fleet = Fleet::new(checked.endpoints, &checked.layout, &checked.config)?;
        let ctx = Ctx {
            layout: checked.layout,
            config: checked.config,
            fleet,
            batches: BatchNames::new(),
            keys: Default::default(),
            full_claims: Default::default(),
        };
        Ok(RedisStore { ctx: Arc::new(ctx) })
    }
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

    /// The namespace prefixing every key.
    pub fn namespace(&self) -> &str {
        self.ctx.layout.namespace()
    }

    /// The identities (`host:port/db` or `unix:<path>/db`) of the configured instances, in the
    /// order they were given.
    pub fn instances(&self) -> Vec<String> {
        self.ctx.fleet.instances.iter().map(|i| i.identity().to_string()).collect()
    }

    /// The identity of the instance that owns `queue` under the configured instances (where a
    /// new queue of that name is created). See the crate documentation for the rule.
    pub fn owner(&self, queue: &QueueName) -> String {
        self.ctx.owner(queue.as_str()).identity().to_string()
    }

    /// The identity of the instance that carries `topic`.
    pub fn topic_owner(&self, topic: &TopicName) -> String {
        self.ctx.owner(topic.as_str()).identity().to_string()
    }

    /// The context of the operations, once connected.
    fn live(&self) -> Result<&Ctx> {
        self.ctx.fleet.ensure_connected()?;
        Ok(&self.ctx)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace())
            .field("instances", &self.instances())
            .finish()
    }
}

#[async_trait]
impl Session for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn connect(&self) -> Result<StoreState> {
        self.ctx.fleet.connect().await
    }

    async fn disconnect(&self) -> Result<()> {
        self.ctx.fleet.disconnect().await;
        Ok(())
    }

    fn state(&self) -> watch::Receiver<StoreState> {
        self.ctx.fleet.state()
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.ctx.fleet.events()
    }
}

#[async_trait]
impl Topics for RedisStore {
    async fn publish(&self, topic: &TopicName, payload: Bytes) -> Result<u64> {
        topics::publish(self.live()?, topic, payload).await
    }

    async fn subscribe(&self, topic: &TopicName) -> Result<BoxStream<'static, Bytes>> {
        topics::subscribe(self.live()?, topic).await
    }
}

#[async_trait]
impl BlockingTake for RedisStore {
    async fn take_wait(
        &self,
        queue: &QueueName,
        max: u32,
        wait: Duration,
        cancel: &Notify,
        resume: &Receipt,
    ) -> Result<Taken> {
        wait::take_wait(self.live()?, queue, max, wait, cancel, resume).await
    }
}

#[async_trait]
impl PipelinedPush for RedisStore {
    fn least(&self) -> usize {
        push::LINKED_MIN
    }

    async fn push_linked(
        &self,
        queue: &QueueName,
        batch: &PushBatch<'_>,
        link: Link,
    ) -> Result<Option<u64>> {
        push::push_linked(self.live()?, queue, batch, Some(link)).await
    }
}

#[async_trait]
impl Inspect for RedisStore {
    async fn list_queues(&self, cursor: Option<&str>, count: u32) -> Result<QueuePage> {
        list::list_queues(self.live()?, cursor, count).await
    }
}

#[async_trait]
impl Store for RedisStore {
    fn blocking(&self) -> Option<&dyn BlockingTake> {
        // A take that must wait for replicas cannot be a bare pop.
        let ctx = &self.ctx;
        (ctx.config.replicas_ack.is_none() && ctx.fleet.can_block()).then_some(self as _)
    }

    fn inspect(&self) -> Option<&dyn Inspect> {
        Some(self)
    }

    fn pipelined(&self) -> Option<&dyn PipelinedPush> {
        // A push that waits for replicas is one script call and WAIT, never linked.
        self.ctx.config.replicas_ack.is_none().then_some(self as _)
    }

    async fn attach(&self, queue: &QueueName, spec: &QueueSpec) -> Result<Attachment> {
        queue::attach(self.live()?, queue, spec).await
    }

    async fn renew(&self, queue: &QueueName, generation: u64, spec: &QueueSpec) -> Result<Renewal> {
        queue::renew(self.live()?, queue, generation, spec).await
    }

    async fn detach(&self, queue: &QueueName, generation: u64) -> Result<()> {
        queue::detach(self.live()?, queue, generation).await
    }

    async fn close(&self, queue: &QueueName, generation: Option<u64>) -> Result<bool> {
        queue::close(self.live()?, queue, generation).await
    }

    async fn push(&self, queue: &QueueName, batch: &PushBatch<'_>) -> Result<u64> {
        push::push(self.live()?, queue, batch).await
    }

    async fn schedule(&self, queue: &QueueName, batch: &ScheduleBatch<'_>) -> Result<Scheduled> {
        schedule::schedule(self.live()?, queue, batch).await
    }

    async fn cancel(&self, queue: &QueueName, scheduled: &Scheduled) -> Result<bool> {
        schedule::cancel(self.live()?, queue, scheduled).await
    }

    async fn take(&self, queue: &QueueName, max: u32, mode: TakeMode) -> Result<Taken> {
        let ctx = self.live()?;
        match mode {
            _ if max == 0 => Ok(Taken::default()),
            TakeMode::AtMostOnce => take::take(ctx, queue, max).await,
            TakeMode::Reliable { visibility, max_deliveries } => {
                reliable::claim(ctx, queue, max, visibility, max_deliveries).await
            }
        }
    }

    async fn restore(
        &self,
        queue: &QueueName,
        generation: u64,
        entries: &[Entry],
    ) -> Result<Restored> {
        queue::restore(self.live()?, queue, generation, entries).await
    }

    async fn settle(&self, queue: &QueueName, ops: &[Settle]) -> Result<Vec<Settled>> {
        reliable::settle(self.live()?, queue, ops).await
    }

    async fn read(&self, queue: &QueueName, from: Position, max: u32) -> Result<ReadBatch> {
        read::read(self.live()?, queue, from, max).await
    }

    async fn consumers(&self, queue: &QueueName, op: ConsumerOp) -> Result<()> {
        queue::consumers(self.live()?, queue, op).await
    }

    async fn stat(&self, queue: &QueueName) -> Result<QueueStat> {
        queue::stat(self.live()?, queue).await
    }

    async fn flush(&self, queue: &QueueName) -> Result<()> {
        queue::flush(self.live()?, queue).await
    }

    async fn metadata(&self, queue: &QueueName, op: MetadataOp) -> Result<Metadata> {
        queue::metadata(self.live()?, queue, op).await
    }

    async fn watch(&self, queue: &QueueName) -> Result<BoxStream<'static, Notice>> {
        topics::watch(self.live()?, queue).await
    }

    async fn object(&self, name: &ObjectName, op: ObjectOp) -> Result<ObjectReply> {
        object::object(self.live()?, name, op).await
    }
}
