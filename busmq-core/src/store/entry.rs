//! Messages as they cross the Store boundary: new entries going in, stored entries coming out
//! with their receipts, and the settlements that name them again.

use super::queue::QueueSpec;
use crate::headers::Headers;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Backend state that travels with a taken entry and comes back with its [`Settle`] (or, for
/// [`Taken::resume`], with the next blocking take). Opaque to the core: a backend puts in what
/// it needs to find the entry again (Redis: the pending batch and the index in it) and the core
/// only carries it. Empty for backends that need nothing (memory).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Receipt {
    token: Option<Arc<str>>,
    index: u64,
}

impl Receipt {
    /// A receipt holding a token and an index.
    pub fn new(token: impl Into<Arc<str>>, index: u64) -> Self {
        Receipt { token: Some(token.into()), index }
    }

    /// The empty receipt.
    pub fn none() -> Self {
        Receipt::default()
    }

    /// The token, when the receipt has one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The shared token itself (cheap to clone into other receipts).
    pub fn shared_token(&self) -> Option<&Arc<str>> {
        self.token.as_ref()
    }

    /// The index (0 when the receipt has none).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Whether the receipt carries nothing.
    pub fn is_empty(&self) -> bool {
        self.token.is_none()
    }
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
    /// Why: `"max_deliveries"`, `"max_deliveries: <text>"` (the last failure, see
    /// `Delivery::fail`), `"rejected: <text>"`, `"undecodable: <text>"`.
    pub reason: String,
}

/// A message to append with [`Store::push`](super::Store::push).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// The encoded message.
    pub payload: Bytes,
    /// Set only for messages pushed to a dead-letter queue.
    pub dead: Option<Arc<DeadLetter>>,
    /// The message's headers; `None` for a message without any (never an empty map), which a
    /// store then keeps without any cost for them.
    pub headers: Option<Arc<Headers>>,
    /// The priority level (SPEC P12): 0 (the default, lowest) to [`MAX_PRIORITY`]. Takeable
    /// entries are taken by level, highest first, and in id order within a level; returned
    /// entries still come before all of them.
    pub priority: u8,
    /// The ordering key (SPEC P11): at most one entry of a key is out at a time (takeable, or
    /// taken reliably and not yet acknowledged); the others wait, in id order, counted and
    /// read like any ready entry.
    pub ordering_key: Option<Arc<str>>,
}

impl NewEntry {
    /// An ordinary message: level 0, no ordering key.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        NewEntry {
            payload: payload.into(),
            dead: None,
            headers: None,
            priority: 0,
            ordering_key: None,
        }
    }

    /// The message at level `priority` (SPEC P12).
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// The message with ordering key `key` (SPEC P11; `None`: none).
    pub fn with_ordering_key(mut self, key: Option<Arc<str>>) -> Self {
        self.ordering_key = key;
        self
    }

    /// Whether it has a level above 0 or an ordering key (so is routed among the ready
    /// entries rather than appended like a plain push).
    pub fn is_routed(&self) -> bool {
        self.priority > 0 || self.ordering_key.is_some()
    }

    /// Checks its level and ordering key against the bounds (SPEC P11, P12): a level above
    /// [`MAX_PRIORITY`] is `InvalidOption("priority")`; a key of 0 or more than
    /// [`MAX_ORDERING_KEY`] bytes, or with a NUL byte, is `InvalidOption("ordering_key")`.
    pub fn check_routing(&self) -> crate::Result<()> {
        check_routing(self.priority, self.ordering_key.as_deref())
    }

    /// The message with `headers` (none when they are empty).
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers.into_shared();
        self
    }
}

/// One push: the entries and what the store needs to write them.
#[derive(Clone, Copy, Debug)]
pub struct PushBatch<'a> {
    /// The generation the caller is attached to (a closed one makes the push fail).
    pub generation: u64,
    /// The spec to create the queue from if it vanished.
    pub spec: &'a QueueSpec,
    /// The entries, in order.
    pub entries: &'a [NewEntry],
    /// The newest id the caller has seen in this queue (its previous push), if any: a backend
    /// that proposes ids may start above it.
    pub after: Option<u64>,
    /// Producer dedupe (SPEC P10): see [`Dedupe`].
    pub dedupe: Option<Dedupe<'a>>,
}

/// The highest priority level (SPEC P12); levels are `0..=MAX_PRIORITY`.
pub const MAX_PRIORITY: u8 = 9;

/// The longest ordering key, in bytes (SPEC P11).
pub const MAX_ORDERING_KEY: usize = 1024;

/// Checks a level and an ordering key against the bounds (see [`NewEntry::check_routing`]).
pub fn check_routing(priority: u8, key: Option<&str>) -> crate::Result<()> {
    if priority > MAX_PRIORITY {
        return Err(crate::Error::invalid_option("priority", "a priority level is 0 to 9"));
    }
    if let Some(key) = key
        && (key.is_empty() || key.len() > MAX_ORDERING_KEY || key.contains('\0'))
    {
        let reason = "an ordering key has 1 to 1024 bytes and no NUL byte";
        return Err(crate::Error::invalid_option("ordering_key", reason));
    }
    Ok(())
}

/// Refuses routed entries on a queue with retention (SPEC P11, P12, rule O8): a replay queue
/// is read, not taken, so levels and key gates would mean nothing there. `InvalidOption`
/// naming `priority` when one has a level, else `ordering_key`.
pub fn check_retention<'e>(
    spec: &QueueSpec,
    entries: impl IntoIterator<Item = &'e NewEntry>,
) -> crate::Result<()> {
    let retained = spec.retention.max_len.is_some() || spec.retention.max_age.is_some();
    if !retained {
        return Ok(());
    }
    let (mut level, mut key) = (false, false);
    for e in entries {
        level |= e.priority > 0;
        key |= e.ordering_key.is_some();
    }
    let reason = "a queue with retention (replay) is not taken in order";
    if level {
        return Err(crate::Error::invalid_option("priority", reason));
    }
    if key {
        return Err(crate::Error::invalid_option("ordering_key", reason));
    }
    Ok(())
}

/// A dedupe key for one push (SPEC P10). When a push with the same key to the same queue
/// incarnation was written less than its `window` ago, [`Store::push`](super::Store::push)
/// writes nothing and returns that push's first id. Checked after the tombstone (a closed
/// generation is still `Closed`) and before `maxsize` (a repeated push of a message already
/// stored is not refused as full). The key remembers the push, not the message: it still
/// answers after the message was consumed or flushed, and is forgotten when its window ends or
/// the incarnation is gone (closed, expired), so what the store keeps is bounded by the pushes
/// of one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dedupe<'a> {
    /// The key, unique per message for the producer (non-empty, at most 1 KiB).
    pub key: &'a str,
    /// How long the key is remembered after the push that wrote it (at least 1 ms).
    pub window: Duration,
}

impl<'a> PushBatch<'a> {
    /// A batch of `entries` for the incarnation `generation` created from `spec`.
    pub fn new(generation: u64, spec: &'a QueueSpec, entries: &'a [NewEntry]) -> Self {
        PushBatch { generation, spec, entries, after: None, dedupe: None }
    }
}

/// A stored message as returned by [`Store::take`](super::Store::take) and
/// [`Store::read`](super::Store::read).
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
    /// The headers it was pushed with (`None`: none).
    pub headers: Option<Arc<Headers>>,
    /// What the backend needs back to settle this delivery (reliable takes); empty otherwise.
    pub receipt: Receipt,
    /// The priority level it was pushed (or scheduled) with (SPEC P12); 0 by default.
    pub priority: u8,
    /// The ordering key it was pushed (or scheduled) with (SPEC P11), if any.
    pub ordering_key: Option<Arc<str>>,
}

impl Entry {
    /// An entry without dead-letter information, headers, receipt, priority or ordering key.
    pub fn new(id: u64, deliveries: u32, payload: impl Into<Bytes>) -> Self {
        Entry {
            id,
            deliveries,
            payload: payload.into(),
            dead: None,
            headers: None,
            receipt: Receipt::none(),
            priority: 0,
            ordering_key: None,
        }
    }
}

/// How [`Store::take`](super::Store::take) removes what it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeMode {
    /// Remove the entries from the queue (SPEC Q10). Their `deliveries` are returned unchanged.
    AtMostOnce,
    /// Move the entries to pending (SPEC Q13), each with visibility deadline `now + visibility`
    /// and `deliveries + 1`.
    Reliable {
        /// How long a taken entry stays invisible to other takes unless settled or extended.
        visibility: Duration,
        /// An entry about to be delivered for more than `max_deliveries` times is not returned
        /// in [`Taken::entries`] but in [`Taken::dead`] (claimed like a delivery, with the
        /// incremented count), so that the caller moves it to the dead-letter queue and then
        /// acknowledges it. If the caller dies first, its visibility passes and it is offered as
        /// dead again: nothing is lost.
        max_deliveries: u32,
    },
}

/// The result of [`Store::take`](super::Store::take).
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
    /// For [`BlockingTake::take_wait`](super::BlockingTake::take_wait): where the next wait on
    /// this queue may resume (empty when the backend has nothing to say).
    pub resume: Receipt,
    /// How long until the earliest delayed message of the queue comes due (SPEC P8), as seen
    /// by this take; `None` when none waits.
    pub next_due: Option<Duration>,
    /// Reliable takes: how long until the earliest pending delivery of the queue (any
    /// consumer's) reaches its visibility deadline, as seen by this take; `None` when nothing
    /// is pending, and for at-most-once takes. A backend may report a deadline that an
    /// extension has since moved later (the caller then takes again early and learns the new
    /// one), never one later than the true one: an idle consumer takes again then, so that a
    /// dead consumer's deliveries come back at their deadline (SPEC Q13).
    pub next_expiry: Option<Duration>,
}

/// What a [`Settle`] does with a reliable delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Processing succeeded: remove the entry.
    Ack,
    /// Give the entry back now: it returns to the head of the ready messages, in id order among
    /// other returned entries, keeping its delivery count.
    Release,
    /// The entry was taken but never handed to user code: like `Release`, but the delivery
    /// count goes back down by one (a stop must not count as a delivery attempt).
    Return,
    /// Push the visibility deadline to `now + by`.
    Extend(Duration),
}

/// One settlement of a reliable delivery, for [`Store::settle`](super::Store::settle).
/// `delivery` is the [`Entry::deliveries`] value of the take that handed the entry out and
/// `receipt` its [`Entry::receipt`]; a settlement of a delivery that is no longer pending as
/// such (it was redelivered, flushed or closed meanwhile) is stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settle {
    /// The message id.
    pub id: u64,
    /// The delivery number being settled.
    pub delivery: u32,
    /// The receipt the take gave.
    pub receipt: Receipt,
    /// What to do.
    pub action: Settlement,
}

impl Settle {
    /// The settlement `action` of `entry` as it was taken.
    pub fn of(entry: &Entry, action: Settlement) -> Self {
        Settle { id: entry.id, delivery: entry.deliveries, receipt: entry.receipt.clone(), action }
    }
}

/// Outcome of one [`Settle`], in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Done.
    Done,
    /// The entry is not pending with that delivery any more (its visibility passed and it was
    /// redelivered, or it was flushed/closed). Nothing was changed.
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

/// The result of [`Store::read`](super::Store::read).
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
    /// How long until the earliest delayed message of the queue comes due (SPEC P8), as seen
    /// by this read; `None` when none waits.
    pub next_due: Option<Duration>,
}
