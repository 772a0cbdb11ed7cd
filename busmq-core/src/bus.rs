//! The bus: one store, its connection state, and the factory of queues, channels and topics.

use crate::bus_state::{BusState, StateTracker};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::events::{EVENT_BUFFER, EventStream};
use crate::name::{QueueName, TopicName};
use crate::pubsub::PubSub;
use crate::queue::{Queue, QueueInner};
use crate::store::{ClientId, ConsumerId, Store, StoreEvent, StoreHandle};
use busmq_codec::Codec;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// The default limit on one encoded message (SPEC E1).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 * 1024 * 1024;

/// What the bus reports on its event stream.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BusEvent {
    /// Every store instance answers.
    Online,
    /// Some instances are down (their names are listed); the others work.
    Degraded { down: Vec<String> },
    /// No instance answers, or the bus was disconnected.
    Offline,
    /// A background failure (the bus keeps going).
    Error(Error),
    /// This event stream fell behind and missed `missed` events; [`Bus::state`] tells the
    /// current state.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

impl From<BusState> for BusEvent {
    fn from(state: BusState) -> Self {
        match state {
            BusState::Online => BusEvent::Online,
            BusState::Degraded { down } => BusEvent::Degraded { down },
            BusState::Offline => BusEvent::Offline,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BusConfig {
    pub(crate) codec: Codec,
    pub(crate) max_message_size: usize,
}

#[derive(Debug, Default)]
struct Connection {
    connected: bool,
    tracker: StateTracker,
    relay: Option<JoinHandle<()>>,
}

/// The state users read and wait on; changed only through [`BusInner::observe`], under the
/// connection lock, so that it always agrees with the events sent.
type StateWatch = watch::Sender<BusState>;

pub(crate) struct BusInner {
    pub(crate) store: StoreHandle,
    pub(crate) client: ClientId,
    pub(crate) config: BusConfig,
    connection: Mutex<Connection>,
    state: StateWatch,
    events: broadcast::Sender<BusEvent>,
    consumer_seq: AtomicU64,
    queues: Mutex<Vec<Weak<QueueInner>>>,
}

impl BusInner {
    pub(crate) fn is_connected(&self) -> bool {
        crate::util::lock(&self.connection).connected
    }

    pub(crate) fn ensure_connected(&self) -> Result<()> {
        if self.is_connected() { Ok(()) } else { Err(Error::NotConnected) }
    }

    pub(crate) fn next_consumer_id(&self) -> ConsumerId {
        ConsumerId::new(&self.client, self.consumer_seq.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn emit_error(&self, error: Error) {
        let _ = self.events.send(BusEvent::Error(error));
    }

    fn observe(&self, state: BusState) {
        let mut conn = crate::util::lock(&self.connection);
        if !conn.connected && state != BusState::Offline {
            return;
        }
        if let Some(changed) = conn.tracker.observe(state) {
            self.state.send_replace(changed.clone());
            let _ = self.events.send(changed.into());
        }
    }

    /// Remembers an attached queue so that `disconnect` can detach it.
    pub(crate) fn register_queue(&self, queue: &Arc<QueueInner>) {
        let mut queues = crate::util::lock(&self.queues);
        queues.retain(|q| q.strong_count() > 0);
        queues.push(Arc::downgrade(queue));
    }
}

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

    /// Builds the bus. It is not connected yet.
    pub fn build(self) -> Result<Bus> {
        if self.max_message_size == 0 {
            return Err(Error::invalid_option("max_message_size", "must be at least 1 byte"));
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Bus {
            inner: Arc::new(BusInner {
                store: self.store,
                client: self.client.unwrap_or_else(ClientId::random),
                config: BusConfig { codec: self.codec, max_message_size: self.max_message_size },
                connection: Mutex::new(Connection::default()),
                state: watch::Sender::new(BusState::Offline),
                events,
                consumer_seq: AtomicU64::new(1),
                queues: Mutex::new(Vec::new()),
            }),
        })
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
        }
    }

    /// Connects the bus (SPEC B1-B3). Returns the first state once known: `Offline` is not an
    /// error, the store keeps reconnecting in the background and the bus reports `Online` when
    /// it can. A second `connect` without `disconnect` is [`Error::AlreadyConnected`].
    pub async fn connect(&self) -> Result<BusState> {
        let inner = &self.inner;
        let events = {
            let mut conn = crate::util::lock(&inner.connection);
            if conn.connected {
                return Err(Error::AlreadyConnected);
            }
            conn.connected = true;
            conn.tracker.reset_for_connect();
            inner.store.events()
        };
        let relay = tokio::spawn(relay_store_events(Arc::downgrade(inner), events));
        crate::util::lock(&inner.connection).relay = Some(relay);
        match inner.store.connect().await {
            Ok(state) => {
                let state = BusState::from(state);
                inner.observe(state.clone());
                Ok(state)
            }
            Err(error) => {
                let mut conn = crate::util::lock(&inner.connection);
                conn.connected = false;
                if let Some(relay) = conn.relay.take() {
                    relay.abort();
                }
                Err(error)
            }
        }
    }

    /// Disconnects: stops consumers (returning their undelivered messages), detaches every
    /// attached queue, closes the store's connections and reports `Offline` (SPEC B3).
    /// Idempotent. The bus can be connected again afterwards.
    pub async fn disconnect(&self) -> Result<()> {
        let inner = &self.inner;
        if !inner.is_connected() {
            return Ok(());
        }
        let queues: Vec<Arc<QueueInner>> = {
            let mut list = crate::util::lock(&inner.queues);
            let alive = list.iter().filter_map(Weak::upgrade).collect();
            list.clear();
            alive
        };
        let detaches =
            queues.into_iter().map(|queue| async move { Queue::from_inner(queue).detach().await });
        for result in futures::future::join_all(detaches).await {
            if let Err(error) = result {
                inner.emit_error(error);
            }
        }
        let result = inner.store.disconnect().await;
        {
            let mut conn = crate::util::lock(&inner.connection);
            conn.connected = false;
            if let Some(relay) = conn.relay.take() {
                relay.abort();
            }
        }
        inner.observe(BusState::Offline);
        result
    }

    /// Whether the bus is connected and at least part of the store answers.
    pub fn is_online(&self) -> bool {
        self.inner.is_connected() && self.state() != BusState::Offline
    }

    /// The current state.
    pub fn state(&self) -> BusState {
        self.inner.state.borrow().clone()
    }

    /// Waits until the bus is online (or degraded), at most `timeout`.
    pub async fn wait_online(&self, timeout: Duration) -> Result<()> {
        let mut state = self.inner.state.subscribe();
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
        EventStream::new(self.inner.events.subscribe(), |missed| BusEvent::Lagged { missed })
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

    /// A pub/sub topic (SPEC P1).
    pub fn pubsub(&self, topic: impl AsRef<str>) -> Result<PubSub> {
        Ok(PubSub::new(self.inner.clone(), TopicName::new(topic)?))
    }
}

async fn relay_store_events(bus: Weak<BusInner>, mut events: broadcast::Receiver<StoreEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Transitions were missed: catch up with the store's current state.
                let Some(bus) = bus.upgrade() else { return };
                let current = bus.store.state().borrow().clone();
                bus.observe(current.into());
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(bus) = bus.upgrade() else { return };
        match event {
            StoreEvent::State(state) => bus.observe(state.into()),
            StoreEvent::Error(error) => bus.emit_error(error),
        }
    }
}
