//! The Store contract, checked on the store itself: plain `pub async fn(&dyn Backend)` cases
//! that talk to a fresh [`backend.store()`](crate::Backend::store) through the `Store`,
//! `Session`, `Topics`, `BlockingTake` and `Inspect` traits, so that every backend is held to the same
//! rules as the trait documentation states them, below the `Bus` (whose cases are the other
//! modules of [`cases`](crate::cases)). Each case is named `store_...` after the rule it checks
//! and isolates itself with unique queue and topic names.
//!
//! The cases never assume the backend's clock: they wait with `tokio::time::sleep` (which a
//! paused clock skips through) and keep real-time waits to a few seconds, with margins that
//! hold on a loaded machine.

mod dedupe;
mod delayed;
pub(crate) mod fixtures;
mod headers;
mod lifecycle;
mod listing;
mod messages;
mod objects;
mod reliable;
mod replay;
mod restore;
mod routing;
mod session;
mod stats;
mod streams;
mod wait;

// One flat module, so that the registry names each case as `store::<case>`.
pub use dedupe::*;
pub use delayed::*;
pub use headers::*;
pub use lifecycle::*;
pub use listing::*;
pub use messages::*;
pub use objects::*;
pub use reliable::*;
pub use replay::*;
pub use restore::*;
pub use routing::*;
pub use session::*;
pub use stats::*;
pub use streams::*;
pub use wait::*;
