//! The session side of a store: connecting, disconnecting, and what it reports about its own
//! reachability. Kept apart from the queue operations because it is a different concern: the
//! bus drives it, queues never do.

use crate::error::{Error, Result};
use async_trait::async_trait;
use tokio::sync::{broadcast, watch};

/// The reachability of the store as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// Every configured instance answers.
    Online,
    /// Some instances answer, the listed ones do not.
    Degraded {
        /// The instances that do not answer, as the backend names them.
        down: Vec<String>,
    },
    /// No instance answers (or the store is not connected).
    Offline,
}

/// Broadcast by the store; the bus turns these into its own events.
#[derive(Clone, Debug)]
pub enum StoreEvent {
    /// The state changed. Emitted once per real transition (the `watch` of
    /// [`Session::state`] holds only the latest, so quick transitions may coalesce there).
    State(StoreState),
    /// A background failure worth reporting (the store keeps going).
    Error(Error),
}

/// Connecting and disconnecting a store, and its state.
#[async_trait]
pub trait Session: Send + Sync {
    /// A short name for errors and logs (`"memory"`, `"redis"`).
    fn backend(&self) -> &'static str;

    /// Starts connecting. Returns once the first state is known (which may be `Offline`: the
    /// store keeps reconnecting in the background, with backoff, and reports transitions as
    /// events). Fails without staying connected when the store refuses this client for good
    /// (`AccessDenied`). Calling it while connected is a no-op.
    async fn connect(&self) -> Result<StoreState>;

    /// Stops background work and closes connections. Idempotent. Afterwards the state is
    /// `Offline` and every watch and subscription stream ends.
    async fn disconnect(&self) -> Result<()>;

    /// The current state, and every later one (coalesced: a slow reader sees the latest).
    fn state(&self) -> watch::Receiver<StoreState>;

    /// State transitions and background errors, from now on. A receiver that falls behind gets
    /// `Lagged` from the broadcast channel; it then re-reads [`Session::state`].
    fn events(&self) -> broadcast::Receiver<StoreEvent>;
}
