//! The Store boundary: the small set of atomic queue operations that a backend implements.
//!
//! Every method is **one atomic operation** on one queue (one Lua script on Redis, one locked
//! section in memory). Bus, Queue, Channel, reliable delivery and replay are built in
//! `busmq-core` from these operations, so a backend gets all of them by implementing this trait.
//! The contract of each method below is what the conformance suite checks, through the public
//! API, on every backend.
//!
//! # Model
//!
//! A queue (identified by its validated [`QueueName`]) has:
//!
//! * a **spec** ([`QueueSpec`]: ttl, maxsize, retention) written by its first creator and adopted
//!   by everyone who attaches later;
//! * a **generation**: a number chosen when the queue is created, different for every
//!   incarnation of the same name (a queue that expired or was closed and is created again gets
//!   a new, larger generation);
//! * the **ready** messages, in order, each an [`Entry`] with an id;
//! * the **pending** messages (reliable mode only): taken by a consumer, not yet acknowledged,
//!   each with a visibility deadline;
//! * string **metadata**, the registered **consumers** (with leases), and an expiry.
//!
//! # Ids
//!
//! Ids are `u64`, strictly increasing per queue name, and **never go backwards**, even after the
//! queue expired or was closed and was created again (SPEC Q6). Backends use
//! `id = max(last_id + 1, now_in_microseconds)` where `last_id` is the last id given by this
//! incarnation, and a new incarnation starts from the current time in microseconds. A batch of
//! `n` entries gets `n` consecutive ids, so [`Store::push`] returns only the first.
//!
//! # Expiry (leases)
//!
//! A queue lives while it is attached. Attached clients call [`Store::renew`] at least every
//! `ttl / 3`; each call (and [`Store::attach`]) pushes the queue's expiry to `now + ttl`;
//! [`Store::detach`] also sets it to `now + ttl`. So a queue and all its messages expire `ttl`
//! after the last attachment ends, and a client that dies without detaching stops renewing and
//! counts as gone after at most `ttl` (SPEC Q2). Expired queues behave exactly as queues that
//! never existed.
//!
//! # Closing
//!
//! [`Store::close`] destroys the queue now and leaves a **tombstone** holding the closed
//! generation for at least `max(2 * ttl, 10 s)`. Operations that carry that generation then fail
//! with [`Error::Closed`], and watchers receive [`Notice::Closed`]. A client attaching after the
//! close creates a new generation and is not affected by the tombstone.
//!
//! # Errors
//!
//! Backends return the semantic variants of [`Error`] named in each method's documentation,
//! [`Error::Offline`] / [`Error::Timeout`] when the store cannot answer within its deadline
//! (SPEC E4: no call may block forever), and [`Error::ForeignData`] when keys or entries were not
//! written by busmq (SPEC E3); such an error concerns only the queue it names.

use crate::error::{Error, Result};
use crate::name::{QueueName, TopicName};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The type-erased handle the rest of busmq holds.
pub type StoreHandle = Arc<dyn Store>;

/// Identifies one bus (one client process) to the store. Random, unique per bus instance.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// Wraps an id. Ids are opaque; use [`ClientId::random`] for new clients.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        ClientId(id.into())
    }

    /// A fresh random id (16 hex digits).
    pub fn random() -> Self {
        ClientId(format!("{:016x}", crate::util::random_u64()).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one consumer (one `consume` call) of one queue: `<client id>.<sequence>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerId(Arc<str>);

impl ConsumerId {
    /// The consumer number `seq` of `client`.
    pub fn new(client: &ClientId, seq: u64) -> Self {
        ConsumerId(format!("{}.{}", client.as_str(), seq).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConsumerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsumerId({})", self.0)
    }
}

impl fmt::Display for ConsumerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long a queue's messages are kept when they are not removed by consumers (replay queues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep at most this many ready messages: a push beyond it drops the oldest.
    pub max_len: Option<u64>,
    /// Drop ready messages pushed longer ago than this. Backends may trim at push time and on
    /// reads; a message older than `max_age` is never returned by [`Store::read`] or
    /// [`Store::take`]. (Backends may keep it a little longer in storage.)
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

/// What [`Store::attach`] found or created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Whether the queue existed before this call.
    pub existed: bool,
    /// The stored spec (the creator's), which the attacher adopts.
    pub spec: QueueSpec,
    /// The generation of the incarnation attached to.
    pub generation: u64,
}

/// Outcome of [`Store::renew`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// The queue with the caller's generation is alive; its expiry was pushed back.
    Alive,
    /// The caller's incarnation was gone without being closed (it expired, or the store lost
    /// it in a restart). The store adopted the current incarnation or created a new one from
    /// the caller's spec; the caller now holds `generation`.
    Recreated { generation: u64, spec: QueueSpec },
    /// The caller's generation was closed: the tombstone matches.
    Closed,
}

/// Why a message was moved to a dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The queue the message was taken from.
    pub queue: String,
    /// Its id in that queue.
    pub id: u64,
    /// How many times it had been delivered.
    pub deliveries: u32,
    /// Why: `"max_deliveries"`, `"rejected: <text>"`, `"undecodable: <text>"`.
    pub reason: String,
}

/// A message to append with [`Store::push`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// The encoded message.
    pub payload: Bytes,
    /// Set only for messages pushed to a dead-letter queue.
    pub dead: Option<Arc<DeadLetter>>,
}

impl NewEntry {
    /// An ordinary message.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        NewEntry { payload: payload.into(), dead: None }
    }
}

/// A stored message as returned by [`Store::take`] and [`Store::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The message id.
    pub id: u64,
    /// How many times it has been delivered by reliable takes, **including** this take (so the
    /// first reliable delivery has `deliveries == 1`). 0 for at-most-once takes of messages never
    /// delivered reliably, and for reads.
    pub deliveries: u32,
    /// The encoded message.
    pub payload: Bytes,
    /// Dead-letter information, when this entry was pushed to a dead-letter queue.
    pub dead: Option<Arc<DeadLetter>>,
}

/// How [`Store::take`] removes what it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeMode {
    /// Remove the entries from the queue (SPEC Q10). Their `deliveries` are returned unchanged.
    AtMostOnce,
    /// Move the entries to pending (SPEC Q13), each with visibility deadline `now + visibility`
    /// and `deliveries + 1`.
    Reliable {
        visibility: Duration,
        /// An entry about to be delivered for more than `max_deliveries` times is not returned
        /// in [`Taken::entries`] but in [`Taken::dead`] (claimed like a delivery, with the
        /// incremented count), so that the caller moves it to the dead-letter queue and then
        /// acknowledges it. If the caller dies first, its visibility passes and it is offered as
        /// dead again: nothing is lost.
        max_deliveries: u32,
    },
}

/// The result of [`Store::take`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// The entries to hand to the consumer, in queue order.
    pub entries: Vec<Entry>,
    /// Entries claimed for dead-lettering (reliable mode only), in queue order.
    pub dead: Vec<Entry>,
    /// Entries the take found that busmq did not write (SPEC E3), one detail each (what was
    /// wrong, where the backend moved it, its first bytes). The backend moved them aside, so
    /// they are no longer in the queue and no other take meets them again: the caller reports
    /// each once, as [`Error::ForeignData`](crate::Error::ForeignData), and goes on with the
    /// entries.
    pub foreign: Vec<String>,
}

/// One settlement of a reliable delivery, for [`Store::settle`]. `delivery` is the
/// [`Entry::deliveries`] value of the take that handed the entry out; a settlement whose
/// `delivery` no longer matches the pending entry (it was redelivered meanwhile) is stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Processing succeeded: remove the entry.
    Ack { id: u64, delivery: u32 },
    /// Give the entry back now: it returns to the head of the ready messages, in id order among
    /// other returned entries, keeping its delivery count.
    Release { id: u64, delivery: u32 },
    /// The entry was taken but never handed to user code: like `Release`, but the delivery
    /// count goes back down by one (a stop must not count as a delivery attempt).
    Return { id: u64, delivery: u32 },
    /// Push the visibility deadline to `now + by`.
    Extend { id: u64, delivery: u32, by: Duration },
}

/// Outcome of one [`Settle`], in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Done.
    Done,
    /// The entry is not pending with that delivery number any more (its visibility passed and
    /// it was redelivered, or it was flushed/closed). Nothing was changed.
    Stale,
}

/// Where a replaying consumer starts reading (SPEC Q14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Position {
    /// The oldest retained message.
    Start,
    /// Only messages pushed from now on.
    End,
    /// The `n`-th oldest retained message (0-based).
    Index(u64),
    /// The first message whose id is greater than or equal to this.
    FromId(u64),
    /// The first message whose id is greater than this (how a cursor continues).
    AfterId(u64),
}

/// The result of [`Store::read`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadBatch {
    /// Up to `max` entries in id order, starting at the requested position. Messages removed
    /// by retention before the position are skipped silently.
    pub entries: Vec<Entry>,
    /// The id of the newest message in the queue at the time of the read (`None` when empty).
    /// `Position::End` is resolved by the caller as `AfterId(last_id)`.
    pub last_id: Option<u64>,
    /// Entries busmq did not write that the read stepped over, one detail each (see
    /// [`Taken::foreign`]). A read cannot move them aside, so they stay in the queue; a backend
    /// names only those before the last of `entries`, so that a reader whose next read starts
    /// after that entry reports each once.
    pub foreign: Vec<String>,
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

/// Registration of consumers, for [`Store::consumers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerOp {
    /// Register `id` with a lease of `lease`. Fails with [`Error::MixedConsumers`] if a consumer
    /// of the other kind holds an unexpired lease on the queue. Registering an id that is
    /// already registered just renews it.
    Register { id: ConsumerId, kind: ConsumerKind, lease: Duration },
    /// Push the lease of `id` to `now + lease` (registers it again if it had lapsed).
    Renew { id: ConsumerId, kind: ConsumerKind, lease: Duration },
    /// Remove the registration. Unknown ids are ignored.
    Unregister { id: ConsumerId },
}

/// Metadata operations, for [`Store::metadata`].
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

/// What [`Store::stat`] reports about a queue without consuming anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStat {
    /// Whether the queue exists now (not expired, not closed).
    pub exists: bool,
    /// Ready messages (not yet consumed; for replay queues, all retained messages).
    pub count: u64,
    /// Reliable deliveries taken and not yet acknowledged.
    pub pending: u64,
    /// The stored spec, when the queue exists.
    pub spec: Option<QueueSpec>,
    /// The generation, when the queue exists.
    pub generation: Option<u64>,
    /// The newest id given by this incarnation, if any message was ever pushed to it.
    pub last_id: Option<u64>,
    /// Entries busmq did not write that takes moved aside (see [`Taken::foreign`]) and the
    /// store still keeps for inspection (a backend may keep only the newest ones).
    pub quarantined: u64,
}

/// A notification about one queue, from [`Store::watch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Messages may be available (pushed, released, or returned): take or read again.
    Available,
    /// The queue was closed.
    Closed,
    /// The watch may have missed notices (the store reconnected): re-check everything.
    Reset,
}

/// The reachability of the store as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// Every configured instance answers.
    Online,
    /// Some instances answer, the listed ones do not.
    Degraded { down: Vec<String> },
    /// No instance answers.
    Offline,
}

/// Broadcast by the store; the bus turns these into its own events.
#[derive(Clone, Debug)]
pub enum StoreEvent {
    /// The state changed. Emitted once per real transition.
    State(StoreState),
    /// A background failure worth reporting (the store keeps going).
    Error(Error),
}

/// The persistence and transport behind a bus. See the module documentation for the model.
///
/// All methods except [`Store::events`] and [`Store::state`] are called only between
/// [`Store::connect`] and [`Store::disconnect`].
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// A short name for errors and logs (`"memory"`, `"redis"`).
    fn backend(&self) -> &'static str;

    /// Starts connecting. Returns once the first state is known (which may be `Offline`: the
    /// store keeps reconnecting in the background, with backoff, and reports transitions as
    /// events). Calling it while connected is a no-op. An error (such as
    /// [`Error::AccessDenied`]) means that trying again cannot help: the store is then left
    /// disconnected, and may be connected again later.
    async fn connect(&self) -> Result<StoreState>;

    /// Stops background work and closes connections. Idempotent. Afterwards the state is
    /// `Offline` and every watch and subscription stream ends.
    async fn disconnect(&self) -> Result<()>;

    /// The current state.
    fn state(&self) -> StoreState;

    /// Subscribes to state changes and background errors.
    fn events(&self) -> broadcast::Receiver<StoreEvent>;

    /// Creates the queue with `spec` if it does not exist, or adopts the stored spec if it does
    /// (SPEC Q1), and pushes its expiry to `now + ttl`. Atomic: of two concurrent first
    /// attachers exactly one sees `existed == false`.
    async fn attach(&self, queue: &QueueName, spec: &QueueSpec) -> Result<Attachment>;

    /// Keeps the caller's attachment alive (see "Expiry"). See [`Renewal`] for the outcomes.
    async fn renew(&self, queue: &QueueName, generation: u64, spec: &QueueSpec) -> Result<Renewal>;

    /// Ends one attachment: the queue's expiry becomes `now + ttl` (unless the queue is gone or
    /// has another generation, then nothing happens).
    async fn detach(&self, queue: &QueueName, generation: u64) -> Result<()>;

    /// Destroys the queue and its messages now, leaves a tombstone for `generation` (or for the
    /// current generation when `None`), and notifies watchers with [`Notice::Closed`]. Returns
    /// whether it existed.
    async fn close(&self, queue: &QueueName, generation: Option<u64>) -> Result<bool>;

    /// Appends `entries` to the tail atomically, in order, and returns the id of the first (the
    /// others follow consecutively). Then applies retention, and notifies watchers.
    ///
    /// * If the tombstone matches `generation`: [`Error::Closed`], nothing written.
    /// * If the queue does not exist (expired or lost): it is created from `spec` first.
    /// * If `ready + entries.len()` would exceed the stored `maxsize`: [`Error::QueueFull`],
    ///   nothing written.
    async fn push(
        &self,
        queue: &QueueName,
        generation: u64,
        spec: &QueueSpec,
        entries: &[NewEntry],
    ) -> Result<u64>;

    /// Takes up to `max` ready entries from the head, in order (SPEC Q10, Q13). Never waits: an
    /// empty queue gives an empty result. In reliable mode, pending entries whose visibility
    /// deadline has passed are first returned to the head of the ready messages (in id order),
    /// so they are taken again before newer ones. A missing queue gives an empty result.
    async fn take(
        &self,
        queue: &QueueName,
        consumer: &ConsumerId,
        max: u32,
        mode: TakeMode,
    ) -> Result<Taken>;

    /// Whether [`Store::take_wait`] really waits for messages (blocking reads) rather than
    /// returning at once. When it does, idle at-most-once consumers use it instead of waiting for
    /// a watch notice and then taking, which saves a round trip per wake-up.
    fn waits_natively(&self) -> bool {
        false
    }

    /// Takes up to `max` ready entries in at-most-once mode like [`Store::take`], but when none
    /// is ready waits up to `wait` for some to arrive and returns as soon as any are taken.
    /// When `cancel` is notified the store returns promptly, still returning whatever it took:
    /// callers never drop this future before it completes, so nothing taken is lost. The
    /// default does not wait.
    async fn take_wait(
        &self,
        queue: &QueueName,
        consumer: &ConsumerId,
        max: u32,
        wait: Duration,
        cancel: &tokio::sync::Notify,
    ) -> Result<Taken> {
        let _ = (wait, cancel);
        self.take(queue, consumer, max, TakeMode::AtMostOnce).await
    }

    /// Puts entries taken in at-most-once mode back at the head of the queue, in the given
    /// order, before every other ready entry (SPEC Q12). Creates the queue from `spec` if it
    /// vanished meanwhile. Ignores the `maxsize` limit (these messages were already counted).
    async fn restore(&self, queue: &QueueName, spec: &QueueSpec, entries: &[Entry]) -> Result<()>;

    /// Settles reliable deliveries (SPEC Q13) atomically; one outcome per settlement, in order.
    async fn settle(&self, queue: &QueueName, ops: &[Settle]) -> Result<Vec<Settled>>;

    /// Reads up to `max` entries from `from` without removing anything (SPEC Q14). The cost
    /// must not grow with the position: O(log n + max).
    async fn read(&self, queue: &QueueName, from: Position, max: u32) -> Result<ReadBatch>;

    /// Registers, renews or removes a consumer (for the mixing rule, SPEC Q15).
    async fn consumers(&self, queue: &QueueName, op: ConsumerOp) -> Result<()>;

    /// Reports on a queue (exists, counts, spec) without changing it.
    async fn stat(&self, queue: &QueueName) -> Result<QueueStat>;

    /// Removes every ready and pending message but keeps the queue, its spec and its metadata
    /// (SPEC Q5). Ids keep increasing afterwards.
    async fn flush(&self, queue: &QueueName) -> Result<()>;

    /// Reads or writes the queue's string metadata (SPEC Q5). Reading a queue that does not
    /// exist gives `Value(None)` / `All(vec![])`; writing to one fails with
    /// [`Error::NotAttached`] and writes nothing (callers write only while attached).
    async fn metadata(&self, queue: &QueueName, op: MetadataOp) -> Result<Metadata>;

    /// Starts watching a queue. The stream yields [`Notice`]s until it is dropped or the store
    /// disconnects. Notices may be coalesced; consumers must re-check after each one. Callers
    /// watch **before** their first take, so that nothing pushed in between is missed.
    async fn watch(&self, queue: &QueueName) -> Result<BoxStream<'static, Notice>>;

    /// Publishes `payload` to every live subscriber of `topic` (SPEC P1). Not stored. Returns
    /// how many subscriptions received it when the backend knows, else 0.
    async fn publish(&self, topic: &TopicName, payload: Bytes) -> Result<u64>;

    /// Subscribes to `topic`. The stream yields every message published after the subscription
    /// is established (when this call returns), exactly once, and survives reconnections.
    async fn subscribe(&self, topic: &TopicName) -> Result<BoxStream<'static, Bytes>>;
}
