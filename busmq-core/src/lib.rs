//! busmq: a message bus with ordered queues, peer-to-peer channels and pub/sub over a
//! pluggable [`Store`] (Redis in `busmq-redis`, process memory in `busmq-memory`).

pub mod error;
pub mod name;
pub mod store;
mod util;

pub use error::{Error, NameKind, Result};
pub use name::{QueueName, TopicName};
pub use store::{Store, StoreHandle};

/// Helpers for store implementations: ids, clocks and backoff shared with the core.
pub mod support {
    pub use crate::util::{backoff, now_micros, random_u64};
}
