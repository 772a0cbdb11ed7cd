//! The connection state of one store: connected or not, its state events, and the epoch that
//! ends its watch streams on disconnect.

use busmq_core::store::{StoreEvent, StoreState};
use busmq_core::support::lock;
use busmq_core::{Error, Result};
use std::sync::Mutex;
use tokio::sync::{broadcast, watch};

/// Room for state events not yet read by a slow receiver (it then sees `Lagged`).
const EVENT_BUFFER: usize = 64;

#[derive(Debug)]
pub(crate) struct Link {
    /// The session while connected. Connect, disconnect and everything that must not race
    /// with them (registering streams) happen under this lock.
    session: Mutex<Option<u64>>,
    events: broadcast::Sender<StoreEvent>,
    state: watch::Sender<StoreState>,
    /// Moves on every disconnect; streams end when it moves.
    epoch: watch::Sender<u64>,
}

impl Link {
    pub(crate) fn new() -> Self {
        Link {
            session: Mutex::new(None),
            events: broadcast::Sender::new(EVENT_BUFFER),
            state: watch::Sender::new(StoreState::Offline),
            epoch: watch::Sender::new(0),
        }
    }

    /// Connects with a new session from `new_session`, unless already connected.
    pub(crate) fn connect(&self, new_session: impl FnOnce() -> u64) -> StoreState {
        let mut session = lock(&self.session);
        if session.is_none() {
            let started = new_session();
            tracing::debug!(session = started, "memory store connected");
            *session = Some(started);
            self.state.send_replace(StoreState::Online);
            // Nobody listening is fine: the state is also readable.
            let _ = self.events.send(StoreEvent::State(StoreState::Online));
        }
        StoreState::Online
    }

    /// Disconnects and runs `end` with the session that ended, under the lock.
    pub(crate) fn disconnect(&self, end: impl FnOnce(u64)) {
        let mut session = lock(&self.session);
        if let Some(ended) = session.take() {
            tracing::debug!(session = ended, "memory store disconnected");
            self.epoch.send_modify(|e| *e = e.wrapping_add(1));
            end(ended);
            self.state.send_replace(StoreState::Offline);
            let _ = self.events.send(StoreEvent::State(StoreState::Offline));
        }
    }

    pub(crate) fn state(&self) -> watch::Receiver<StoreState> {
        self.state.subscribe()
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// `NotConnected` unless connected.
    pub(crate) fn ensure(&self) -> Result<()> {
        self.within_session(|_| ())
    }

    /// Runs `f` with the current session while holding the lock, so that a concurrent
    /// disconnect happens entirely before or entirely after it.
    pub(crate) fn within_session<R>(&self, f: impl FnOnce(u64) -> R) -> Result<R> {
        let session = lock(&self.session);
        session.map(f).ok_or(Error::NotConnected)
    }

    /// A receiver of the epoch and its value, taken while connected: the epoch moves away
    /// from that value when this session ends.
    pub(crate) fn epoch(&self) -> Result<(watch::Receiver<u64>, u64)> {
        self.within_session(|_| {
            let rx = self.epoch.subscribe();
            let started = *rx.borrow();
            (rx, started)
        })
    }
}
