//! A message as the memory store keeps it, and how it becomes an [`Entry`] again.

use crate::clock::deadline;
use busmq_core::Headers;
use busmq_core::store::{DeadLetter, Entry, Receipt};
use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// A message as stored: the entry (its headers shared, not copied), its level and ordering key
/// (SPEC P11, P12), plus when it was pushed (for `max_age` retention).
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) id: u64,
    pub(crate) deliveries: u32,
    pub(crate) payload: Bytes,
    pub(crate) dead: Option<Arc<DeadLetter>>,
    pub(crate) headers: Option<Arc<Headers>>,
    pub(crate) priority: u8,
    pub(crate) key: Option<Arc<str>>,
    pub(crate) pushed_at: Instant,
}

impl Stored {
    pub(crate) fn to_entry(&self) -> Entry {
        Entry {
            id: self.id,
            deliveries: self.deliveries,
            payload: self.payload.clone(),
            dead: self.dead.clone(),
            headers: self.headers.clone(),
            // Pending entries are found by id and delivery number: nothing else to carry.
            receipt: Receipt::none(),
            priority: self.priority,
            ordering_key: self.key.clone(),
        }
    }

    /// The entry of an at-most-once take. Its receipt carries the push time, so that a restore
    /// gives the message back its own age (`max_age` retention), not the time it came back.
    pub(crate) fn into_entry(self) -> Entry {
        Entry {
            id: self.id,
            deliveries: self.deliveries,
            payload: self.payload,
            dead: self.dead,
            headers: self.headers,
            receipt: pushed_receipt(self.pushed_at),
            priority: self.priority,
            ordering_key: self.key,
        }
    }
}

/// The token of a receipt that holds a push time.
const PUSHED: &str = "pushed";

/// What push times are counted from, in receipts (tokio's clock has no fixed origin): an hour
/// (or as much as the monotonic clock allows) before the real time of the first use. Push times
/// before it would all read as the epoch itself, making an old message look younger. Not
/// `tokio::time::Instant::now()`: under paused test clocks every runtime has its own time, and
/// an epoch taken from a runtime whose clock had been advanced far would be later than every
/// push time of the others (a restored message then lost its age).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = std::time::Instant::now();
        let margin = [3600, 60, 1].iter().find_map(|&s| now.checked_sub(Duration::from_secs(s)));
        Instant::from_std(margin.unwrap_or(now))
    })
}

fn pushed_receipt(at: Instant) -> Receipt {
    static TOKEN: OnceLock<Arc<str>> = OnceLock::new();
    let token = TOKEN.get_or_init(|| Arc::from(PUSHED)).clone();
    let nanos = at.saturating_duration_since(epoch()).as_nanos();
    Receipt::new(token, u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The push time an at-most-once take put in `receipt`, if it holds one.
pub(crate) fn push_time(receipt: &Receipt) -> Option<Instant> {
    (receipt.token() == Some(PUSHED))
        .then(|| deadline(epoch(), Duration::from_nanos(receipt.index())))
}
