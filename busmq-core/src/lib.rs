//! busmq: a message bus with ordered queues, peer-to-peer channels and pub/sub over a pluggable
//! [`Store`] (Redis in `busmq-redis`, process memory in `busmq-memory`).
//!
//! | node busmq                           | busmq (Rust)                                          |
//! |--------------------------------------|-------------------------------------------------------|
//! | `Bus.create()` + `bus.connect(urls)` | [`Bus::new(store)`](Bus::new) + [`Bus::connect`]      |
//! | `online` / `offline` / `error`       | [`Bus::events`] ([`BusEvent`]) and [`Bus::state`]     |
//! | `queue.attach()` + `attached` event  | `queue.attach().await` returns whether it existed     |
//! | `queue.push(msg)`                    | [`Queue::push`] returns the message id                |
//! | `queue.consume()` + `message` event  | [`Queue::consume`] returns a `Stream` of [`Delivery`] |
//! | `channel.connect()` + events         | [`Channel::connect`] returns a [`ChannelEvents`] stream |
//! | `bus.service()`, `serve`, `request`  | [`Bus::service`]: [`Service::serve`], [`Service::request`] |
//! | string errors in `error` events      | the typed [`Error`], `Result` everywhere              |
//! | `bus.persistify(name, obj, attrs)`   | [`Bus::persisted`] gives a typed [`Persisted`] handle |

mod bus;
mod bus_state;
mod channel;
mod context;
mod dead_letter_queue;
pub mod error;
mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod id_map;
pub mod name;
pub mod observability;
mod persisted;
mod pubsub;
mod queue;
mod service;
pub mod store;
mod util;

pub use bus::{Bus, BusBuilder, DEFAULT_MAX_MESSAGE_SIZE};
pub use bus_state::{BusEvent, BusState};
pub use busmq_codec::{Codec, CodecError};
pub use channel::{Channel, ChannelEvent, ChannelEvents, ChannelOptions};
pub use dead_letter_queue::{DeadLetterQueue, DeadMessage, Redriven};
pub use error::{Error, NameKind, Result, TlsProblem};
pub use events::EventStream;
pub use headers::Headers;
pub use name::{ObjectName, QueueName, TopicName};
pub use persisted::{
    Change, DEFAULT_PERSIST_TTL, KeepAlive, Loaded, PersistOptions, Persisted, Watch,
};
pub use pubsub::{PubSub, Subscription};
pub use queue::{
    AttachOptions, ConsumeMode, ConsumeOptions, Consumer, DEFAULT_DEDUPE_WINDOW, DEFAULT_PREFETCH,
    Delivery, Job, MAX_READ, MAX_RETRY_DELAY, Push, PushAll, PushOptions, Queue, QueueEvent,
    ReliableOptions, RetryPolicy, When, Worker, WorkerHandle,
};
pub use service::{
    DEFAULT_CONCURRENCY, DEFAULT_REQUEST_TIMEOUT, HANDLER_PANICKED, Replies, Reply, Request,
    RequestOptions, ServeOptions, Server, ServerHandle, Service,
};
pub use store::{
    DeadLetter, MAX_DELAY, MAX_ORDERING_KEY, MAX_PRIORITY, Position, Scheduled, Store, StoreHandle,
};

/// Helpers for store implementations: ids, clocks, backoff and the lock policy shared with the
/// core.
pub mod support {
    pub use crate::util::{backoff, lock, now_micros, random_u64};
}
