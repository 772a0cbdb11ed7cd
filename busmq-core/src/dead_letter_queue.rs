//! Dead letters as an operator sees them (SPEC P7): list what is in a dead-letter queue with
//! why each message got there and how often it had been delivered, and move messages back to
//! the queue they came from with a fresh delivery count.
//!
//! The dead-letter queue is an ordinary queue, so this is built from Store operations: a list
//! is a replay read (it removes nothing); a redrive takes dead letters reliably, pushes the
//! chosen ones to their source queue and only then acknowledges them, and gives the others
//! back where they were. A redrive interrupted between the push and the acknowledgement
//! leaves the message in both queues (at least once, never lost).

use crate::context::BusInner;
use crate::error::Result;
use crate::headers::Headers;
use crate::name::QueueName;
use crate::queue::Queue;
use crate::store::{Entry, NewEntry, Position, Settle, Settlement, TakeMode};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Dead letters taken per store call while redriving.
const BATCH: u32 = 256;
/// How long a redrive may hold the dead letters it took before they are offered again.
const HOLD: Duration = Duration::from_secs(60);

/// One message in a dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadMessage {
    /// Its id in the dead-letter queue (what [`DeadLetterQueue::redrive`] takes).
    pub id: u64,
    /// The queue it was dead-lettered from (where a redrive puts it back).
    pub source: String,
    /// Its id in that queue.
    pub source_id: u64,
    /// How many times it had been delivered there.
    pub deliveries: u32,
    /// Why it was dead-lettered (`max_deliveries`, `rejected: ...`).
    pub reason: String,
    /// The message as stored.
    pub payload: Bytes,
    /// The headers it was pushed with (SPEC P6; a redrive keeps them).
    pub headers: Headers,
}

impl DeadMessage {
    fn from_entry(entry: Entry) -> Option<DeadMessage> {
        let dead = entry.dead?;
        Some(DeadMessage {
            id: entry.id,
            source: dead.queue.clone(),
            source_id: dead.id,
            deliveries: dead.deliveries,
            reason: dead.reason.clone(),
            payload: entry.payload,
            headers: entry.headers.map(Arc::unwrap_or_clone).unwrap_or_default(),
        })
    }
}

/// What a redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redriven {
    /// How many messages went back to their source queues.
    pub moved: u64,
    /// The ids asked for that were not in the dead-letter queue.
    pub missing: Vec<u64>,
}

/// A handle on one dead-letter queue (from [`Bus::dead_letters`](crate::Bus::dead_letters)).
#[derive(Clone)]
pub struct DeadLetterQueue {
    bus: Arc<BusInner>,
    name: QueueName,
}

impl fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterQueue").field("name", &self.name).finish()
    }
}

/// Which dead letters a redrive moves.
enum Pick<'a> {
    All,
    Ids(&'a BTreeSet<u64>),
}

impl DeadLetterQueue {
    pub(crate) fn new(bus: Arc<BusInner>, name: QueueName) -> Self {
        DeadLetterQueue { bus, name }
    }

    /// The dead-letter queue's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// How many dead letters wait (not counting those a redrive holds right now).
    pub async fn count(&self) -> Result<u64> {
        self.bus.ensure_connected()?;
        Ok(self.bus.store.stat(&self.name).await?.count)
    }

    /// Up to `max` dead letters from the oldest, without removing anything.
    pub async fn list(&self, max: u32) -> Result<Vec<DeadMessage>> {
        self.list_after(None, max).await
    }

    /// Up to `max` dead letters after the one with id `after` (paging through a long queue).
    /// Entries without dead-letter information (pushed there by hand) are skipped.
    /// `max` is at most [`MAX_READ`](crate::queue::MAX_READ).
    pub async fn list_after(&self, after: Option<u64>, max: u32) -> Result<Vec<DeadMessage>> {
        crate::queue::check_read_max(max)?;
        self.bus.ensure_connected()?;
        let from = after.map_or(Position::Start, Position::AfterId);
        let batch = self.bus.store.read(&self.name, from, max).await?;
        Ok(batch.entries.into_iter().filter_map(DeadMessage::from_entry).collect())
    }

    /// Moves every dead letter back to the queue it came from, at that queue's tail, with a
    /// fresh delivery count (and a new id there).
    pub async fn redrive_all(&self) -> Result<Redriven> {
        self.redrive_picked(Pick::All).await
    }

    /// Moves the dead letters with these ids (as [`DeadMessage::id`] gives them) back to their
    /// queues; the others stay, in order. Ids not found are reported in [`Redriven::missing`].
    pub async fn redrive(&self, ids: &[u64]) -> Result<Redriven> {
        let wanted: BTreeSet<u64> = ids.iter().copied().collect();
        let mut done = self.redrive_picked(Pick::Ids(&wanted)).await?;
        done.missing.sort_unstable();
        Ok(done)
    }

    async fn redrive_picked(&self, pick: Pick<'_>) -> Result<Redriven> {
        self.bus.ensure_connected()?;
        let store = &self.bus.store;
        let mode = TakeMode::Reliable { visibility: HOLD, max_deliveries: u32::MAX };
        let mut moved = 0;
        let mut found = BTreeSet::new();
        // What is not moved is held until the walk ends and then given back, so that the walk
        // does not meet it again (and it keeps its place). A walk longer than `HOLD` would meet
        // it again: the ids seen end the walk then.
        let mut back = Vec::new();
        let mut seen = BTreeSet::new();
        let walked = async {
            loop {
                if let Pick::Ids(ids) = pick {
                    if found.len() == ids.len() {
                        break;
                    }
                }
                let taken = store.take(&self.name, BATCH, mode).await?;
                if taken.entries.is_empty() {
                    break;
                }
                let mut by_source: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
                let mut again = false;
                for entry in taken.entries {
                    again |= !seen.insert(entry.id);
                    let chosen = match pick {
                        Pick::All => true,
                        Pick::Ids(ids) => ids.contains(&entry.id),
                    };
                    match (&entry.dead, chosen) {
                        (Some(dead), true) => {
                            found.insert(entry.id);
                            by_source.entry(dead.queue.clone()).or_default().push(entry);
                        }
                        _ => back.push(Settle::of(&entry, Settlement::Return)),
                    }
                }
                for (source, entries) in by_source {
                    moved += self.move_back(&source, entries).await?;
                }
                if again {
                    break;
                }
            }
            Ok::<_, crate::Error>(())
        };
        let walked = walked.await;
        for chunk in back.chunks(BATCH as usize) {
            store.settle(&self.name, chunk).await?;
        }
        walked?;
        let missing = match pick {
            Pick::All => Vec::new(),
            Pick::Ids(ids) => ids.difference(&found).copied().collect(),
        };
        Ok(Redriven { moved, missing })
    }

    /// Pushes `entries` to `source` as new messages (with their headers), then acknowledges
    /// them here.
    async fn move_back(&self, source: &str, entries: Vec<Entry>) -> Result<u64> {
        let queue = Queue::new(self.bus.clone(), QueueName::new(source)?);
        queue.attach().await?;
        let fresh: Vec<NewEntry> = entries
            .iter()
            // At level 0 without a key (SPEC O9): the key's later messages went on already.
            .map(|e| NewEntry { headers: e.headers.clone(), ..NewEntry::new(e.payload.clone()) })
            .collect();
        let pushed = queue.push_entries(fresh).await;
        let detached = queue.detach().await;
        pushed?;
        detached?;
        let acks: Vec<Settle> = entries.iter().map(|e| Settle::of(e, Settlement::Ack)).collect();
        self.bus.store.settle(&self.name, &acks).await?;
        Ok(entries.len() as u64)
    }
}
