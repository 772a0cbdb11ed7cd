//! What the conformance suite needs from a backend: fresh stores over shared data.

use async_trait::async_trait;
use busmq_core::StoreHandle;

/// A backend under test. Every call to [`Backend::store`] returns a new, unconnected store that
/// sees the same data as the others (like a new process connecting to the same Redis), so that
/// cases can run several buses against each other.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for reports (`memory`, `redis`, `redis-sharded-3`).
    fn name(&self) -> String;

    /// A new store over the backend's shared data.
    async fn store(&self) -> StoreHandle;

    /// Whether the store's expiry follows tokio's clock, so that cases may pause and advance it
    /// instead of sleeping in real time.
    fn paused_clock(&self) -> bool {
        false
    }
}
