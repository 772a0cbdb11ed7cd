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
    /// A queue name.
    Queue,
    /// A channel name.
    Channel,
    /// A channel role (`local`, `remote`, `server`, ...).
    Role,
    /// A pub/sub topic.
    Topic,
    /// A key of a queue's metadata.
    MetadataKey,
    /// A store's key namespace (Redis).
    Namespace,
    /// A key of a message's [`Headers`](crate::Headers).
    HeaderKey,
    /// A persisted object's name.
    Object,
    /// A request/reply service (SPEC P2).
    Service,
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
            NameKind::HeaderKey => "header key",
            NameKind::Object => "object",
            NameKind::Service => "service",
        })
    }
}

/// Why a TLS connection could not be set up (see [`Error::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate is not signed by a trusted authority (a wrong or missing CA).
    UnknownAuthority,
    /// The server's certificate is valid but not for the host name (or address) connected to.
    WrongHostName,
    /// The certificate is otherwise invalid (expired, not yet valid, revoked, malformed).
    BadCertificate,
    /// The client connected without TLS (`redis://`) to a port that speaks only TLS.
    ServerRequiresTls,
    /// The client connected with TLS (`rediss://`) to a port that does not speak TLS.
    ServerWithoutTls,
    /// The server refused the client's certificate, or required one and got none.
    ClientCertificateRefused,
    /// Any other failure of the handshake.
    Handshake,
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsProblem::UnknownAuthority => "unknown certificate authority",
            TlsProblem::WrongHostName => "certificate not valid for the host name",
            TlsProblem::BadCertificate => "invalid server certificate",
            TlsProblem::ServerRequiresTls => "the server requires TLS",
            TlsProblem::ServerWithoutTls => "the server does not speak TLS",
            TlsProblem::ClientCertificateRefused => "client certificate refused",
            TlsProblem::Handshake => "handshake failed",
        })
    }
}

/// Everything that can go wrong in busmq.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A queue, channel, role, topic, metadata key or header key was rejected before touching the
    /// store.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// What kind of name it is.
        kind: NameKind,
        /// The name (shortened when long).
        name: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// An option has a value that cannot work (`max = 0`, `ttl = 0`, ...).
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong, in words.
        reason: String,
    },

    /// A connection URL could not be used.
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// A message is larger than the configured limit; nothing was written.
    #[error("message of {size} bytes for {target} exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// What the operation was about: a queue, channel, topic, URL or instance.
        target: String,
        /// The size of the encoded message in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },

    /// `connect` was called on a bus that is already connected.
    #[error("the bus is already connected")]
    AlreadyConnected,

    /// An operation needs a connected bus.
    #[error("the bus is not connected")]
    NotConnected,

    /// The store (or the part of it holding `target`) cannot be reached right now; the call was
    /// not sent. Retryable.
    #[error("{target} is offline")]
    Offline {
        /// What the operation was about: a queue, channel, topic, URL or instance.
        target: String,
    },

    /// The connection broke while the call was in flight: it may or may not have taken effect.
    /// Retryable only where applying the call twice is harmless.
    #[error("the connection to {target} broke during {operation}; it may or may not have run")]
    Interrupted {
        /// The operation that failed.
        operation: &'static str,
        /// What the operation was about: a queue, channel, topic, URL or instance.
        target: String,
    },

    /// `attach` on a queue handle that is already attached.
    #[error("queue {queue:?} is already attached")]
    AlreadyAttached {
        /// The queue's name.
        queue: String,
    },

    /// The operation needs an attached queue handle.
    #[error("queue {queue:?} is not attached")]
    NotAttached {
        /// The queue's name.
        queue: String,
    },

    /// `push` after `detach` (pushes before the first attach are buffered instead).
    #[error("queue {queue:?} was detached; attach again to push")]
    Detached {
        /// The queue's name.
        queue: String,
    },

    /// `consume` on a queue handle that is already consuming.
    #[error("queue {queue:?} is already consuming")]
    AlreadyConsuming {
        /// The queue's name.
        queue: String,
    },

    /// The queue was closed (by this or another client).
    #[error("queue {queue:?} is closed")]
    Closed {
        /// The queue's name.
        queue: String,
    },

    /// A push would exceed the queue's stored `maxsize`; nothing of the batch was written.
    #[error("queue {queue:?} is full ({maxsize} messages)")]
    QueueFull {
        /// The queue's name.
        queue: String,
        /// The queue's stored `maxsize`.
        maxsize: u64,
    },

    /// Too many pushes are waiting for the queue to attach or for the store to answer.
    #[error("queue {queue:?} has {pending} pushes waiting; slow down or await them")]
    Backpressure {
        /// The queue's name.
        queue: String,
        /// How many pushes are waiting.
        pending: usize,
    },

    /// A removing and a non-removing consumer cannot share a queue (SPEC Q15).
    #[error(
        "queue {queue:?} already has {existing} consumers; cannot start a {requested} consumer"
    )]
    MixedConsumers {
        /// The queue's name.
        queue: String,
        /// The kind of the consumers already there.
        existing: &'static str,
        /// The kind of the consumer that was refused.
        requested: &'static str,
    },

    /// `send` on a channel peer that is not connected.
    #[error("channel {channel:?} is not connected")]
    ChannelNotConnected {
        /// The channel's name.
        channel: String,
    },

    /// `connect`/`listen` on a channel peer that is already connected.
    #[error("channel {channel:?} is already connected")]
    ChannelAlreadyConnected {
        /// The channel's name.
        channel: String,
    },

    /// A request found no server of its service (SPEC P2): nothing was sent.
    #[error("service {service:?} has no servers")]
    NoResponders {
        /// The service's name.
        service: String,
    },

    /// The server that handled a request answered with a failure (SPEC P2): its handler
    /// returned an error or called `fail`.
    #[error("service {service:?} failed: {message}")]
    ServiceFailed {
        /// The service's name.
        service: String,
        /// The server's message, as it sent it.
        message: String,
    },

    /// A message could not be encoded; nothing was written.
    #[error("could not encode a message for {target}")]
    Encode {
        /// What the operation was about: a queue, channel, topic, URL or instance.
        target: String,
        /// The underlying error.
        #[source]
        source: CodecError,
    },

    /// A stored message does not decode into the requested type. It is reported, not dropped.
    #[error("message {id} of {target} could not be decoded")]
    Decode {
        /// What the operation was about: a queue, channel, topic, URL or instance.
        target: String,
        /// The message id.
        id: u64,
        /// The underlying error.
        #[source]
        source: CodecError,
    },

    /// An acknowledgement arrived after the delivery was given to someone else (its visibility
    /// timeout passed, or it was released).
    #[error(
        "delivery {delivery} of message {id} in queue {queue:?} is no longer held by this consumer"
    )]
    StaleDelivery {
        /// The queue's name.
        queue: String,
        /// The message id.
        id: u64,
        /// The delivery number that was settled.
        delivery: u32,
    },

    /// Data in the store that busmq did not write (wrong key type, corrupted entry). Affects only
    /// this queue.
    #[error("queue {queue:?} holds data busmq did not write: {detail}")]
    ForeignData {
        /// The queue's name.
        queue: String,
        /// What is wrong with it, in words.
        detail: String,
    },

    /// The queue is stored in a layout this client does not know (written by a newer, or much
    /// older, version of busmq). Nothing was read or written; upgrade the client (or drain the
    /// queue with the version that wrote it).
    #[error(
        "queue {queue:?} is stored in layout version {found}; this client reads and writes \
         layout version {supported} only"
    )]
    UnknownLayout {
        /// The queue's name.
        queue: String,
        /// The layout version found in the store.
        found: String,
        /// The layout version this client uses.
        supported: String,
    },

    /// The store refused this client's credentials or rights: a password is missing or wrong,
    /// or the user lacks an ACL permission busmq needs. Trying again with the same
    /// configuration cannot succeed. `target` names the instance (never with its password).
    #[error("access to {target} was denied: {reason}")]
    AccessDenied {
        /// What the operation was about: a queue, channel, topic, URL or instance.
        target: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// A TLS connection to the store could not be set up, for a reason that trying again with
    /// the same configuration cannot cure: the server's certificate is not trusted or not for
    /// this host, one side speaks TLS and the other does not, or the server refused this
    /// client's certificate. `target` names the instance (never with its password).
    #[error("TLS to {target} failed ({problem}): {reason}")]
    Tls {
        /// The instance.
        target: String,
        /// Which of the known problems it is.
        problem: TlsProblem,
        /// What is wrong, in words (with what to change).
        reason: String,
    },

    /// A store call did not answer within its deadline.
    #[error("{operation} on {target} timed out after {after:?}")]
    Timeout {
        /// The operation that failed.
        operation: &'static str,
        /// What the operation was about: a queue, channel, topic, URL or instance.
        target: String,
        /// How long the call waited.
        after: Duration,
    },

    /// The operation was abandoned before the store answered because its worker task was
    /// dropped (the runtime is shutting down). It may or may not have run.
    #[error("{operation} on queue {queue:?} was abandoned: the runtime is shutting down")]
    Shutdown {
        /// The operation that failed.
        operation: &'static str,
        /// The queue's name.
        queue: String,
    },

    /// A save of a persisted object lost a race (SPEC P3): another holder saved or deleted it
    /// since this handle last loaded or saved it (or it expired), so nothing was written.
    /// Load again, apply the change, and save again.
    #[error(
        "persisted object {object:?} changed since this handle last saw it (stored version: {}); \
         nothing was written",
        .current_version.map_or_else(|| "none".to_string(), |v| v.to_string())
    )]
    Conflict {
        /// The object's name.
        object: String,
        /// The stored version (`None`: the object does not exist).
        current_version: Option<u64>,
    },

    /// A write the store applied that fewer replicas confirmed in time than the bus asks for
    /// (Redis `replicas_ack`): it may or may not survive a failover. Trying again may succeed,
    /// but the first write may survive too: retry a push with a dedupe key
    /// ([`PushOptions::dedupe`](crate::PushOptions::dedupe)) so that it is written once.
    #[error(
        "{backend} store applied the {operation} but only {confirmed} of {required} replicas \
         confirmed it in time; a failover may lose it ({detail})"
    )]
    NotReplicated {
        /// The store backend (`redis`).
        backend: &'static str,
        /// The operation that was applied (`push`, `take`, ...).
        operation: &'static str,
        /// How many replicas confirmed the write.
        confirmed: u64,
        /// How many the bus asks for.
        required: u64,
        /// Where it was applied, in words (server, queue, wait timeout).
        detail: String,
    },

    /// Any other failure of the store. `retryable` says whether trying again may succeed.
    #[error("{backend} store failed during {operation}: {message}")]
    Store {
        /// The store backend (`redis`, `memory`).
        backend: &'static str,
        /// The operation that failed.
        operation: &'static str,
        /// What happened, in words.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// The underlying error.
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
            | Error::Backpressure { .. }
            | Error::NotReplicated { .. } => true,
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
