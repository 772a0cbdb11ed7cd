//! busmq-testkit: the conformance suite that every busmq backend must pass, and the harness that
//! starts real `redis-server` processes for the Redis backend's tests.
//!
//! A backend's `tests/conformance.rs` calls [`conformance!`] with an expression giving a
//! [`Backend`], which turns every case of [`cases`] into its own `#[tokio::test]`; this is
//! busmq-memory's (compiled there, not here: this crate does not depend on the backends):
//!
//! ```text
//! thread_local! {
//!     static MEMORY: busmq_memory::Memory = busmq_memory::Memory::new();
//! }
//!
//! busmq_testkit::conformance!({
//!     busmq_testkit::FnBackend::new("memory", || {
//!         std::sync::Arc::new(MEMORY.with(busmq_memory::Memory::store))
//!     })
//!     .paused_clock()
//!     .model_cases(256)
//! });
//! ```
//!
//! A backend whose expiry follows tokio's clock ([`Backend::paused_clock`]) must not share its
//! data between cases that run at the same time: each case pauses and advances a clock of its
//! own, and shared data would be expired by whichever clock ran furthest ahead. Stores of one
//! case are all made on the case's thread, so data per thread is enough.
//!
//! The cases check behaviour through the public `Bus` API, the Store contract on the store
//! itself ([`cases::store`]), and property models ([`cases::models`]) that run as many random
//! sequences as [`Backend::model_cases`] asks for.

pub mod backend;
pub mod cases;
pub mod cluster;
#[cfg(feature = "docker")]
pub mod docker;
pub mod faults;
pub mod proxy;
pub mod redis;
mod registry;
pub mod sentinel;
mod shared_cluster;
mod shared_servers;
pub mod support;
pub mod tls;

pub use backend::{Backend, FnBackend};
#[cfg(feature = "docker")]
pub use docker::DockerServers;
#[doc(hidden)]
pub use futures::future::BoxFuture;
pub use registry::{Case, CaseFn, all_cases, run_case};
pub use shared_cluster::SharedCluster;
pub use shared_servers::SharedServers;
