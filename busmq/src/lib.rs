//! busmq: a message bus for Rust services, with ordered queues (at most once, at least once
//! with acknowledgements, replay from a position), bi-directional peer-to-peer channels and
//! pub/sub, over Redis or in process memory with identical behaviour.
//!
//! This crate is what applications depend on: it re-exports the API of `busmq-core` and, behind
//! features, the stores: `memory` (on by default) as [`memory`], `redis` as `busmq::redis`.
//!
//! ```
//! # #[cfg(feature = "memory")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use busmq::Bus;
//! use busmq::memory::Memory;
//! use futures::StreamExt;
//!
//! let bus = Bus::new(Memory::new().store());
//! bus.connect().await?;
//! let queue = bus.queue("jobs")?;
//! queue.attach().await?;
//! queue.push(&"resize image").await?;
//! let mut jobs = queue.consume::<String>().await?;
//! let job = jobs.next().await.expect("a job")?;
//! assert_eq!(job.body(), "resize image");
//! # Ok::<_, busmq::Error>(())
//! # }).unwrap();
//! ```

pub use busmq_core::*;

/// The embedded in-memory store (`busmq-memory`): every rule of the Store contract, in process
/// memory, for tests, examples and single-process programs.
#[cfg(feature = "memory")]
pub mod memory {
    pub use busmq_memory::*;
}

/// The Redis store (`busmq-redis`): one or several plain instances, Sentinel or Cluster.
#[cfg(feature = "redis")]
pub mod redis {
    pub use busmq_redis::*;
}

/// The README's code compiles (it is a doctest of this item).
#[doc = include_str!("../../README.md")]
#[cfg(all(doctest, feature = "memory", feature = "redis"))]
pub struct ReadmeDoctests;
