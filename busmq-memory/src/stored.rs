//! A message as the memory store keeps it, and how it becomes an [`Entry`] again.

use busmq_core::Headers;
use busmq_core::store::{DeadLetter, Entry, Receipt};
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

/// A message as stored: the entry (its headers shared, not copied) plus when it was pushed (for
/// `max_age` retention).
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) id: u64,
    pub(crate) deliveries: u32,
    pub(crate) payload: Bytes,
    pub(crate) dead: Option<Arc<DeadLetter>>,
    pub(crate) headers: Option<Arc<Headers>>,
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
        }
    }

    pub(crate) fn into_entry(self) -> Entry {
        Entry {
            id: self.id,
            deliveries: self.deliveries,
            payload: self.payload,
            dead: self.dead,
            headers: self.headers,
            receipt: Receipt::none(),
        }
    }
}
