//! The Store boundary: the small set of atomic queue operations that a backend implements.
//!
//! A backend implements three traits and may offer two more:
//!
//! * [`Session`]: its name, `connect`/`disconnect`, its current state (a `watch`) and its
//!   events (a `broadcast`);
//! * [`Store`]: the queue operations below, each **one atomic operation** on one queue (one Lua
//!   script or one MULTI on Redis, one locked section in memory);
//! * [`Topics`]: publish/subscribe (SPEC P1);
//! * optionally [`BlockingTake`]: a take that waits inside the store for messages, offered
//!   through [`Store::blocking`];
//! * optionally [`Inspect`]: a paged listing of the queues that exist, offered through
//!   [`Store::inspect`];
//! * optionally [`PipelinedPush`]: a push sent before the producer's previous one answered,
//!   offered through [`Store::pipelined`].
//!
//! Besides queues, [`Store::object`] keeps persisted objects (SPEC P3, see [`ObjectOp`]).
//!
//! Bus, Queue, Channel, reliable delivery and replay are built in `busmq-core` from these
//! operations, so a backend gets all of them by implementing the traits. The contract of each
//! method is what the shared Store contract cases of busmq-testkit check, on every backend.
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
//! * the **delayed** messages (SPEC P8): scheduled with [`Store::schedule`], invisible (not
//!   counted, taken or read) until due; they get their id when they come due (see "Delayed
//!   messages");
//! * the **pending** messages (reliable mode only): taken by a consumer, not yet acknowledged,
//!   each with a visibility deadline;
//! * string **metadata**, the registered **consumers** (with leases), and an expiry.
//!
//! # Receipts
//!
//! Whatever a backend needs later to find a taken entry again (on Redis: the pending batch and
//! the index in it) travels with the entry as an opaque [`Receipt`] and comes back with its
//! [`Settle`]; backends keep no client-side tables to find it. The same goes for where a
//! blocking take should wait next ([`Taken::resume`]) and the newest id a producer saw
//! ([`PushBatch::after`]).
//!
//! # Ids
//!
//! Ids are `u64`, strictly increasing per queue name, and **never go backwards**, even after the
//! queue expired or was closed and was created again (SPEC Q6). Backends use
//! `id = max(last_id + 1, now_in_microseconds)` where `last_id` is the last id given by this
//! incarnation, and a new incarnation starts from the current time in microseconds. A batch of
//! `n` entries gets `n` consecutive ids, so [`Store::push`] returns only the first.
//!
//! # Delayed messages
//!
//! A scheduled message waits in the queue's schedule, ordered by due time (on the store's own
//! clock: nothing compares clocks of different hosts) and, among equal due times, by schedule
//! order. At the start of every [`Store::take`], [`Store::read`] and [`Store::stat`] of the
//! queue, the messages that came due are **promoted**: appended to the ready messages in due
//! order with fresh ids, exactly as if pushed then, so ids stay in push order and replay
//! positions, retention and restores keep working. A backend promotes a bounded number per call
//! (the rest on the next call) at a cost that does not grow with the number of delayed
//! messages. `maxsize` counts a delayed message only once promoted (scheduling is never
//! refused as full; a promotion may take the queue above `maxsize`, as a restore does, and
//! pushes are then refused until consumers catch up). [`Taken::next_due`],
//! [`ReadBatch::next_due`] and [`QueueStat::next_due`] say when the earliest waiting message
//! comes due, so that consumers take again then instead of polling. Delayed messages live and
//! die with the queue's other keys (expiry, close, flush).
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
//! with [`Error::Closed`](crate::Error::Closed) (renew and restore say so in their outcome,
//! [`Renewal::Closed`] and [`Restored::Closed`]), and watchers receive [`Notice::Closed`]. A
//! client attaching after the close creates a new generation and is not affected by the
//! tombstone.
//!
//! # Errors
//!
//! Backends return the semantic variants of [`Error`](crate::Error) named in each method's
//! documentation, [`Error::Offline`](crate::Error::Offline) /
//! [`Error::Timeout`](crate::Error::Timeout) when the store cannot answer within its deadline
//! (SPEC E4: no call may block forever), and [`Error::ForeignData`](crate::Error::ForeignData)
//! when keys or entries were not written by busmq (SPEC E3); such an error concerns only the
//! queue it names.

mod blocking;
mod entry;
mod ids;
mod inspect;
mod object;
mod pipelined;
mod queue;
mod schedule;
mod session;
mod topics;

pub use blocking::BlockingTake;
pub use entry::{
    DeadLetter, Dedupe, Entry, MAX_ORDERING_KEY, MAX_PRIORITY, NewEntry, Position, PushBatch,
    ReadBatch, Receipt, Settle, Settled, Settlement, TakeMode, Taken, check_retention,
    check_routing,
};
pub use ids::{ClientId, ConsumerId};
pub use inspect::{Inspect, QueuePage};
pub use object::{Expect, ObjectOp, ObjectReply, ObjectSave, StoredObject};
pub use pipelined::{Link, PipelinedPush};
pub use queue::{
    Attachment, ConsumerKind, ConsumerOp, Metadata, MetadataOp, Notice, QueueSpec, QueueStat,
    Renewal, Restored, Retention,
};
pub use schedule::{MAX_DELAY, ScheduleBatch, Scheduled};
pub use session::{Session, StoreEvent, StoreState};
pub use topics::Topics;

use crate::error::Result;
use crate::name::{ObjectName, QueueName};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::fmt;
use std::sync::Arc;

/// The type-erased handle the rest of busmq holds.
pub type StoreHandle = Arc<dyn Store>;

/// The queue operations of a backend. See the module documentation for the model.
///
/// All methods are called only between [`Session::connect`] and [`Session::disconnect`];
/// outside that they fail with [`Error::NotConnected`](crate::Error::NotConnected).
#[async_trait]
pub trait Store: Session + Topics + fmt::Debug + 'static {
    /// The store's blocking take, if it has one (see [`BlockingTake`]).
    fn blocking(&self) -> Option<&dyn BlockingTake> {
        None
    }

    /// The store's listing of its queues, if it has one (see [`Inspect`]).
    fn inspect(&self) -> Option<&dyn Inspect> {
        None
    }

    /// The store's pipelined push, if it has one (see [`PipelinedPush`]).
    fn pipelined(&self) -> Option<&dyn PipelinedPush> {
        None
    }

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

    /// Appends `batch.entries` to the tail atomically, in order, and returns the id of the first
    /// (the others follow consecutively). Then applies retention, and notifies watchers.
    ///
    /// * If the tombstone matches `batch.generation`: `Closed`, nothing written.
    /// * If the queue does not exist (expired or lost): it is created from `batch.spec` first.
    /// * If `ready + entries` would exceed the stored `maxsize`: `QueueFull`, nothing written.
    /// * An empty batch is `InvalidOption("entries")`.
    /// * With [`PushBatch::dedupe`] (SPEC P10), a key seen within its window in this
    ///   incarnation: nothing written, the id that push got is returned (see [`Dedupe`]).
    /// * Each entry is routed with its own [`NewEntry::priority`] and
    ///   [`NewEntry::ordering_key`] (SPEC P11, P12; one batch may mix levels and keys): it is
    ///   takeable in its level, or waits behind its key's out entry (see [`Store::take`]);
    ///   reads, counts and `maxsize` treat it like any ready entry. Before anything else
    ///   (nothing written): an entry out of bounds is `InvalidOption` naming `priority` or
    ///   `ordering_key` (see [`NewEntry::check_routing`]), and so is any level or key when
    ///   `batch.spec` has retention (see [`check_retention`]).
    async fn push(&self, queue: &QueueName, batch: &PushBatch<'_>) -> Result<u64>;

    /// Schedules one message (SPEC P8): it stays invisible for `batch.delay` on the store's
    /// clock, then is promoted like a push (see "Delayed messages"), and watchers are notified
    /// now (so that idle consumers learn the new earliest due time).
    ///
    /// * If the tombstone matches `batch.generation`: `Closed`, nothing written.
    /// * If the queue does not exist: it is created from `batch.spec` first.
    /// * A delay above [`MAX_DELAY`]: `InvalidOption("delay")`, nothing written.
    /// * `maxsize` does not apply until the message is promoted.
    /// * When it comes due it is routed with the entry's [`NewEntry::priority`] and
    ///   [`NewEntry::ordering_key`] like a push made then (see [`Store::push`]), and both are
    ///   checked (bounds, retention of `batch.spec`) as a push checks them.
    async fn schedule(&self, queue: &QueueName, batch: &ScheduleBatch<'_>) -> Result<Scheduled>;

    /// Withdraws a scheduled message that has not come due yet. Returns whether it was still
    /// waiting (false once promoted, cancelled, or when the incarnation is gone).
    async fn cancel(&self, queue: &QueueName, scheduled: &Scheduled) -> Result<bool>;

    /// Takes up to `max` ready entries from the head, in order (SPEC Q10, Q13). Never waits: an
    /// empty queue gives an empty result. In reliable mode, pending entries whose visibility
    /// deadline has passed are first returned to the head of the ready messages (in id order),
    /// so they are taken again before newer ones. A missing queue gives an empty result.
    ///
    /// Order (SPEC P11, P12): returned entries (released, expired, restored) first in id
    /// order; then takeable entries by [`Entry::priority`], highest first, in id order within
    /// a level. Of each ordering key at most one entry is out (takeable, or pending in reliable
    /// mode); the others wait, oldest first. A reliable delivery keeps its key's gate through
    /// release, return, extend and visibility expiry, and passes it to the key's oldest waiting
    /// entry when acknowledged; an at-most-once take passes it at once (the next may come in the
    /// same take); a restore gives an entry back without touching the gate. An entry that
    /// becomes takeable by a gate passing wakes watchers ([`Notice::Available`]).
    async fn take(&self, queue: &QueueName, max: u32, mode: TakeMode) -> Result<Taken>;

    /// Puts entries that were taken in at-most-once mode from the incarnation `generation`
    /// back among the ready entries (SPEC Q12: what a consumer took and did not hand out when
    /// it stops). Atomic, and:
    ///
    /// * each entry goes back at its id's place: the ready entries stay in id order whatever
    ///   the order of the restores and of `entries` (entries a consumer took from the head come
    ///   back before everything pushed since, and entries several consumers took come back in
    ///   their original order however they are given back);
    /// * each entry comes back once: an id that is ready already is left as it is;
    /// * entries keep their ids, payloads, headers and delivery counts; `maxsize` does not
    ///   apply (these messages were counted already), and watchers are notified;
    /// * if `generation` was closed, nothing is written and the outcome is
    ///   [`Restored::Closed`]; if the queue does not exist or has another generation (the
    ///   caller's expired or was lost, and its messages with it, perhaps created again since),
    ///   nothing is written and the outcome is [`Restored::Gone`]. A restore never creates a
    ///   queue.
    ///
    /// Restoring nothing is [`Restored::Done`] without looking at the queue. Entries must come
    /// from at-most-once takes of this queue; the ids of entries pending in reliable mode are
    /// not looked for.
    async fn restore(
        &self,
        queue: &QueueName,
        generation: u64,
        entries: &[Entry],
    ) -> Result<Restored>;

    /// Settles reliable deliveries (SPEC Q13) atomically; one outcome per settlement, in order.
    async fn settle(&self, queue: &QueueName, ops: &[Settle]) -> Result<Vec<Settled>>;

    /// Reads up to `max` entries from `from` without removing anything (SPEC Q14). The cost
    /// should not grow with the position (a backend documents its cost).
    async fn read(&self, queue: &QueueName, from: Position, max: u32) -> Result<ReadBatch>;

    /// Registers, renews or removes a consumer (for the mixing rule, SPEC Q15).
    async fn consumers(&self, queue: &QueueName, op: ConsumerOp) -> Result<()>;

    /// Reports on a queue (exists, counts, spec) without changing it.
    async fn stat(&self, queue: &QueueName) -> Result<QueueStat>;

    /// Removes every ready and pending message but keeps the queue, its spec and its metadata
    /// (SPEC Q5). Ids keep increasing afterwards.
    async fn flush(&self, queue: &QueueName) -> Result<()>;

    /// Reads or writes the queue's string metadata (SPEC Q5). Reading a queue that does not
    /// exist gives `Value(None)` / `All(vec![])`; writing to one fails with `NotAttached` and
    /// writes nothing (callers write only while attached).
    async fn metadata(&self, queue: &QueueName, op: MetadataOp) -> Result<Metadata>;

    /// Starts watching a queue. The stream yields [`Notice`]s until it is dropped or the store
    /// disconnects. Notices may be coalesced; consumers must re-check after each one. Callers
    /// watch **before** their first take, so that nothing pushed in between is missed.
    ///
    /// A store may send [`Notice::Available`] for pushes only while someone waits for it: a
    /// push must notify when, in the last 30 seconds, a [`take`](Store::take) or
    /// [`read`](Store::read) of the queue came back with fewer entries than asked for (the
    /// caller is at the end and waits for a notice next); otherwise it may stay silent (the
    /// Redis store then saves the publish). Consumers that wait for notices therefore wait only
    /// after such a take or read, take or read again at least every few seconds while idle,
    /// and at once after [`Notice::Reset`] (the store reconnected, perhaps to a server that
    /// lost the record of that take: a restart, a failover). Releases, returns, restores and
    /// closes are always told.
    async fn watch(&self, queue: &QueueName) -> Result<BoxStream<'static, Notice>>;

    /// One atomic operation on the persisted object `object` (SPEC P3); see [`ObjectOp`] for
    /// what each does and [`ObjectReply`] for its outcome. Objects live apart from queues (a
    /// queue and an object may share a name) and expire `ttl` after their last save or touch.
    /// A save with a zero ttl is `InvalidOption("ttl")` and writes nothing.
    async fn object(&self, object: &ObjectName, op: ObjectOp) -> Result<ObjectReply>;
}
