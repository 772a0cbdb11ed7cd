//! The one error type of busmq: semantic variants that name what failed and where.
//!
//! Display strings are lowercase, say what happened and to which queue/channel/URL, and never
//! repeat the source's text (the source is reachable through `std::error::Error::source`).

use busmq_codec::CodecError;
use std::sync::Arc;
use std::time::Duration;

/// A boxed source error that can be cloned (events are broadcast, so errors must be `Clone`).
pub type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with busmq's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of thing a name was given for, used in [`Error::InvalidName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameKind {
    Queue,
    Channel,
    Role,
    Topic,
    MetadataKey,
    Namespace,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Queue => "queue",
            NameKind::Channel => "channel",
            NameKind::Role => "channel role",
            NameKind::Topic => "topic",
            NameKind::MetadataKey => "metadata key",
            NameKind::Namespace => "namespace",
        })
    }
}

/// Everything that can go wrong in busmq.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A queue, channel, role, topic or metadata key name was rejected before touching the store.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName { kind: NameKind, name: String, reason: String },

    /// An option has a value that cannot work (`max = 0`, `ttl = 0`, ...).
    #[error("invalid option {option}: {reason}")]
    InvalidOption { option: &'static str, reason: String },

    /// A connection URL could not be used.
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// A message is larger than the configured limit; nothing was written.
    #[error("message of {size} bytes for {target} exceeds the limit of {limit} bytes")]
    MessageTooLarge { target: String, size: usize, limit: usize },

    /// `connect` was called on a bus that is already connected.
    #[error("the bus is already connected")]
    AlreadyConnected,

    /// An operation needs a connected bus.
    #[error("the bus is not connected")]
    NotConnected,

    /// The store (or the part of it holding `target`) cannot be reached right now; the call was
    /// not sent. Retryable.
    #[error("{target} is offline")]
    Offline { target: String },

    /// The connection broke while the call was in flight: it may or may not have taken effect.
    /// Retryable only where applying the call twice is harmless.
    #[error("the connection to {target} broke during {operation}; it may or may not have run")]
    Interrupted { operation: &'static str, target: String },

    /// `attach` on a queue handle that is already attached.
    #[error("queue {queue:?} is already attached")]
    AlreadyAttached { queue: String },

    /// The operation needs an attached queue handle.
    #[error("queue {queue:?} is not attached")]
    NotAttached { queue: String },

    /// `push` after `detach` (pushes before the first attach are buffered instead).
    #[error("queue {queue:?} was detached; attach again to push")]
    Detached { queue: String },

    /// `consume` on a queue handle that is already consuming.
    #[error("queue {queue:?} is already consuming")]
    AlreadyConsuming { queue: String },

    /// The queue was closed (by this or another client).
    #[error("queue {queue:?} is closed")]
    Closed { queue: String },

    /// A push would exceed the queue's stored `maxsize`; nothing of the batch was written.
    #[error("queue {queue:?} is full ({maxsize} messages)")]
    QueueFull { queue: String, maxsize: u64 },

    /// Too many pushes are waiting for the queue to attach or for the store to answer.
    #[error("queue {queue:?} has {pending} pushes waiting; slow down or await them")]
    Backpressure { queue: String, pending: usize },

    /// A removing and a non-removing consumer cannot share a queue (SPEC Q15).
    #[error(
        "queue {queue:?} already has {existing} consumers; cannot start a {requested} consumer"
    )]
    MixedConsumers { queue: String, existing: &'static str, requested: &'static str },

    /// `send` on a channel peer that is not connected.
    #[error("channel {channel:?} is not connected")]
    ChannelNotConnected { channel: String },

    /// `connect`/`listen` on a channel peer that is already connected.
    #[error("channel {channel:?} is already connected")]
    ChannelAlreadyConnected { channel: String },

    /// A message could not be encoded; nothing was written.
    #[error("could not encode a message for {target}")]
    Encode {
        target: String,
        #[source]
        source: CodecError,
    },

    /// A stored message does not decode into the requested type. It is reported, not dropped.
    #[error("message {id} of {target} could not be decoded")]
    Decode {
        target: String,
        id: u64,
        #[source]
        source: CodecError,
    },

    /// An acknowledgement arrived after the delivery was given to someone else (its visibility
    /// timeout passed, or it was released).
    #[error(
        "delivery {delivery} of message {id} in queue {queue:?} is no longer held by this consumer"
    )]
    StaleDelivery { queue: String, id: u64, delivery: u32 },

    /// Data in the store that busmq did not write (wrong key type, corrupted entry). Affects only
    /// this queue.
    #[error("queue {queue:?} holds data busmq did not write: {detail}")]
    ForeignData { queue: String, detail: String },

    /// The store refused this client's credentials or rights: a password is missing or wrong,
    /// or the user lacks an ACL permission busmq needs. Trying again with the same
    /// configuration cannot succeed. `target` names the instance (never with its password).
    #[error("access to {target} was denied: {reason}")]
    AccessDenied { target: String, reason: String },

    /// A store call did not answer within its deadline.
    #[error("{operation} on {target} timed out after {after:?}")]
    Timeout { operation: &'static str, target: String, after: Duration },

    /// The operation was abandoned before the store answered because its worker task was
    /// dropped (the runtime is shutting down). It may or may not have run.
    #[error("{operation} on queue {queue:?} was abandoned: the runtime is shutting down")]
    Shutdown { operation: &'static str, queue: String },

    /// Any other failure of the store. `retryable` says whether trying again may succeed.
    #[error("{backend} store failed during {operation}: {message}")]
    Store {
        backend: &'static str,
        operation: &'static str,
        message: String,
        retryable: bool,
        #[source]
        source: Option<Source>,
    },
}

impl Error {
    /// Whether the same call may succeed if tried again later (the store was unreachable, slow,
    /// or failed over).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Offline { .. }
            | Error::Timeout { .. }
            | Error::Interrupted { .. }
            | Error::Backpressure { .. } => true,
            Error::Store { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Whether the failed call certainly had no effect, so that a call that must not run twice
    /// can be retried: the store was not reached, or refused the call before running it.
    /// A [`Timeout`](Error::Timeout) or an [`Interrupted`](Error::Interrupted) call may have
    /// run.
    pub fn is_unapplied(&self) -> bool {
        match self {
            Error::Offline { .. } | Error::Backpressure { .. } => true,
            Error::Store { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Shorthand for an invalid option.
    pub fn invalid_option(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidOption { option, reason: reason.into() }
    }
}
