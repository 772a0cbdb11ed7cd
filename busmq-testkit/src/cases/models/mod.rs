//! Property models: random operation sequences (from proptest, with a fixed seed) run against
//! any backend and checked against a simple model, as many as
//! [`Backend::model_cases`](crate::Backend::model_cases) asks for. Each model is one case of the
//! suite, named `model_...` (which is how [`run_case`](crate::run_case) knows to give it a
//! deadline per sequence).

mod delayed;
mod queue;
mod reliable;
mod routing;
mod runner;
mod store;
mod timed_routing;

pub(crate) use runner::SEQUENCE_DEADLINE;

// One flat module, so that the registry names each model as `models::<case>`.
pub use delayed::*;
pub use queue::*;
pub use reliable::*;
pub use routing::*;
pub use store::*;
pub use timed_routing::*;
