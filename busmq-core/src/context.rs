//! What every handle of one bus shares: the store, the client id, the configuration (codec
//! and size limit, with the one place that encodes and checks a message), the connection
//! state and events, and the attached queues to detach on disconnect. Handles depend on this
//! module; the `Bus` façade (`bus.rs`) sits on top of both.

use crate::bus_state::{BusEvent, BusState, StateTracker};
use crate::error::{Error, Result};
use crate::events::EVENT_BUFFER;
use crate::store::{ClientId, ConsumerId, StoreEvent, StoreHandle};
use crate::util::lock;
use busmq_codec::Codec;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// The codec and the size limit of a bus's messages.
#[derive(Debug, Clone)]
pub(crate) struct BusConfig {
    pub(crate) codec: Codec,
    pub(crate) max_message_size: usize,
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
    /// Stops consuming and detaches.
    fn detach_all(self: Arc<Self>) -> BoxFuture<'static, Result<()>>;
}

#[derive(Debug, Default)]
struct Connection {
    connected: bool,
    tracker: StateTracker,
    relay: Option<JoinHandle<()>>,
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
            config,
            connection: Mutex::new(Connection::default()),
            state: watch::Sender::new(BusState::Offline),
            events,
            consumer_seq: AtomicU64::new(1),
            queues: Mutex::new(Vec::new()),
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

    pub(crate) fn emit_error(&self, error: Error) {
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
        lock(&self.connection).relay = Some(relay);
        match self.store.connect().await {
            Ok(state) => {
                let state = BusState::from(state);
                self.observe(state.clone());
                Ok(state)
            }
            Err(error) => {
                let mut conn = lock(&self.connection);
                conn.connected = false;
                if let Some(relay) = conn.relay.take() {
                    relay.abort();
                }
                Err(error)
            }
        }
    }

    /// Disconnects; see `Bus::disconnect`.
    pub(crate) async fn disconnect(&self) -> Result<()> {
        if !self.is_connected() {
            return Ok(());
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
            if let Some(relay) = conn.relay.take() {
                relay.abort();
            }
        }
        self.observe(BusState::Offline);
        result
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
