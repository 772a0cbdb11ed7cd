//! The bus: the façade users hold over one store: connect and disconnect, state and events,
//! and the factory of queues, channels, topics and persisted objects. What the handles share
//! is in `context.rs`.

use crate::bus_state::{BusEvent, BusState};
use crate::channel::Channel;
use crate::context::{BusConfig, BusInner};
use crate::dead_letter_queue::DeadLetterQueue;
use crate::error::{Error, Result};
use crate::events::EventStream;
use crate::name::{ObjectName, QueueName, TopicName};
use crate::observability::DEFAULT_QUEUE_LABELS;
use crate::persisted::{PersistOptions, Persisted};
use crate::pubsub::PubSub;
use crate::queue::Queue;
use crate::service::Service;
use crate::store::{ClientId, Store, StoreHandle};
use busmq_codec::Codec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The default limit on one encoded message (SPEC E1).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 * 1024 * 1024;

/// The work hint of one listing step in [`Bus::queues`]: on Redis, keys one `SCAN` step looks
/// at, which keeps each step short for the server.
const LIST_STEP: u32 = 1000;

/// A message bus over one [`Store`]. Cheap to clone; clones share the connection.
///
/// ```
/// # async fn demo(store: impl busmq_core::Store) -> busmq_core::Result<()> {
/// use busmq_core::Bus;
/// let bus = Bus::new(store);
/// bus.connect().await?;
/// let queue = bus.queue("jobs")?;
/// queue.attach().await?;
/// queue.push(&"hello").await?;
/// bus.disconnect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bus {
    pub(crate) inner: Arc<BusInner>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("store", &self.inner.store)
            .field("client", &self.inner.client)
            .field("state", &self.state())
            .finish()
    }
}

/// Options of a bus, set before it is built.
#[derive(Debug)]
pub struct BusBuilder {
    store: StoreHandle,
    codec: Codec,
    max_message_size: usize,
    client: Option<ClientId>,
    queue_labels: Option<usize>,
    depth_every: Option<Duration>,
}

impl BusBuilder {
    /// The codec of every queue, channel and topic of this bus (default JSON).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The largest encoded message accepted (default 8 MiB). Larger pushes fail with
    /// `MessageTooLarge` and write nothing.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// A fixed client id instead of a random one (useful to recognise a process in the store).
    pub fn client_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.client = Some(ClientId::new(id));
        self
    }

    /// Samples the depth (`stat().count`) of every queue attached through this bus each
    /// `every` into the `busmq_queue_depth` gauge (see [`observability`](crate::observability)).
    /// Off by default: each sample is one store call per attached queue.
    pub fn depth_sampling(mut self, every: Duration) -> Self {
        self.depth_every = Some(every);
        self
    }

    /// The most distinct queue names this bus uses as values of the metrics' `queue` label
    /// (default [`DEFAULT_QUEUE_LABELS`]); queues beyond them are labelled `_other`. Each
    /// value is a time series the exporter keeps for the life of the process.
    pub fn queue_label_limit(mut self, limit: usize) -> Self {
        self.queue_labels = Some(limit);
        self
    }

    /// Records metrics without a `queue` label: every queue of the bus adds to the same
    /// series.
    pub fn without_queue_label(mut self) -> Self {
        self.queue_labels = None;
        self
    }

    /// Builds the bus. It is not connected yet.
    pub fn build(self) -> Result<Bus> {
        if self.max_message_size == 0 {
            return Err(Error::invalid_option("max_message_size", "must be at least 1 byte"));
        }
        if self.depth_every.is_some_and(|every| every.is_zero()) {
            return Err(Error::invalid_option("depth_sampling", "the period must not be zero"));
        }
        let config = BusConfig {
            codec: self.codec,
            max_message_size: self.max_message_size,
            queue_labels: self.queue_labels,
            depth_every: self.depth_every,
        };
        let client = self.client.unwrap_or_else(ClientId::random);
        Ok(Bus { inner: Arc::new(BusInner::new(self.store, client, config)) })
    }
}

impl Bus {
    /// A bus over `store` with default options.
    pub fn new(store: impl Store) -> Bus {
        Bus::builder(store).build().expect("default options are valid")
    }

    /// A builder over `store`.
    pub fn builder(store: impl Store) -> BusBuilder {
        Bus::builder_from_handle(Arc::new(store))
    }

    /// A builder over an already shared store handle.
    pub fn builder_from_handle(store: StoreHandle) -> BusBuilder {
        BusBuilder {
            store,
            codec: Codec::default(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            client: None,
            queue_labels: Some(DEFAULT_QUEUE_LABELS),
            depth_every: None,
        }
    }

    /// Connects the bus (SPEC B1-B3). Returns the first state once known: `Offline` is not an
    /// error, the store keeps reconnecting in the background and the bus reports `Online` when
    /// it can. A second `connect` without `disconnect` is [`Error::AlreadyConnected`].
    pub async fn connect(&self) -> Result<BusState> {
        self.inner.connect().await
    }

    /// Disconnects: stops consumers (returning their undelivered messages), detaches every
    /// attached queue, closes the store's connections and reports `Offline` (SPEC B3).
    /// Idempotent. The bus can be connected again afterwards.
    pub async fn disconnect(&self) -> Result<()> {
        self.inner.disconnect().await
    }

    /// Whether the bus is connected and at least part of the store answers.
    pub fn is_online(&self) -> bool {
        self.inner.is_connected() && self.state() != BusState::Offline
    }

    /// The current state.
    pub fn state(&self) -> BusState {
        self.inner.state().borrow().clone()
    }

    /// Waits until the bus is online (or degraded), at most `timeout`.
    pub async fn wait_online(&self, timeout: Duration) -> Result<()> {
        let mut state = self.inner.state().subscribe();
        let online = state.wait_for(|state| *state != BusState::Offline);
        match tokio::time::timeout(timeout, online).await {
            Ok(Ok(_)) => Ok(()),
            // The sender lives as long as the bus, which `self` holds.
            Ok(Err(_)) | Err(_) => Err(Error::Timeout {
                operation: "wait_online",
                target: self.inner.store.backend().to_string(),
                after: timeout,
            }),
        }
    }

    /// The bus's events (`Online`, `Degraded`, `Offline`, `Error`) from now on.
    pub fn events(&self) -> EventStream<BusEvent> {
        EventStream::new(self.inner.events().subscribe(), |missed| BusEvent::Lagged { missed })
    }

    /// This bus's client id in the store.
    pub fn client_id(&self) -> &str {
        self.inner.client.as_str()
    }

    /// The codec used for messages.
    pub fn codec(&self) -> Codec {
        self.inner.config.codec
    }

    /// A handle on the queue `name` (validated here, SPEC E1). Call `attach` before use.
    pub fn queue(&self, name: impl AsRef<str>) -> Result<Queue> {
        Ok(Queue::new(self.inner.clone(), QueueName::new(name)?))
    }

    /// A channel with the default roles `local` and `remote` (SPEC C1).
    pub fn channel(&self, name: impl AsRef<str>) -> Result<Channel> {
        Channel::new(self.inner.clone(), name.as_ref(), "local", "remote")
    }

    /// A channel with explicit roles: this peer consumes as `local` and sends to `remote`.
    pub fn channel_with_roles(
        &self,
        name: impl AsRef<str>,
        local: impl AsRef<str>,
        remote: impl AsRef<str>,
    ) -> Result<Channel> {
        Channel::new(self.inner.clone(), name.as_ref(), local.as_ref(), remote.as_ref())
    }

    /// The request/reply service `name` (SPEC P2): serve it, or send it requests. Its requests
    /// go to the queue `service:<name>`.
    pub fn service(&self, name: impl AsRef<str>) -> Result<Service> {
        Service::new(self.inner.clone(), name.as_ref())
    }

    /// The dead letters of `queue` (SPEC P7): its default dead-letter queue `<queue>.dlq`. For
    /// a dead-letter queue named in `ReliableOptions::dead_letter_queue`, use
    /// [`Bus::dead_letter_queue`].
    pub fn dead_letters(&self, queue: impl AsRef<str>) -> Result<DeadLetterQueue> {
        let queue = QueueName::new(queue)?;
        self.dead_letter_queue(crate::queue::default_dead_letter_name(&queue)?.as_str())
    }

    /// A dead-letter queue by its own name (SPEC P7).
    pub fn dead_letter_queue(&self, name: impl AsRef<str>) -> Result<DeadLetterQueue> {
        Ok(DeadLetterQueue::new(self.inner.clone(), QueueName::new(name)?))
    }

    /// The queues that exist in the store (under its namespace), sorted by name, without
    /// changing or blocking anything (Redis: `SCAN` steps over every instance, never `KEYS`).
    /// Queues created or removed while the listing runs may or may not be in it. A store that
    /// cannot list its queues (see [`Inspect`](crate::store::Inspect)) gives `Error::Store`
    /// saying so.
    pub async fn queues(&self) -> Result<Vec<QueueName>> {
        self.inner.ensure_connected()?;
        let store = &self.inner.store;
        let Some(inspect) = store.inspect() else {
            return Err(Error::Store {
                backend: store.backend(),
                operation: "list_queues",
                message: "this store cannot list its queues".to_string(),
                retryable: false,
                source: None,
            });
        };
        // A listing may return a name more than once (across pages, or across instances).
        let mut names = BTreeSet::new();
        let mut cursor = None;
        loop {
            let page = inspect.list_queues(cursor.as_deref(), LIST_STEP).await?;
            names.extend(page.queues);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(names.into_iter().collect()),
            }
        }
    }

    /// A pub/sub topic (SPEC P1).
    pub fn pubsub(&self, topic: impl AsRef<str>) -> Result<PubSub> {
        Ok(PubSub::new(self.inner.clone(), TopicName::new(topic)?))
    }

    /// A handle on the persisted object `name` (SPEC P3) with the default options (a ttl of
    /// 60 s): `T` must serialize to a map or a struct of fields.
    pub fn persisted<T: Serialize + DeserializeOwned>(
        &self,
        name: impl AsRef<str>,
    ) -> Result<Persisted<T>> {
        self.persisted_with(name, PersistOptions::new())
    }

    /// [`Bus::persisted`] with options.
    pub fn persisted_with<T: Serialize + DeserializeOwned>(
        &self,
        name: impl AsRef<str>,
        options: PersistOptions,
    ) -> Result<Persisted<T>> {
        Persisted::new(self.inner.clone(), ObjectName::new(name)?, options)
    }
}
