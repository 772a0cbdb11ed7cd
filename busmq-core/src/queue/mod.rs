//! Queues (SPEC section 2): the user-facing handle with attach/detach/close, push, consume and
//! the queue's event stream. The moving parts live in the submodules.

mod coalesce;
// Crate-visible for the bus context, which holds the consumers' turns and names them where
// they are defined (consumer/turn.rs, a leaf): through a re-export here, the bus context and
// the queue module imported each other.
pub(crate) mod consumer;
mod dead_letters;
mod delivery;
mod due;
mod event;
mod inner;
mod keeper;
mod lifecycle;
mod options;
mod pending;
mod pipeline;
mod producer;
mod push_options;
mod read_limit;
mod retry;
mod schedule;
mod settler;
mod worker;

pub use consumer::Consumer;
pub use delivery::Delivery;
pub use event::QueueEvent;
pub(crate) use options::default_dead_letter_name;
pub use options::{AttachOptions, ConsumeMode, ConsumeOptions, DEFAULT_PREFETCH, ReliableOptions};
pub use pending::{Push, PushAll};
pub use push_options::{DEFAULT_DEDUPE_WINDOW, PushOptions};
pub use read_limit::MAX_READ;
pub(crate) use read_limit::check_read_max;
pub use retry::{MAX_RETRY_DELAY, RetryPolicy};
pub use schedule::When;
pub use worker::{Job, Worker, WorkerHandle};

use crate::context::{AttachedQueue, BusInner};
use crate::error::{NameKind, Result};
use crate::events::{EVENT_BUFFER, EventStream};
use crate::headers::Headers;
use crate::name::{QueueName, validate};
use crate::store::{Metadata, MetadataOp, NewEntry, Position, QueueStat, ReadBatch};
use bytes::Bytes;
use dead_letters::DeadLetters;
pub(crate) use inner::QueueInner;
use lifecycle::{Held, Phase};
use producer::Producer;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

/// A handle on one queue (SPEC section 2). Cheap to clone; clones share the attachment, the
/// consumer and the counters. Different handles (from separate `bus.queue(..)` calls) behave as
/// separate clients.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<QueueInner>,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.name)
            .field("phase", &*self.inner.phase.borrow())
            .finish()
    }
}

impl Queue {
    pub(crate) fn new(bus: Arc<BusInner>, name: QueueName) -> Queue {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Queue {
            inner: Arc::new(QueueInner {
                bus,
                producer: Producer::new(name.clone()),
                name,
                phase: watch::Sender::new(Phase::Fresh),
                available: watch::Sender::new(0),
                turn: OnceLock::new(),
                noticed: Mutex::new(None),
                consumer: tokio::sync::Mutex::new(None),
                consumed: AtomicU64::new(0),
                events,
                op_lock: tokio::sync::Mutex::new(()),
                keeper: Mutex::new(None),
                metrics: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn from_inner(inner: Arc<QueueInner>) -> Queue {
        Queue { inner }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// This handle's events from now on.
    pub fn events(&self) -> EventStream<QueueEvent> {
        EventStream::new(self.inner.events.subscribe(), |missed| QueueEvent::Lagged { missed })
    }

    /// Attaches with default options (ttl 30 s). See [`Queue::attach_with`].
    pub async fn attach(&self) -> Result<bool> {
        self.attach_with(AttachOptions::default()).await
    }

    /// Attaches to the queue, creating it if needed (SPEC Q1), and returns whether it already
    /// existed. Pushes made before now are written once attached, in order (SPEC Q7).
    pub async fn attach_with(&self, options: AttachOptions) -> Result<bool> {
        let span = tracing::debug_span!("attach", queue = self.name());
        self.attach_now(options).instrument(span).await
    }

    async fn attach_now(&self, options: AttachOptions) -> Result<bool> {
        let spec = options.validated()?;
        let inner = &self.inner;
        inner.bus.ensure_connected()?;
        let _op = inner.op_lock.lock().await;
        let before = *inner.phase.borrow();
        before.can_attach(&inner.name)?;
        inner.phase.send_replace(Phase::Attaching);
        inner.emit(QueueEvent::Attaching);
        let store = &inner.bus.store;
        // Watch first, so that a close or a push right after attaching is not missed.
        let attached = match store.watch(&inner.name).await {
            Ok(notices) => store.attach(&inner.name, &spec).await.map(|a| (a, notices)),
            Err(error) => Err(error),
        };
        let (attachment, notices) = match attached {
            Ok(ok) => ok,
            Err(error) => {
                tracing::debug!(error = %error, "attach failed");
                inner.phase.send_replace(before);
                return Err(error);
            }
        };
        let held = Held { generation: attachment.generation, spec: attachment.spec };
        let keeper = tokio::spawn(keeper::run(Arc::downgrade(inner), notices, held.spec.ttl));
        *crate::util::lock(&inner.keeper) = Some(keeper);
        inner.phase.send_replace(Phase::Attached(held));
        inner.bus.register_queue(Arc::downgrade(inner) as Weak<dyn AttachedQueue>);
        tracing::debug!(existed = attachment.existed, generation = held.generation, "attached");
        inner.emit(QueueEvent::Attached { existed: attachment.existed });
        Ok(attachment.existed)
    }

    /// Stops consuming, writes the pushes already accepted, and ends this handle's attachment
    /// (SPEC Q3). The queue expires `ttl` after the last attachment ends. A no-op when not
    /// attached.
    pub async fn detach(&self) -> Result<()> {
        let span = tracing::debug_span!("detach", queue = self.name());
        self.detach_now().instrument(span).await
    }

    async fn detach_now(&self) -> Result<()> {
        let inner = &self.inner;
        let _op = inner.op_lock.lock().await;
        let Phase::Attached(held) = *inner.phase.borrow() else {
            return Ok(());
        };
        inner.emit(QueueEvent::Detaching);
        inner.phase.send_replace(Phase::Detaching(held));
        inner.stop_consumer().await;
        inner.producer.drained().await;
        inner.stop_keeper();
        let result = if inner.bus.is_connected() {
            inner.bus.store.detach(&inner.name, held.generation).await
        } else {
            Ok(())
        };
        inner.phase.send_if_modified(|phase| {
            if matches!(phase, Phase::Detaching(_)) {
                *phase = Phase::Detached;
                true
            } else {
                false
            }
        });
        tracing::debug!(ok = result.is_ok(), "detached");
        inner.emit(QueueEvent::Detached);
        result
    }

    /// Destroys the queue and all its messages now (SPEC Q4). Other attached clients are told
    /// (`Closed`) and their consumers end; later pushes through them fail with `Closed`.
    /// Returns whether the queue existed. Works whether or not this handle is attached.
    pub async fn close(&self) -> Result<bool> {
        let span = tracing::debug_span!("close", queue = self.name());
        self.close_now().instrument(span).await
    }

    async fn close_now(&self) -> Result<bool> {
        let inner = &self.inner;
        inner.bus.ensure_connected()?;
        let _op = inner.op_lock.lock().await;
        let generation = inner.phase.borrow().held().map(|h| h.generation);
        let existed = inner.bus.store.close(&inner.name, generation).await?;
        inner.stop_keeper();
        inner.phase.send_replace(Phase::Closed);
        inner.stop_consumer().await;
        tracing::debug!(existed, "closed");
        inner.emit(QueueEvent::Closed);
        Ok(existed)
    }

    /// Whether this handle is attached.
    pub fn is_attached(&self) -> bool {
        matches!(*self.inner.phase.borrow(), Phase::Attached(_))
    }

    /// Pushes a message (SPEC Q6). It is encoded and accepted now; the returned future gives its
    /// id once written. Before the first attach completes pushes are kept and written in order
    /// when it does (SPEC Q7); after `detach` they fail with `Detached`, after a close with
    /// `Closed`. Concurrent pushes are written together in one store call.
    pub fn push<T: Serialize + ?Sized>(&self, message: &T) -> Push {
        // `push_with` without options to build and check: the path of most pushes.
        let entry = self.encode(message).and_then(|payload| self.message(payload, Headers::new()));
        self.push_checked(entry, Ok(None), Ok(push_options::Routing::default()))
    }

    /// Pushes a message with options (see [`PushOptions`]; plain [`Headers`] convert into
    /// them). Headers (SPEC P6) arrive unchanged with its delivery, and with its dead letter if
    /// it gets there. Invalid header keys fail the push with `InvalidName`, and body and
    /// headers together must fit the message size limit (see [`Headers`]); an invalid dedupe
    /// key or window is `InvalidOption`; either way nothing is written. With the
    /// `opentelemetry` feature the current span's trace context is added (unless the headers
    /// have a `traceparent`), without counting towards the limit. A push with a dedupe key
    /// (SPEC P10) resolves to the id of the push that first wrote that key within its window.
    /// A priority level (SPEC P12) or an ordering key (SPEC P11) out of range, or either on a
    /// queue with retention, is `InvalidOption` naming it. Pushes of different levels and keys
    /// share store calls (each entry carries its own); pushes with a dedupe key do not.
    pub fn push_with<T: Serialize + ?Sized>(
        &self,
        message: &T,
        options: impl Into<PushOptions>,
    ) -> Push {
        let options = options.into();
        let dedupe = options.checked_dedupe();
        let routing = options.checked_routing();
        let entry = self.encode(message).and_then(|payload| self.message(payload, options.headers));
        self.push_checked(entry, dedupe, routing)
    }

    /// Pushes bytes as they are, without the codec.
    pub fn push_raw(&self, payload: impl Into<Bytes>) -> Push {
        self.push_raw_with(payload, Headers::new())
    }

    /// Pushes bytes as they are, with options (see [`Queue::push_with`]).
    pub fn push_raw_with(
        &self,
        payload: impl Into<Bytes>,
        options: impl Into<PushOptions>,
    ) -> Push {
        let options = options.into();
        let dedupe = options.checked_dedupe();
        let routing = options.checked_routing();
        let payload = payload.into();
        let entry =
            self.check_size(payload.len()).and_then(|()| self.message(payload, options.headers));
        self.push_checked(entry, dedupe, routing)
    }

    fn push_checked(
        &self,
        entry: Result<NewEntry>,
        dedupe: Result<Option<push_options::Keyed>>,
        routing: Result<push_options::Routing>,
    ) -> Push {
        match (entry, dedupe, routing) {
            (Ok(entry), Ok(dedupe), Ok(routing)) => self.push_entry(entry, dedupe, routing),
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => Push::failed(error),
        }
    }

    /// Pushes several messages atomically and in order (SPEC Q9); gives their ids. If one does
    /// not encode or is too large, nothing is pushed.
    pub fn push_all<I>(&self, messages: I) -> PushAll
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let entries: Result<Vec<NewEntry>> = messages
            .into_iter()
            .map(|m| self.encode(&m).and_then(|payload| self.message(payload, Headers::new())))
            .collect();
        match entries {
            Ok(entries) => self.push_entries(entries),
            Err(error) => PushAll::failed(error),
        }
    }

    fn push_entry(
        &self,
        entry: NewEntry,
        dedupe: Option<push_options::Keyed>,
        routing: push_options::Routing,
    ) -> Push {
        let phase = *self.inner.phase.borrow();
        if let Err(error) = phase.can_push(&self.inner.name) {
            return Push::failed(error);
        }
        // Refused now when the spec is known; a push buffered before the attach is checked
        // against the adopted spec when it is written.
        if let Some(Err(error)) = phase.held().map(|held| routing.check_spec(&held.spec)) {
            return Push::failed(error);
        }
        let entry = routing.apply(entry);
        let started = self.inner.metrics().timed().then(std::time::Instant::now);
        self.inner.producer.enqueue_one(entry, dedupe, started, || self.inner.target())
    }

    /// Pushes a frame of busmq's own (a channel's control frames): no headers, no trace context.
    pub(crate) fn push_frame(&self, payload: Bytes) -> Push {
        self.push_entry(NewEntry::new(payload), None, push_options::Routing::default())
    }

    pub(crate) fn push_entries(&self, entries: Vec<NewEntry>) -> PushAll {
        if let Err(error) = self.inner.phase.borrow().can_push(&self.inner.name) {
            return PushAll::failed(error);
        }
        let started = self.inner.metrics().timed().then(std::time::Instant::now);
        self.inner.producer.enqueue_all(entries, started, || self.inner.target())
    }

    fn encode<T: Serialize + ?Sized>(&self, message: &T) -> Result<Bytes> {
        self.inner.bus.config.encode(|| self.target(), message)
    }

    /// A user's message of `payload` (already within the size limit) with `headers` checked
    /// and, with the `opentelemetry` feature, the caller's trace context added.
    fn message(&self, payload: Bytes, headers: Headers) -> Result<NewEntry> {
        if !headers.is_empty() {
            self.inner.bus.config.check_headers(|| self.target(), payload.len(), &headers)?;
        }
        #[cfg(feature = "opentelemetry")]
        let headers = {
            let mut headers = headers;
            crate::headers::w3c::inject_current(&mut headers);
            headers
        };
        Ok(NewEntry::new(payload).with_headers(headers))
    }

    fn check_size(&self, size: usize) -> Result<()> {
        self.inner.bus.config.check_size(|| self.target(), size)
    }

    fn target(&self) -> String {
        format!("queue {:?}", self.inner.name.as_str())
    }

    /// Consumes at most once, without limit, decoding messages as `T`. See
    /// [`Queue::consume_with`].
    pub async fn consume<T: DeserializeOwned + 'static>(&self) -> Result<Consumer<T>> {
        self.consume_with(ConsumeOptions::default()).await
    }

    /// Starts consuming (SPEC Q10-Q14). A consume before attach starts when the queue gets
    /// attached. A handle consumes once at a time: a second call while consuming is
    /// `AlreadyConsuming` (SPEC Q11). A replaying consumer next to a removing one (on any
    /// client) is `MixedConsumers` (SPEC Q15).
    pub async fn consume_with<T: DeserializeOwned + 'static>(
        &self,
        options: ConsumeOptions,
    ) -> Result<Consumer<T>> {
        consumer::start(&self.inner, options, consumer::typed::<T>(), DeadLetters::sink).await
    }

    /// Consumes the stored bytes without decoding.
    pub async fn consume_raw(&self, options: ConsumeOptions) -> Result<Consumer<Bytes>> {
        consumer::start(&self.inner, options, consumer::raw(), DeadLetters::sink).await
    }

    /// Stops consuming (SPEC Q12) and waits until messages taken but not delivered are back at
    /// the head of the queue. A no-op when not consuming.
    pub async fn stop(&self) -> Result<()> {
        self.inner.stop_consumer().await;
        Ok(())
    }

    /// Whether this handle is consuming.
    pub async fn is_consuming(&self) -> bool {
        self.inner.consumer.lock().await.as_ref().is_some_and(|c| !c.is_finished())
    }

    /// Removes every message but keeps the queue (SPEC Q5).
    pub async fn flush(&self) -> Result<()> {
        self.inner.bus.ensure_connected()?;
        self.inner.bus.store.flush(&self.inner.name).await
    }

    /// Everything the store reports about the queue.
    pub async fn stat(&self) -> Result<QueueStat> {
        self.inner.bus.ensure_connected()?;
        self.inner.bus.store.stat(&self.inner.name).await
    }

    /// Reads up to `max` messages from `from` without removing anything, without attaching
    /// and without registering a consumer, so that looking at a queue neither keeps it alive
    /// nor conflicts with its consumers (SPEC O3; `busmq peek` and `tail`). A missing queue
    /// reads as empty. [`ReadBatch::last_id`] is the newest id at the time of the read: a
    /// follower continues from `Position::AfterId` of the last entry it saw.
    ///
    /// `max` is at most [`MAX_READ`]: a read is one store reply, held whole in memory on both
    /// sides; page with `Position::AfterId` for more.
    pub async fn peek(&self, from: Position, max: u32) -> Result<ReadBatch> {
        check_read_max(max)?;
        self.inner.bus.ensure_connected()?;
        self.inner.bus.store.read(&self.inner.name, from, max).await
    }

    /// Whether the queue exists (works without attaching).
    pub async fn exists(&self) -> Result<bool> {
        Ok(self.stat().await?.exists)
    }

    /// Messages waiting to be consumed (SPEC Q5).
    pub async fn count(&self) -> Result<u64> {
        Ok(self.stat().await?.count)
    }

    /// The queue's stored ttl, or `None` if it does not exist.
    pub async fn ttl(&self) -> Result<Option<Duration>> {
        Ok(self.stat().await?.spec.map(|spec| spec.ttl))
    }

    /// Reads one metadata value.
    pub async fn metadata(&self, key: &str) -> Result<Option<String>> {
        validate(NameKind::MetadataKey, key)?;
        match self.metadata_op(MetadataOp::Get(key.to_string())).await? {
            Metadata::Value(value) => Ok(value),
            _ => Ok(None),
        }
    }

    /// Reads every metadata key and value, sorted by key.
    pub async fn metadata_all(&self) -> Result<Vec<(String, String)>> {
        match self.metadata_op(MetadataOp::GetAll).await? {
            Metadata::All(all) => Ok(all),
            _ => Ok(Vec::new()),
        }
    }

    /// Writes one metadata value (an empty string is a value).
    pub async fn set_metadata(&self, key: &str, value: &str) -> Result<()> {
        self.set_metadata_many([(key, value)]).await
    }

    /// Writes several metadata values at once.
    pub async fn set_metadata_many<K, V>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut all = Vec::new();
        for (key, value) in pairs {
            validate(NameKind::MetadataKey, key.as_ref())?;
            all.push((key.as_ref().to_string(), value.as_ref().to_string()));
        }
        self.metadata_op(MetadataOp::Set(all)).await.map(|_| ())
    }

    async fn metadata_op(&self, op: MetadataOp) -> Result<Metadata> {
        self.inner.bus.ensure_connected()?;
        self.inner.bus.store.metadata(&self.inner.name, op).await
    }

    /// Messages this handle has pushed (SPEC Q5).
    pub fn pushed(&self) -> u64 {
        self.inner.producer.pushed()
    }

    /// Messages this handle has delivered to its consumers (SPEC Q5).
    pub fn consumed(&self) -> u64 {
        self.inner.consumed.load(Ordering::Relaxed)
    }
}
