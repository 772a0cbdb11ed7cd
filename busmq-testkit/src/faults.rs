//! A fault-injecting wrapper around any store: chosen operations fail with `Offline` while a
//! switch is on, so that cases can check what the core does when a single call fails (a failed
//! ack, a failed extension) on every backend, over the real store underneath. A second switch
//! lets chosen operations run and then loses their answer (`Timeout`): the call took effect and
//! the caller cannot know.
//!
//! Network-level faults against real Redis processes are the business of [`crate::proxy`];
//! this wrapper is for behaviour that is the same whatever made the call fail.

use async_trait::async_trait;
use busmq_core::store::{
    Attachment, BlockingTake, ConsumerOp, Entry, Inspect, Link, Metadata, MetadataOp, Notice,
    ObjectOp, ObjectReply, PipelinedPush, Position, PushBatch, QueueSpec, QueueStat, ReadBatch,
    Receipt, Renewal, Restored, ScheduleBatch, Scheduled, Session, Settle, Settled, StoreEvent,
    StoreState, TakeMode, Taken, Topics,
};
use busmq_core::{Error, ObjectName, QueueName, Result, Store, StoreHandle, TopicName};
use bytes::Bytes;
use futures::stream::BoxStream;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};

/// The operations a [`Faults`] switch can make fail, named as the `Store` methods are.
pub type Operation = &'static str;

/// The switch of a [`FaultyStore`]: which operations fail now.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    failing: Arc<Mutex<HashSet<Operation>>>,
    losing: Arc<Mutex<HashSet<Operation>>>,
    stalling: Arc<Mutex<HashSet<Operation>>>,
    shortening: Arc<Mutex<HashSet<Operation>>>,
    healed: Arc<Notify>,
    /// Calls of each operation so far (failed ones included).
    calls: Arc<Mutex<HashMap<Operation, u64>>>,
    /// Plain takes (`take`, not `take_wait`) the store answered.
    answered_takes: Arc<AtomicU64>,
    /// How many of the next plain takes wait for [`Faults::heal`] (see `stall_next_takes`).
    stalled_takes: Arc<AtomicU64>,
}

impl Faults {
    /// Makes `operations` fail from now on.
    pub fn fail(&self, operations: &[Operation]) {
        self.failing.lock().expect("faults lock").extend(operations.iter().copied());
    }

    /// Makes `operations` run in the store and then fail with `Timeout` from now on, as when
    /// the answer is lost on its way back. Only `push` and `settle` can lose their answer.
    pub fn lose_answers(&self, operations: &[Operation]) {
        self.losing.lock().expect("faults lock").extend(operations.iter().copied());
    }

    /// Makes calls of `operations` wait, before they reach the store, until [`Faults::heal`]
    /// (a server that stopped answering without closing the connection). Only `settle` stalls.
    pub fn stall(&self, operations: &[Operation]) {
        self.stalling.lock().expect("faults lock").extend(operations.iter().copied());
    }

    /// Makes `operations` run in the store and then answer for one item fewer than asked, as
    /// a store that breaks the contract would. Only `settle` is shortened.
    pub fn shorten_answers(&self, operations: &[Operation]) {
        self.shortening.lock().expect("faults lock").extend(operations.iter().copied());
    }

    /// How many calls of `operation` were made so far (whether they failed or not).
    pub fn calls(&self, operation: Operation) -> u64 {
        self.calls.lock().expect("faults lock").get(operation).copied().unwrap_or(0)
    }

    /// Makes the next `n` plain takes (`take`) wait, before they reach the store, until
    /// [`Faults::heal`]; later takes go through (one consumer's take stuck on a server).
    pub fn stall_next_takes(&self, n: u64) {
        self.stalled_takes.store(n, Ordering::SeqCst);
    }

    /// How many plain takes (`take`) the store answered so far.
    pub fn answered_takes(&self) -> u64 {
        self.answered_takes.load(Ordering::SeqCst)
    }

    /// Lets every operation through again, with its answer.
    pub fn heal(&self) {
        self.failing.lock().expect("faults lock").clear();
        self.losing.lock().expect("faults lock").clear();
        self.stalling.lock().expect("faults lock").clear();
        self.shortening.lock().expect("faults lock").clear();
        self.healed.notify_waiters();
    }

    async fn unstalled(&self, operation: Operation) {
        loop {
            let healed = self.healed.notified();
            if !self.stalling.lock().expect("faults lock").contains(operation) {
                return;
            }
            healed.await;
        }
    }

    /// `result`, or a `Timeout` in its place when the answers of `operation` are being lost.
    fn answer<T>(&self, operation: Operation, result: Result<T>) -> Result<T> {
        if result.is_ok() && self.losing.lock().expect("faults lock").contains(operation) {
            let target = format!("fault injection ({operation}, answer lost)");
            return Err(Error::Timeout { operation, target, after: Duration::ZERO });
        }
        result
    }

    fn check(&self, operation: Operation) -> Result<()> {
        *self.calls.lock().expect("faults lock").entry(operation).or_default() += 1;
        if self.failing.lock().expect("faults lock").contains(operation) {
            return Err(Error::Offline { target: format!("fault injection ({operation})") });
        }
        Ok(())
    }
}

/// A store that forwards every call to `inner`, except the operations its [`Faults`] make fail.
pub struct FaultyStore {
    inner: StoreHandle,
    faults: Faults,
}

impl FaultyStore {
    /// Wraps `inner`; returns the store and its switch.
    pub fn wrap(inner: StoreHandle) -> (FaultyStore, Faults) {
        let faults = Faults::default();
        (FaultyStore { inner, faults: faults.clone() }, faults)
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[async_trait]
impl Session for FaultyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn connect(&self) -> Result<StoreState> {
        self.faults.check("connect")?;
        self.inner.connect().await
    }

    async fn disconnect(&self) -> Result<()> {
        self.inner.disconnect().await
    }

    fn state(&self) -> watch::Receiver<StoreState> {
        self.inner.state()
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.inner.events()
    }
}

#[async_trait]
impl Topics for FaultyStore {
    async fn publish(&self, topic: &TopicName, payload: Bytes) -> Result<u64> {
        self.faults.check("publish")?;
        self.inner.publish(topic, payload).await
    }

    async fn subscribe(&self, topic: &TopicName) -> Result<BoxStream<'static, Bytes>> {
        self.faults.check("subscribe")?;
        self.inner.subscribe(topic).await
    }
}

#[async_trait]
impl BlockingTake for FaultyStore {
    async fn take_wait(
        &self,
        queue: &QueueName,
        max: u32,
        wait: Duration,
        cancel: &Notify,
        resume: &Receipt,
    ) -> Result<Taken> {
        self.faults.check("take")?;
        match self.inner.blocking() {
            Some(blocking) => blocking.take_wait(queue, max, wait, cancel, resume).await,
            None => self.inner.take(queue, max, TakeMode::AtMostOnce).await,
        }
    }
}

/// A linked push is a push: the same switch fails it or loses its answer.
#[async_trait]
impl PipelinedPush for FaultyStore {
    fn least(&self) -> usize {
        self.inner.pipelined().map_or(1, |inner| inner.least())
    }

    async fn push_linked(
        &self,
        queue: &QueueName,
        batch: &PushBatch<'_>,
        link: Link,
    ) -> Result<Option<u64>> {
        self.faults.check("push")?;
        let pushed = match self.inner.pipelined() {
            Some(inner) => inner.push_linked(queue, batch, link).await,
            None if link.follows.is_some() => Ok(None),
            None => self.inner.push(queue, batch).await.map(Some),
        };
        self.faults.answer("push", pushed)
    }
}

#[async_trait]
impl Store for FaultyStore {
    fn blocking(&self) -> Option<&dyn BlockingTake> {
        self.inner.blocking().map(|_| self as &dyn BlockingTake)
    }

    /// The listing is the inner store's, without faults: no case needs a failing one.
    fn inspect(&self) -> Option<&dyn Inspect> {
        self.inner.inspect()
    }

    fn pipelined(&self) -> Option<&dyn PipelinedPush> {
        self.inner.pipelined().map(|_| self as &dyn PipelinedPush)
    }

    async fn attach(&self, queue: &QueueName, spec: &QueueSpec) -> Result<Attachment> {
        self.faults.check("attach")?;
        self.inner.attach(queue, spec).await
    }

    async fn renew(&self, queue: &QueueName, generation: u64, spec: &QueueSpec) -> Result<Renewal> {
        self.faults.check("renew")?;
        self.inner.renew(queue, generation, spec).await
    }

    async fn detach(&self, queue: &QueueName, generation: u64) -> Result<()> {
        self.faults.check("detach")?;
        self.inner.detach(queue, generation).await
    }

    async fn close(&self, queue: &QueueName, generation: Option<u64>) -> Result<bool> {
        self.faults.check("close")?;
        self.inner.close(queue, generation).await
    }

    async fn push(&self, queue: &QueueName, batch: &PushBatch<'_>) -> Result<u64> {
        self.faults.check("push")?;
        let pushed = self.inner.push(queue, batch).await;
        self.faults.answer("push", pushed)
    }

    async fn schedule(&self, queue: &QueueName, batch: &ScheduleBatch<'_>) -> Result<Scheduled> {
        self.faults.check("schedule")?;
        self.inner.schedule(queue, batch).await
    }

    async fn cancel(&self, queue: &QueueName, scheduled: &Scheduled) -> Result<bool> {
        self.faults.check("cancel")?;
        self.inner.cancel(queue, scheduled).await
    }

    async fn take(&self, queue: &QueueName, max: u32, mode: TakeMode) -> Result<Taken> {
        self.faults.check("take")?;
        let stalled =
            self.faults
                .stalled_takes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if stalled.is_ok() {
            self.faults.stall(&["take"]);
            self.faults.unstalled("take").await;
        }
        let taken = self.inner.take(queue, max, mode).await;
        self.faults.answered_takes.fetch_add(1, Ordering::SeqCst);
        taken
    }

    async fn restore(
        &self,
        queue: &QueueName,
        generation: u64,
        entries: &[Entry],
    ) -> Result<Restored> {
        self.faults.check("restore")?;
        self.inner.restore(queue, generation, entries).await
    }

    async fn settle(&self, queue: &QueueName, ops: &[Settle]) -> Result<Vec<Settled>> {
        self.faults.unstalled("settle").await;
        self.faults.check("settle")?;
        let mut settled = self.inner.settle(queue, ops).await;
        if let Ok(answers) = &mut settled
            && self.faults.shortening.lock().expect("faults lock").contains("settle")
        {
            answers.pop();
        }
        self.faults.answer("settle", settled)
    }

    async fn read(&self, queue: &QueueName, from: Position, max: u32) -> Result<ReadBatch> {
        self.faults.check("read")?;
        self.inner.read(queue, from, max).await
    }

    async fn consumers(&self, queue: &QueueName, op: ConsumerOp) -> Result<()> {
        self.faults.check("consumers")?;
        self.inner.consumers(queue, op).await
    }

    async fn stat(&self, queue: &QueueName) -> Result<QueueStat> {
        self.faults.check("stat")?;
        self.inner.stat(queue).await
    }

    async fn flush(&self, queue: &QueueName) -> Result<()> {
        self.faults.check("flush")?;
        self.inner.flush(queue).await
    }

    async fn metadata(&self, queue: &QueueName, op: MetadataOp) -> Result<Metadata> {
        self.faults.check("metadata")?;
        self.inner.metadata(queue, op).await
    }

    async fn watch(&self, queue: &QueueName) -> Result<BoxStream<'static, Notice>> {
        self.faults.check("watch")?;
        self.inner.watch(queue).await
    }

    async fn object(&self, object: &ObjectName, op: ObjectOp) -> Result<ObjectReply> {
        self.faults.check("object")?;
        self.inner.object(object, op).await
    }
}
