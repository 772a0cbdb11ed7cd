//! busmq-memory: a busmq [`Store`](busmq_core::Store) that keeps everything in process memory.
//!
//! It is a real backend, not a mock: it implements every rule of the `Store` contract exactly as
//! the Redis backend does (ids that never go backwards, leases and expiry, generations and
//! tombstones, reliable deliveries with visibility deadlines, replay reads, consumer leases,
//! watch notices and pub/sub), so that code tested against it behaves the same on Redis. Use it
//! for tests, examples and single-process programs. Data lives as long as the process (more
//! exactly, as long as a [`Memory`] handle or a store over it exists); nothing is persisted.
//!
//! # Sharing data between buses
//!
//! A [`Memory`] is the shared data, like one Redis server. Every [`Memory::store`] call returns
//! a new [`MemoryStore`], like a new process connecting to that server: each store has its own
//! connection state, events and streams, and all of them see the same queues and topics.
//!
//! ```
//! use busmq_core::{QueueName, Store};
//! use busmq_core::store::{QueueSpec, Session};
//! use busmq_memory::Memory;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let memory = Memory::new();
//! let (a, b) = (memory.store(), memory.store());
//! a.connect().await.unwrap();
//! b.connect().await.unwrap();
//! let queue = QueueName::new("jobs").unwrap();
//! assert!(!a.attach(&queue, &QueueSpec::default()).await.unwrap().existed);
//! assert!(b.attach(&queue, &QueueSpec::default()).await.unwrap().existed);
//! # });
//! ```
//!
//! # Guarantees and limits
//!
//! * Each `Store` method is one locked section on one queue (a lock per queue name), so it is
//!   atomic and concurrent operations on different queues do not wait for each other.
//! * Every expiry, lease, visibility deadline and retention age follows tokio's clock, so tests
//!   may use `tokio::time::pause()` and `advance()`. Expiry is checked on every access, and
//!   names that hold nothing any more are swept after every thousand or so operations (after
//!   twice as many operations as there are queue names, when there are many), so memory does
//!   not grow with expired queues. There is no background task.
//! * Ids come from one clock per [`Memory`]: `max(last + 1, now in microseconds)`, so they never
//!   go backwards for any queue, even after it expired or was closed and created again.
//! * Pub/sub delivers to every live subscription of every store of the same `Memory`; each
//!   subscription has an unbounded buffer, so a slow subscriber never blocks publishers and
//!   loses nothing (it holds the messages it has not read yet).
//! * Persisted objects (`Store::object`) share one lock per [`Memory`]: each operation is one
//!   short locked section. They expire on tokio's clock like queues, and sweeps forget them.
//! * The store is never offline on its own: it is `Online` between `connect` and `disconnect`.

mod clock;
mod consumers;
mod dedupe;
mod delayed;
mod due_timer;
mod gates;
mod link;
mod memory;
mod objects;
mod pending;
mod pubsub;
mod queue_state;
mod ready;
mod slot;
mod store;
mod stored;
mod watch;

pub use memory::Memory;
pub use store::MemoryStore;
