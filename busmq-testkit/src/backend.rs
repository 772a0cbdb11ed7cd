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

    /// Why this backend cannot run here (e.g. no `redis-server`); cases then print one skip line
    /// and pass.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// A [`Backend`] from a name, whether it follows tokio's clock, and a function making stores.
pub struct FnBackend<F> {
    name: String,
    paused_clock: bool,
    unavailable: Option<String>,
    make: F,
}

impl<F> FnBackend<F>
where
    F: Fn() -> StoreHandle + Send + Sync + 'static,
{
    /// A backend called `name` whose stores come from `make`.
    pub fn new(name: impl Into<String>, paused_clock: bool, make: F) -> Self {
        FnBackend { name: name.into(), paused_clock, unavailable: None, make }
    }

    /// Marks the backend as unavailable here (its cases print a skip line).
    pub fn unavailable_because(mut self, reason: Option<String>) -> Self {
        self.unavailable = reason;
        self
    }
}

impl<F> std::fmt::Debug for FnBackend<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnBackend").field("name", &self.name).finish_non_exhaustive()
    }
}

#[async_trait]
impl<F> Backend for FnBackend<F>
where
    F: Fn() -> StoreHandle + Send + Sync + 'static,
{
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn store(&self) -> StoreHandle {
        (self.make)()
    }

    fn paused_clock(&self) -> bool {
        self.paused_clock
    }

    fn unavailable(&self) -> Option<String> {
        self.unavailable.clone()
    }
}
