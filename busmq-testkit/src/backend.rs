//! What the conformance suite needs from a backend: fresh stores over shared data.

use async_trait::async_trait;
use busmq_core::StoreHandle;

/// The number of model sequences of a backend that does not choose (see
/// [`Backend::model_cases`]).
pub const DEFAULT_MODEL_CASES: u32 = 64;

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

    /// How many random operation sequences each property model runs. A model sequence costs a
    /// few hundred store calls (and, in the reliable model, a few seconds of real time on a
    /// backend that does not follow tokio's clock), so slower backends choose fewer.
    fn model_cases(&self) -> u32 {
        DEFAULT_MODEL_CASES
    }

    /// Why this backend cannot run here (e.g. no `redis-server`); cases then print one skip line
    /// and pass.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// A [`Backend`] from a name and a function making stores; the builder methods say what else
/// the suite should know about it.
pub struct FnBackend<F> {
    name: String,
    paused_clock: bool,
    model_cases: u32,
    unavailable: Option<String>,
    make: F,
}

impl<F> FnBackend<F>
where
    F: Fn() -> StoreHandle + Send + Sync + 'static,
{
    /// A backend called `name` whose stores come from `make`, running in real time.
    pub fn new(name: impl Into<String>, make: F) -> Self {
        FnBackend {
            name: name.into(),
            paused_clock: false,
            model_cases: DEFAULT_MODEL_CASES,
            unavailable: None,
            make,
        }
    }

    /// The stores follow tokio's clock: cases run with it paused (see [`Backend::paused_clock`]).
    pub fn paused_clock(mut self) -> Self {
        self.paused_clock = true;
        self
    }

    /// Each property model runs `cases` sequences (see [`Backend::model_cases`]).
    pub fn model_cases(mut self, cases: u32) -> Self {
        self.model_cases = cases;
        self
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

    fn model_cases(&self) -> u32 {
        self.model_cases
    }

    fn unavailable(&self) -> Option<String> {
        self.unavailable.clone()
    }
}
