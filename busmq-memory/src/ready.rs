//! The ready messages of one queue incarnation and the order takes find them in (SPEC P11,
//! P12): every ready entry by id (reads, counts, retention, `maxsize`), and apart from them
//! which are takeable: returned ones first, in id order; then by level, highest first, in id
//! order within a level. Entries of an ordering key that wait behind the key's out entry are
//! ready but not takeable until its gate passes to them.

use crate::gates::Gates;
use crate::stored::Stored;
use busmq_core::store::MAX_PRIORITY;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;

const LEVELS: usize = MAX_PRIORITY as usize + 1;

/// Ready entries and their take order.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    all: BTreeMap<u64, Stored>,
    /// Takeable entries that were handed out before (released, expired, restored).
    returned: BTreeSet<u64>,
    /// Takeable entries never handed out, by level.
    levels: [BTreeSet<u64>; LEVELS],
    gates: Gates,
}

impl Ready {
    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.all.contains_key(&id)
    }

    pub(crate) fn first(&self) -> Option<&Stored> {
        self.all.first_key_value().map(|(_, s)| s)
    }

    pub(crate) fn last_id(&self) -> Option<u64> {
        self.all.last_key_value().map(|(&id, _)| id)
    }

    /// Ready entries with ids in `range`, in id order.
    pub(crate) fn range(
        &self,
        range: impl RangeBounds<u64>,
    ) -> impl DoubleEndedIterator<Item = &Stored> {
        self.all.range(range).map(|(_, s)| s)
    }

    /// Adds an entry that was just pushed (or promoted): takeable in its level, unless its key
    /// has an entry out, behind which it waits.
    pub(crate) fn push(&mut self, stored: Stored) {
        let id = stored.id;
        let takeable = stored.key.as_ref().is_none_or(|key| self.gates.admit(key, id));
        if takeable {
            self.levels[usize::from(stored.priority)].insert(id);
        }
        self.all.insert(id, stored);
    }

    /// Gives back an entry that was handed out: takeable first, in id order among the others
    /// given back; its key's gate is left as it is (a reliable delivery kept it, and an
    /// at-most-once take had passed it already). False when the id is ready already.
    pub(crate) fn give_back(&mut self, stored: Stored) -> bool {
        let id = stored.id;
        if self.all.contains_key(&id) {
            return false;
        }
        self.returned.insert(id);
        self.all.insert(id, stored);
        true
    }

    /// Removes and returns the next takeable entry. Its gate stays where it is: the caller
    /// passes it ([`Ready::pass`]) when the take was at-most-once.
    pub(crate) fn next(&mut self) -> Option<Stored> {
        let id = match self.returned.pop_first() {
            Some(id) => id,
            None => self.levels.iter_mut().rev().find_map(BTreeSet::pop_first)?,
        };
        self.all.remove(&id)
    }

    /// Passes the gate of `key` from `id` to the key's oldest waiting entry, which becomes
    /// takeable at its id's place in its level. Returns whether one did.
    pub(crate) fn pass(&mut self, key: &str, id: u64) -> bool {
        match self.gates.pass(key, id) {
            Some(next) => {
                self.make_takeable(next);
                true
            }
            None => false,
        }
    }

    fn make_takeable(&mut self, id: u64) {
        if let Some(stored) = self.all.get(&id) {
            self.levels[usize::from(stored.priority)].insert(id);
        }
    }

    /// Removes the oldest ready entry (retention), wherever it stands in the take order.
    pub(crate) fn remove_oldest(&mut self) -> Option<Stored> {
        let (id, stored) = self.all.pop_first()?;
        if !self.returned.remove(&id) {
            self.levels[usize::from(stored.priority)].remove(&id);
        }
        if let Some(next) = stored.key.as_deref().and_then(|key| self.gates.forget(key, id)) {
            self.make_takeable(next);
        }
        Some(stored)
    }

    /// Whether `stored` waits behind its key (ready, not takeable).
    #[cfg(test)]
    pub(crate) fn is_waiting(&self, stored: &Stored) -> bool {
        stored.key.as_deref().is_some_and(|key| self.gates.is_waiting(key, stored.id))
    }

    /// Removes everything, gates included.
    pub(crate) fn clear(&mut self) {
        self.all.clear();
        self.returned.clear();
        self.levels.iter_mut().for_each(BTreeSet::clear);
        self.gates.clear();
    }
}
