//! Queues as the store sees them: their spec, attachments and renewals, consumer
//! registrations, metadata, statistics and notices.

use super::ids::ConsumerId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a queue's messages are kept when they are not removed by consumers (replay queues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep at most this many ready messages: a push beyond it drops the oldest.
    pub max_len: Option<u64>,
    /// Drop ready messages pushed longer ago than this. Backends may trim at push time and on
    /// reads; a message older than `max_age` is never returned by [`Store::read`](super::Store::read) or
    /// [`Store::take`](super::Store::take). (Backends may keep it a little longer in storage.)
    pub max_age: Option<Duration>,
}

/// The properties stored with a queue by its creator and adopted by later attachers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    /// How long the queue lives after its last attachment ends. Never zero.
    pub ttl: Duration,
    /// The most ready messages the queue holds; pushes beyond it fail with `QueueFull`.
    pub maxsize: Option<u64>,
    /// Retention for non-removed messages.
    pub retention: Retention,
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec { ttl: Duration::from_secs(30), maxsize: None, retention: Retention::default() }
    }
}

/// What [`Store::attach`](super::Store::attach) found or created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Whether the queue existed before this call.
    pub existed: bool,
    /// The stored spec (the creator's), which the attacher adopts.
    pub spec: QueueSpec,
    /// The generation of the incarnation attached to.
    pub generation: u64,
}

/// Outcome of [`Store::renew`](super::Store::renew).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// The queue with the caller's generation is alive; its expiry was pushed back.
    Alive,
    /// The caller's incarnation was gone without being closed (it expired, or the store lost
    /// it in a restart). The store adopted the current incarnation or created a new one from
    /// the caller's spec; the caller now holds `generation`.
    Recreated {
        /// The generation the caller holds from now on.
        generation: u64,
        /// The spec of that incarnation.
        spec: QueueSpec,
    },
    /// The caller's generation was closed: the tombstone matches.
    Closed,
}

/// Outcome of [`Store::restore`](super::Store::restore).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Restored {
    /// The entries are ready again (those that were ready already were left as they were).
    Done,
    /// The caller's generation was closed: its messages were destroyed on purpose, and nothing
    /// was written.
    Closed,
    /// The caller's generation no longer exists (it expired or the store lost it, and its
    /// messages with it; the name may hold a newer incarnation): nothing was written.
    Gone,
}

/// The kind of a consumer, for the mixing rule (SPEC Q15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsumerKind {
    /// Removes what it receives (at-most-once and reliable consumers).
    Removing,
    /// Reads without removing (replay).
    Replaying,
}

impl ConsumerKind {
    /// `"removing"` or `"replaying"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerKind::Removing => "removing",
            ConsumerKind::Replaying => "replaying",
        }
    }
}

/// Registration of consumers, for [`Store::consumers`](super::Store::consumers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerOp {
    /// Register `id` with a lease of `lease`. Fails with [`Error::MixedConsumers`](crate::Error::MixedConsumers) if a consumer
    /// of the other kind holds an unexpired lease on the queue. Registering an id that is
    /// already registered just renews it.
    Register {
        /// The consumer.
        id: ConsumerId,
        /// Whether it removes or replays messages.
        kind: ConsumerKind,
        /// How long the registration lives without renewal.
        lease: Duration,
    },
    /// Push the lease of `id` to `now + lease` (registers it again if it had lapsed).
    Renew {
        /// The consumer.
        id: ConsumerId,
        /// Whether it removes or replays messages.
        kind: ConsumerKind,
        /// How long the registration lives without renewal.
        lease: Duration,
    },
    /// Remove the registration. Unknown ids are ignored.
    Unregister {
        /// The consumer.
        id: ConsumerId,
    },
}

/// Metadata operations, for [`Store::metadata`](super::Store::metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataOp {
    /// Read one key.
    Get(String),
    /// Read every key.
    GetAll,
    /// Write several keys at once (an empty value is a value, not a deletion).
    Set(Vec<(String, String)>),
}

/// The answer to a [`MetadataOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Metadata {
    /// The value of the key asked for, if set.
    Value(Option<String>),
    /// All keys and values, sorted by key.
    All(Vec<(String, String)>),
    /// The keys were written.
    Written,
}

/// What [`Store::stat`](super::Store::stat) reports about a queue without consuming anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStat {
    /// Whether the queue exists now (not expired, not closed).
    pub exists: bool,
    /// Ready messages (not yet consumed; for replay queues, all retained messages).
    pub count: u64,
    /// Reliable deliveries taken and not yet acknowledged, including those given back with a
    /// delay that is still running (`Delivery::nack_after`, a retry policy): they count here,
    /// not in `count`, until they come back.
    pub pending: u64,
    /// Consumers registered through [`Store::consumers`](super::Store::consumers) whose lease
    /// has not lapsed (all of one kind: see the mixing rule, SPEC Q15).
    pub consumers: u64,
    /// The stored spec, when the queue exists.
    pub spec: Option<QueueSpec>,
    /// The generation, when the queue exists.
    pub generation: Option<u64>,
    /// The newest id given by this incarnation, if any message was ever pushed to it.
    pub last_id: Option<u64>,
    /// Entries busmq did not write that takes moved aside (SPEC E3, see `Taken::foreign`) and
    /// the store still keeps for inspection (a backend may keep only the newest ones; 0 where
    /// that cannot happen).
    pub quarantined: u64,
    /// Delayed messages not yet due (SPEC P8): not counted in `count` until they come due.
    pub delayed: u64,
    /// How long until the earliest of them comes due.
    pub next_due: Option<Duration>,
}

/// A notification about one queue, from [`Store::watch`](super::Store::watch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Messages may be available (pushed, released, or returned): take or read again. For
    /// pushes, only promised to whoever took or read short recently (see
    /// [`Store::watch`](super::Store::watch)).
    Available,
    /// The queue was closed.
    Closed,
    /// The watch may have missed notices (the store reconnected): re-check everything.
    Reset,
}
