//! The schedule of one queue incarnation (SPEC P8): delayed messages by due time on tokio's
//! clock (so tests may pause and advance it), ties in schedule order.

use busmq_core::store::NewEntry;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// Delayed messages not yet promoted.
#[derive(Debug, Default)]
pub(crate) struct Delayed {
    /// Keyed by due time, then by sequence number, so iteration is promotion order.
    waiting: BTreeMap<(Instant, u64), NewEntry>,
    /// Where each sequence number waits, so that a cancel is O(log n) from its handle.
    due_of: HashMap<u64, Instant>,
    last_seq: u64,
}

impl Delayed {
    /// Adds `entry`, due at `due`; returns its sequence number.
    pub(crate) fn add(&mut self, entry: NewEntry, due: Instant) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        self.waiting.insert((due, seq), entry);
        self.due_of.insert(seq, due);
        seq
    }

    /// Removes the message `seq` if it still waits.
    pub(crate) fn cancel(&mut self, seq: u64) -> bool {
        match self.due_of.remove(&seq) {
            Some(due) => self.waiting.remove(&(due, seq)).is_some(),
            None => false,
        }
    }

    /// Removes the message `seq` if it is not due by `now` (one that is due counts as
    /// delivered, whether promoted yet or not).
    pub(crate) fn cancel_waiting(&mut self, seq: u64, now: Instant) -> bool {
        match self.due_of.get(&seq) {
            Some(&due) if due > now => self.cancel(seq),
            _ => false,
        }
    }

    /// Removes and returns the messages due by `now`, in promotion order.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<NewEntry> {
        let mut due = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), entry) = entry.remove_entry();
            self.due_of.remove(&seq);
            due.push(entry);
        }
        due
    }

    /// How long from `now` until the earliest message comes due.
    pub(crate) fn next_due(&self, now: Instant) -> Option<Duration> {
        self.waiting.first_key_value().map(|((due, _), _)| due.saturating_duration_since(now))
    }

    pub(crate) fn len(&self) -> u64 {
        self.waiting.len() as u64
    }

    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
        self.due_of.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_order_then_schedule_order_and_cancel() {
        let t0 = Instant::now();
        let mut d = Delayed::default();
        let later = d.add(NewEntry::new("later"), t0 + Duration::from_secs(2));
        let a = d.add(NewEntry::new("a"), t0 + Duration::from_secs(1));
        let b = d.add(NewEntry::new("b"), t0 + Duration::from_secs(1));
        assert!(a < b && later < a);
        assert_eq!(d.next_due(t0), Some(Duration::from_secs(1)));
        assert!(d.take_due(t0).is_empty());
        let due = d.take_due(t0 + Duration::from_secs(1));
        assert_eq!(due.iter().map(|e| &e.payload[..]).collect::<Vec<_>>(), [b"a", b"b"]);
        assert!(!d.cancel(a), "promoted already");
        assert!(d.cancel(later));
        assert!(!d.cancel(later));
        assert_eq!((d.len(), d.next_due(t0)), (0, None));
    }
}
