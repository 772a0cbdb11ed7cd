//! One incarnation of a queue: its spec, expiry, ready and pending messages, and metadata.
//!
//! Ready messages are kept by id (replay reads, counts and retention see them in id order),
//! and [`Ready`] keeps apart the order takes find them in (returned first, then by level) and
//! the per-key gates (SPEC P11, P12).

use crate::clock::IdClock;
use crate::clock::deadline;
use crate::dedupe::DedupeKeys;
use crate::delayed::Delayed;
use crate::pending::Pending;
use crate::ready::Ready;
pub(crate) use crate::stored::Stored;
use crate::stored::push_time;
use busmq_core::store::{
    Entry, NewEntry, Position, QueueSpec, QueueStat, ReadBatch, Settle, Settled, Settlement,
    TakeMode, Taken,
};
use std::collections::BTreeMap;
use tokio::time::Instant;

/// The live state of one queue incarnation.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub(crate) generation: u64,
    pub(crate) spec: QueueSpec,
    pub(crate) metadata: BTreeMap<String, String>,
    expires_at: Instant,
    last_id: Option<u64>,
    ready: Ready,
    pending: Pending,
    /// Producer dedupe keys (SPEC P10): they live and die with the incarnation.
    pub(crate) dedupe: DedupeKeys,
    /// Delayed messages (SPEC P8): they live and die with the incarnation too.
    pub(crate) delayed: Delayed,
    /// Whether an at-most-once take passed a key's gate to a waiting entry since
    /// [`QueueState::passed_gates`] was last asked (watchers are then woken, like for a push).
    passed: bool,
}

impl QueueState {
    pub(crate) fn new(generation: u64, spec: QueueSpec, now: Instant) -> Self {
        QueueState {
            generation,
            spec,
            metadata: BTreeMap::new(),
            expires_at: deadline(now, spec.ttl),
            last_id: None,
            ready: Ready::default(),
            pending: Pending::default(),
            dedupe: DedupeKeys::default(),
            delayed: Delayed::default(),
            passed: false,
        }
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }

    /// Pushes the expiry to `now + ttl` (attach, renew, detach).
    pub(crate) fn touch(&mut self, now: Instant) {
        self.expires_at = deadline(now, self.spec.ttl);
    }

    /// Applies retention. `pushed_at` grows with the id (see [`QueueState::restore`]), so the
    /// messages that are too old form a prefix.
    fn trim(&mut self, now: Instant) {
        let retention = self.spec.retention;
        if let Some(max_len) = retention.max_len {
            let max_len = usize::try_from(max_len).unwrap_or(usize::MAX);
            while self.ready.len() > max_len {
                self.ready.remove_oldest();
            }
        }
        if let Some(max_age) = retention.max_age {
            let too_old = |s: &Stored| now.saturating_duration_since(s.pushed_at) > max_age;
            while self.ready.first().is_some_and(too_old) {
                self.ready.remove_oldest();
            }
        }
    }

    /// Whether `n` more ready messages fit under `maxsize` (after retention).
    pub(crate) fn has_room(&mut self, n: usize, now: Instant) -> bool {
        self.trim(now);
        room_for(self.ready.len(), n, self.spec.maxsize)
    }

    /// Appends `entries` with ids `first_id..`, each routed with its own level and ordering
    /// key, then applies retention.
    pub(crate) fn append(&mut self, entries: &[NewEntry], first_id: u64, now: Instant) {
        for (id, entry) in (first_id..).zip(entries) {
            self.ready.push(Stored {
                id,
                deliveries: 0,
                payload: entry.payload.clone(),
                dead: entry.dead.clone(),
                headers: entry.headers.clone(),
                priority: entry.priority,
                key: entry.ordering_key.clone(),
                pushed_at: now,
            });
            self.last_id = Some(id);
        }
        self.trim(now);
    }

    /// Appends the delayed messages due by `now` with fresh ids, as if pushed now (SPEC P8);
    /// `maxsize` does not apply (they were accepted when scheduled). Returns whether any were.
    pub(crate) fn promote(&mut self, ids: &IdClock, now: Instant) -> bool {
        let due = self.delayed.take_due(now);
        if due.is_empty() {
            return false;
        }
        let first = ids.next(due.len() as u64);
        // Each routed like a push of this moment (SPEC P11, P12: behind its key's out entry).
        self.append(&due, first, now);
        true
    }

    pub(crate) fn take(&mut self, max: u32, mode: TakeMode, now: Instant) -> Taken {
        if let TakeMode::Reliable { .. } = mode {
            // An expired delivery keeps its key's gate: it comes back before the key's next.
            for stored in self.pending.take_expired(now) {
                self.ready.give_back(stored);
            }
        }
        self.trim(now);
        let n = usize::try_from(max).unwrap_or(usize::MAX).min(self.ready.len());
        let mut taken = Taken::default();
        match mode {
            TakeMode::AtMostOnce => {
                while taken.entries.len() < n {
                    let Some(stored) = self.ready.next() else { break };
                    // The entry is gone: its key's next may go out now (and in this take).
                    if let Some(key) = &stored.key {
                        self.passed |= self.ready.pass(key, stored.id);
                    }
                    taken.entries.push(stored.into_entry());
                }
            }
            TakeMode::Reliable { visibility, max_deliveries } => {
                let visible_at = deadline(now, visibility);
                taken.entries.reserve(n);
                while taken.entries.len() + taken.dead.len() < n {
                    let Some(mut stored) = self.ready.next() else { break };
                    stored.deliveries = stored.deliveries.saturating_add(1);
                    if stored.deliveries > max_deliveries {
                        taken.dead.push(stored.to_entry());
                    } else {
                        taken.entries.push(stored.to_entry());
                    }
                    self.pending.hold(stored, visible_at);
                }
                taken.next_expiry = self.pending.next_expiry(now);
            }
        }
        taken.next_due = self.delayed.next_due(now);
        taken
    }

    /// Whether takes made entries takeable by passing gates since the last call.
    pub(crate) fn passed_gates(&mut self) -> bool {
        std::mem::take(&mut self.passed)
    }

    /// Puts entries back at their id position (the head, for entries taken from the head).
    /// Returns whether anything was put back.
    ///
    /// A restored message keeps its push time (which an at-most-once take put in its receipt),
    /// so it ages like the others; held between its neighbours' (and dated like the message
    /// that follows it when it has none), `pushed_at` keeps growing with the id, which makes
    /// the messages too old for retention a prefix.
    pub(crate) fn restore(&mut self, entries: &[Entry], now: Instant) -> bool {
        let mut any = false;
        for entry in entries {
            if self.pending.contains(entry.id) || self.ready.contains(entry.id) {
                continue;
            }
            let next = self.ready.from(entry.id).next();
            let next = next.map_or(now, |next| next.pushed_at.min(now));
            let earliest = self.ready.before(entry.id);
            let earliest = earliest.map(|prev| prev.pushed_at.min(next));
            let own = push_time(&entry.receipt).unwrap_or(next).min(next);
            let pushed_at = earliest.map_or(own, |earliest| own.max(earliest));
            // Takeable again at once, its key's gate untouched (SPEC P11: it may be out
            // together with the key's next entry, which went out when it was taken).
            any |= self.ready.give_back(Stored {
                id: entry.id,
                deliveries: entry.deliveries,
                payload: entry.payload.clone(),
                dead: entry.dead.clone(),
                headers: entry.headers.clone(),
                priority: entry.priority,
                key: entry.ordering_key.clone(),
                pushed_at,
            });
        }
        any
    }

    /// Applies settlements in order. Returns the outcomes and whether any entry became
    /// takeable (returned, or next of its key after an ack), so that watchers are woken.
    pub(crate) fn settle(&mut self, ops: &[Settle], now: Instant) -> (Vec<Settled>, bool) {
        let mut returned = false;
        let outcomes = ops
            .iter()
            .map(|op| {
                let (id, delivery) = (op.id, op.delivery);
                if !self.pending.matches(id, delivery) {
                    return Settled::Stale;
                }
                match op.action {
                    Settlement::Ack => {
                        let key = self.pending.remove(id).and_then(|s| s.key);
                        if let Some(key) = key {
                            returned |= self.ready.pass(&key, id);
                        }
                    }
                    Settlement::Release | Settlement::Return => {
                        if let Some(mut stored) = self.pending.remove(id) {
                            if op.action == Settlement::Return {
                                stored.deliveries = stored.deliveries.saturating_sub(1);
                            }
                            returned |= self.ready.give_back(stored);
                        }
                    }
                    Settlement::Extend(by) => self.pending.extend(id, deadline(now, by)),
                }
                Settled::Done
            })
            .collect();
        (outcomes, returned)
    }

    pub(crate) fn read(&mut self, from: Position, max: u32, now: Instant) -> ReadBatch {
        self.trim(now);
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let read = |s: &Stored| Entry { deliveries: 0, ..s.to_entry() };
        let entries = match from {
            Position::Start => self.ready.from(0).take(max).map(read).collect(),
            Position::End => Vec::new(),
            Position::Index(n) => {
                let skip = usize::try_from(n).unwrap_or(usize::MAX);
                self.ready.from(0).skip(skip).take(max).map(read).collect()
            }
            Position::FromId(id) => self.ready.from(id).take(max).map(read).collect(),
            Position::AfterId(id) => match id.checked_add(1) {
                Some(after) => self.ready.from(after).take(max).map(read).collect(),
                None => Vec::new(),
            },
        };
        ReadBatch {
            entries,
            last_id: self.ready.last_id(),
            foreign: Vec::new(),
            next_due: self.delayed.next_due(now),
        }
    }

    pub(crate) fn stat(&mut self, now: Instant) -> QueueStat {
        self.trim(now);
        QueueStat {
            exists: true,
            count: self.ready.len() as u64,
            pending: self.pending.len() as u64,
            // Leases are the slot's: the store fills this in.
            consumers: 0,
            spec: Some(self.spec),
            generation: Some(self.generation),
            last_id: self.last_id,
            quarantined: 0,
            delayed: self.delayed.len(),
            next_due: self.delayed.next_due(now),
        }
    }

    pub(crate) fn flush(&mut self) {
        self.delayed.clear();
        self.ready.clear();
        self.pending.clear();
    }
}

/// Whether `adding` more messages fit next to `ready` ones under `maxsize`.
pub(crate) fn room_for(ready: usize, adding: usize, maxsize: Option<u64>) -> bool {
    maxsize.is_none_or(|max| (ready as u64).saturating_add(adding as u64) <= max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use busmq_core::store::{Receipt, Retention};
    use std::time::Duration;

    const SEC: Duration = Duration::from_secs(1);

    fn state(retention: Retention) -> (QueueState, Instant) {
        let now = Instant::now();
        let spec = QueueSpec { retention, ..QueueSpec::default() };
        (QueueState::new(1, spec, now), now)
    }

    fn push(q: &mut QueueState, ids: std::ops::Range<u64>, now: Instant) {
        let entries: Vec<NewEntry> = ids.clone().map(|i| NewEntry::new(i.to_string())).collect();
        q.append(&entries, ids.start, now);
    }

    fn ready_ids(q: &QueueState) -> Vec<u64> {
        q.ready.from(0).map(|s| s.id).collect()
    }

    #[test]
    fn released_entries_return_before_fresh_ones_in_id_order() {
        let (mut q, now) = state(Retention::default());
        push(&mut q, 3..7, now);
        let mode = TakeMode::Reliable { visibility: SEC, max_deliveries: 5 };
        let taken = q.take(2, mode, now);
        assert_eq!(taken.entries.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4]);
        let release =
            |id| Settle { id, delivery: 1, receipt: Receipt::none(), action: Settlement::Release };
        let ops = [release(4), release(3)];
        let (outcomes, returned) = q.settle(&ops, now);
        assert_eq!(outcomes, [Settled::Done, Settled::Done]);
        assert!(returned);
        assert_eq!(ready_ids(&q), [3, 4, 5, 6]);
        assert_eq!(q.ready.first().unwrap().deliveries, 1, "release keeps the delivery count");
    }

    #[test]
    fn restore_keeps_the_push_time_so_age_trimming_stays_a_prefix() {
        let max_age = 10 * SEC;
        let (mut q, t0) = state(Retention { max_len: None, max_age: Some(max_age) });
        push(&mut q, 1..3, t0);
        let taken = q.take(1, TakeMode::AtMostOnce, t0);
        push(&mut q, 3..4, t0 + 5 * SEC);
        assert!(q.restore(&taken.entries, t0 + 6 * SEC));
        assert_eq!(ready_ids(&q), [1, 2, 3]);
        assert_eq!(q.ready.first().unwrap().pushed_at, t0);
        let batch = q.read(Position::Start, 10, t0 + 11 * SEC);
        assert_eq!(batch.entries.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn restore_skips_ids_already_ready() {
        let (mut q, now) = state(Retention::default());
        push(&mut q, 1..3, now);
        let taken = q.take(1, TakeMode::AtMostOnce, now);
        assert!(q.restore(&taken.entries, now));
        assert!(!q.restore(&taken.entries, now));
        assert_eq!(ready_ids(&q), [1, 2]);
    }

    fn ids(taken: &Taken) -> Vec<u64> {
        taken.entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn levels_then_ids_and_a_key_waits_behind_its_out_entry_until_the_ack() {
        let (mut q, now) = state(Retention::default());
        q.append(
            &[NewEntry::new("x").with_priority(0).with_ordering_key(Some("k".into()))],
            1,
            now,
        );
        q.append(
            &[NewEntry::new("x").with_priority(9).with_ordering_key(Some("k".into()))],
            2,
            now,
        );
        q.append(&[NewEntry::new("x").with_priority(0).with_ordering_key(None)], 3, now);
        q.append(&[NewEntry::new("x").with_priority(5).with_ordering_key(None)], 4, now);
        let waiting = q.ready.from(2).next().unwrap();
        assert!(q.ready.is_waiting(waiting));
        assert_eq!(q.stat(now).count, 4, "waiting entries are counted");
        let mode = TakeMode::Reliable { visibility: SEC, max_deliveries: 5 };
        assert_eq!(ids(&q.take(10, mode, now)), [4, 1, 3]);
        let release =
            Settle { id: 1, delivery: 1, receipt: Receipt::none(), action: Settlement::Release };
        assert_eq!(q.settle(&[release], now).0, [Settled::Done]);
        assert_eq!(ids(&q.take(10, mode, now)), [1], "the gate stays with a release");
        let ack = Settle { id: 1, delivery: 2, receipt: Receipt::none(), action: Settlement::Ack };
        assert_eq!(q.settle(&[ack], now), (vec![Settled::Done], true));
        assert_eq!(ids(&q.take(10, mode, now)), [2]);
    }

    #[test]
    fn room_for_counts_against_maxsize() {
        assert!(room_for(0, 5, None));
        assert!(room_for(3, 2, Some(5)));
        assert!(!room_for(3, 3, Some(5)));
    }
}
