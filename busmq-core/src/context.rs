//! What every handle of one bus shares: the store, the client id, the configuration (codec
//! and size limit, with the one place that encodes and checks a message), the connection
//! state and events (each transition and error also logged), the queue label guard of its
//! metrics, and the attached queues to detach on disconnect (and to sample for depth).
//! Handles depend on this module; the `Bus` façade (`bus.rs`) sits on top of both.

use crate::bus_state::{BusEvent, BusState, StateTracker};
use crate::error::{Error, Result};
use crate::events::EVENT_BUFFER;
use crate::name::QueueName;
use crate::observability::sampler::{self, DepthSource};
use crate::observability::{QueueLabels, background_error, bus_error, describe};
use crate::queue::consumer::turn::Turns;
use crate::store::{ClientId, ConsumerId, StoreEvent, StoreHandle};
use crate::util::lock;
use busmq_codec::Codec;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// The codec and the size limit of a bus's messages, and what its metrics do.
#[derive(Debug, Clone)]
pub(crate) struct BusConfig {
    pub(crate) codec: Codec,
    pub(crate) max_message_size: usize,
    /// The most distinct `queue` label values (`None`: no queue label).
    pub(crate) queue_labels: Option<usize>,
    /// How often the depth of attached queues is sampled (`None`: never).
    pub(crate) depth_every: Option<Duration>,
}

impl BusConfig {
    /// Encodes `message` for `target` (a queue, channel or topic, named as in errors) and checks
    /// its size: the one place a message becomes bytes (SPEC E1: nothing is written when this
    /// fails).
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        target: impl Fn() -> String,
        message: &T,
    ) -> Result<Bytes> {
        self.encode_after(target, Vec::new(), message)
    }

    /// [`BusConfig::encode`] appending to `prefix` (a frame header, which does not count
    /// towards the size limit).
    pub(crate) fn encode_after<T: Serialize + ?Sized>(
        &self,
        target: impl Fn() -> String,
        mut prefix: Vec<u8>,
        message: &T,
    ) -> Result<Bytes> {
        let header = prefix.len();
        self.codec
            .encode_into(message, &mut prefix)
            .map_err(|source| Error::Encode { target: target(), source })?;
        self.check_size(target, prefix.len() - header)?;
        Ok(Bytes::from(prefix))
    }

    /// Checks the headers of a message whose body of `body` bytes passed [`BusConfig::encode`]
    /// (or [`BusConfig::check_size`]): valid keys, and body and headers within the size limit
    /// together (see [`Headers`](crate::Headers)).
    pub(crate) fn check_headers(
        &self,
        target: impl Fn() -> String,
        body: usize,
        headers: &crate::Headers,
    ) -> Result<()> {
        headers.validate()?;
        self.check_size(target, body + headers.size())
    }

    /// Checks the size of an already encoded message.
    pub(crate) fn check_size(&self, target: impl Fn() -> String, size: usize) -> Result<()> {
        let limit = self.max_message_size;
        if size > limit {
            return Err(Error::MessageTooLarge { target: target(), size, limit });
        }
        Ok(())
    }
}

/// A queue attached through this bus, which `disconnect` detaches (implemented by the queue
/// handle, so that this module does not depend on it).
pub(crate) trait AttachedQueue: Send + Sync {
    /// The queue's name.
    fn queue_name(&self) -> &QueueName;
    /// Stops consuming and detaches.
    fn detach_all(self: Arc<Self>) -> BoxFuture<'static, Result<()>>;
}

#[derive(Debug, Default)]
struct Connection {
    connected: bool,
    /// A `disconnect` is under way: the offline it causes is no outage.
    disconnecting: bool,
    tracker: StateTracker,
    relay: Option<JoinHandle<()>>,
    sampler: Option<JoinHandle<()>>,
}

impl Connection {
    /// Ends the tasks that live as long as a connection.
    fn stop_tasks(&mut self) {
        for task in [self.relay.take(), self.sampler.take()].into_iter().flatten() {
            task.abort();
        }
    }
}

/// The state shared by a bus and every handle made from it.
pub(crate) struct BusInner {
    pub(crate) store: StoreHandle,
    pub(crate) client: ClientId,
    pub(crate) config: BusConfig,
    connection: Mutex<Connection>,
    /// The state users read and wait on; changed only in [`BusInner::observe`], under the
    /// connection lock, so that it always agrees with the events sent.
    state: watch::Sender<BusState>,
    events: broadcast::Sender<BusEvent>,
    consumer_seq: AtomicU64,
    queues: Mutex<Vec<Weak<dyn AttachedQueue>>>,
    pub(crate) labels: QueueLabels,
    /// The turns in which this bus's reliable consumers of a queue take.
    pub(crate) turns: Turns,
}

impl fmt::Debug for BusInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusInner")
            .field("store", &self.store)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl BusInner {
    pub(crate) fn new(store: StoreHandle, client: ClientId, config: BusConfig) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        BusInner {
            store,
            client,
            connection: Mutex::new(Connection::default()),
            state: watch::Sender::new(BusState::Offline),
            events,
            consumer_seq: AtomicU64::new(1),
            queues: Mutex::new(Vec::new()),
            labels: QueueLabels::new(config.queue_labels),
            turns: Turns::default(),
            config,
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        lock(&self.connection).connected
    }

    pub(crate) fn ensure_connected(&self) -> Result<()> {
        if self.is_connected() { Ok(()) } else { Err(Error::NotConnected) }
    }

    pub(crate) fn next_consumer_id(&self) -> ConsumerId {
        ConsumerId::new(&self.client, self.consumer_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Reports a background failure: logged, counted, and sent as a `BusEvent::Error`.
    pub(crate) fn emit_error(&self, error: Error) {
        background_error(None, &error);
        bus_error(self.store.backend(), &error);
        let _ = self.events.send(BusEvent::Error(error));
    }

    pub(crate) fn state(&self) -> &watch::Sender<BusState> {
        &self.state
    }

    pub(crate) fn events(&self) -> &broadcast::Sender<BusEvent> {
        &self.events
    }

    fn observe(&self, state: BusState) {
        let mut conn = lock(&self.connection);
        if !conn.connected && state != BusState::Offline {
            return;
        }
        if let Some(changed) = conn.tracker.observe(state) {
            log_state(&changed, conn.connected && !conn.disconnecting);
            self.state.send_replace(changed.clone());
            let _ = self.events.send(changed.into());
        }
    }

    /// Remembers an attached queue so that `disconnect` can detach it.
    pub(crate) fn register_queue(&self, queue: Weak<dyn AttachedQueue>) {
        let mut queues = lock(&self.queues);
        queues.retain(|q| q.strong_count() > 0);
        queues.push(queue);
    }

    /// Connects (SPEC B1-B3); see `Bus::connect`.
    pub(crate) async fn connect(self: &Arc<Self>) -> Result<BusState> {
        let span = tracing::debug_span!("connect", backend = self.store.backend());
        self.connect_now().instrument(span).await
    }

    async fn connect_now(self: &Arc<Self>) -> Result<BusState> {
        describe();
        let events = {
            let mut conn = lock(&self.connection);
            if conn.connected {
                return Err(Error::AlreadyConnected);
            }
            conn.connected = true;
            conn.tracker.reset_for_connect();
            self.store.events()
        };
        let relay = tokio::spawn(relay_store_events(Arc::downgrade(self), events));
        let sampler = self.config.depth_every.map(|every| {
            let source: Weak<dyn DepthSource> = Arc::downgrade(self) as Weak<dyn DepthSource>;
            tokio::spawn(sampler::run(source, every))
        });
        {
            let mut conn = lock(&self.connection);
            conn.relay = Some(relay);
            conn.sampler = sampler;
        }
        match self.store.connect().await {
            Ok(state) => {
                let state = BusState::from(state);
                self.observe(state.clone());
                Ok(state)
            }
            Err(error) => {
                tracing::debug!(error = %error, "connect failed");
                let mut conn = lock(&self.connection);
                conn.connected = false;
                conn.stop_tasks();
                Err(error)
            }
        }
    }

    /// Disconnects; see `Bus::disconnect`.
    pub(crate) async fn disconnect(&self) -> Result<()> {
        let span = tracing::debug_span!("disconnect", backend = self.store.backend());
        self.disconnect_now().instrument(span).await
    }

    async fn disconnect_now(&self) -> Result<()> {
        {
            let mut conn = lock(&self.connection);
            if !conn.connected {
                return Ok(());
            }
            conn.disconnecting = true;
        }
        let queues: Vec<Arc<dyn AttachedQueue>> = {
            let mut list = lock(&self.queues);
            let alive = list.iter().filter_map(Weak::upgrade).collect();
            list.clear();
            alive
        };
        let detaches = queues.into_iter().map(AttachedQueue::detach_all);
        for result in futures::future::join_all(detaches).await {
            if let Err(error) = result {
                self.emit_error(error);
            }
        }
        let result = self.store.disconnect().await;
        {
            let mut conn = lock(&self.connection);
            conn.connected = false;
            conn.stop_tasks();
        }
        self.observe(BusState::Offline);
        lock(&self.connection).disconnecting = false;
        result
    }
}

impl DepthSource for BusInner {
    fn attached(&self) -> Vec<QueueName> {
        let mut names: Vec<QueueName> = lock(&self.queues)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|queue| queue.queue_name().clone())
            .collect();
        names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup_by(|a, b| a.as_str() == b.as_str());
        names
    }

    fn store(&self) -> &StoreHandle {
        &self.store
    }

    fn labels(&self) -> &QueueLabels {
        &self.labels
    }
}

/// Logs a reported state: online is INFO, a partial or total outage WARN, and the offline
/// that a `disconnect` causes (`outage` false) INFO again, since nothing is wrong.
fn log_state(state: &BusState, outage: bool) {
    match state {
        BusState::Online => tracing::info!("bus online"),
        BusState::Degraded { down } => {
            tracing::warn!(?down, "bus degraded: some instances are down")
        }
        BusState::Offline if outage => tracing::warn!("bus offline: no instance answers"),
        BusState::Offline => tracing::info!("bus offline (disconnected)"),
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
