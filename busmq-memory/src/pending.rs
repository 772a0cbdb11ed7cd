//! Reliable deliveries that were taken and not yet settled, with their visibility deadlines.

use crate::stored::Stored;
use std::collections::{BTreeSet, HashMap};
use tokio::time::Instant;

#[derive(Debug)]
struct Held {
    stored: Stored,
    visible_at: Instant,
}

/// Pending entries by id, plus an index by deadline so that finding the expired ones costs
/// only what expired, not the whole pending set.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    held: HashMap<u64, Held>,
    deadlines: BTreeSet<(Instant, u64)>,
}

impl Pending {
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    pub(crate) fn clear(&mut self) {
        self.held.clear();
        self.deadlines.clear();
    }

    /// Holds `stored` (whose `deliveries` is already the count of this delivery) until
    /// `visible_at`.
    pub(crate) fn hold(&mut self, stored: Stored, visible_at: Instant) {
        let id = stored.id;
        self.deadlines.insert((visible_at, id));
        if let Some(old) = self.held.insert(id, Held { stored, visible_at }) {
            self.deadlines.remove(&(old.visible_at, id));
        }
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.held.contains_key(&id)
    }

    /// Whether `id` is pending with exactly this delivery number.
    pub(crate) fn matches(&self, id: u64, delivery: u32) -> bool {
        self.held.get(&id).is_some_and(|h| h.stored.deliveries == delivery)
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<Stored> {
        let held = self.held.remove(&id)?;
        self.deadlines.remove(&(held.visible_at, id));
        Some(held.stored)
    }

    /// Moves the visibility deadline of a pending entry.
    pub(crate) fn extend(&mut self, id: u64, visible_at: Instant) {
        if let Some(held) = self.held.get_mut(&id) {
            self.deadlines.remove(&(held.visible_at, id));
            held.visible_at = visible_at;
            self.deadlines.insert((visible_at, id));
        }
    }

    /// How long after `now` the earliest deadline comes (zero when it has passed).
    pub(crate) fn next_expiry(&self, now: Instant) -> Option<std::time::Duration> {
        self.deadlines.first().map(|&(at, _)| at.saturating_duration_since(now))
    }

    /// Removes and returns every entry whose deadline is `now` or earlier, in id order.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Stored> {
        let mut expired = Vec::new();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(held) = self.held.remove(&id) {
                expired.push(held.stored);
            }
        }
        expired.sort_unstable_by_key(|s| s.id);
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn stored(id: u64, deliveries: u32, now: Instant) -> Stored {
        let payload = Bytes::new();
        let (dead, headers, priority, key) = (None, None, 0, None);
        Stored { id, deliveries, payload, dead, headers, priority, key, pushed_at: now }
    }

    #[test]
    fn expired_entries_come_back_in_id_order_and_extend_moves_deadlines() {
        let now = Instant::now();
        let sec = Duration::from_secs(1);
        let mut p = Pending::default();
        p.hold(stored(7, 1, now), now + sec);
        p.hold(stored(3, 1, now), now + 2 * sec);
        p.hold(stored(5, 2, now), now + sec);
        assert!(p.matches(5, 2));
        assert!(!p.matches(5, 1));
        assert_eq!(p.next_expiry(now), Some(sec));
        p.extend(7, now + 10 * sec);
        let ids: Vec<u64> = p.take_expired(now + 2 * sec).iter().map(|s| s.id).collect();
        assert_eq!(ids, [3, 5]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.next_expiry(now + 3 * sec), Some(7 * sec), "the extended deadline");
        assert!(p.take_expired(now + 9 * sec).is_empty());
        assert_eq!(p.remove(7).map(|s| s.id), Some(7));
        assert_eq!(p.len(), 0);
        assert!(p.deadlines.is_empty());
        assert_eq!(p.next_expiry(now), None);
    }
}
