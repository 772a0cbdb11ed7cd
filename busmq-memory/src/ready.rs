//! The ready messages of one queue incarnation and the order takes find them in (SPEC P11,
//! P12). Plain entries (level 0, no key, never handed out: all a queue without the features
//! holds) stay in a deque in id order, taken from the front as before; the others, the *side*
//! entries, are kept by id with an index of which are takeable: returned ones first in id
//! order, then by level, highest first, in id order within a level (level 0 merged with the
//! plain front by id). Entries of an ordering key that wait behind the key's out entry are
//! ready but not takeable until its gate passes to them.

use crate::gates::Gates;
use crate::stored::Stored;
use busmq_core::store::MAX_PRIORITY;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::iter::Peekable;

const LEVELS: usize = MAX_PRIORITY as usize + 1;

/// Ready entries and their take order.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    /// Plain entries never handed out, in id order (pushes only ever append).
    plain: VecDeque<Stored>,
    /// Every other ready entry, by id.
    side: BTreeMap<u64, Stored>,
    /// Takeable side entries that were handed out before (released, expired, restored).
    returned: BTreeSet<u64>,
    /// Takeable side entries never handed out, by level.
    levels: [BTreeSet<u64>; LEVELS],
    gates: Gates,
}

impl Ready {
    pub(crate) fn len(&self) -> usize {
        self.plain.len() + self.side.len()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.side.contains_key(&id) || self.plain.binary_search_by_key(&id, |s| s.id).is_ok()
    }

    pub(crate) fn first(&self) -> Option<&Stored> {
        self.from(0).next()
    }

    pub(crate) fn last_id(&self) -> Option<u64> {
        let plain = self.plain.back().map(|s| s.id);
        let side = self.side.last_key_value().map(|(&id, _)| id);
        plain.max(side)
    }

    /// Ready entries with ids from `id` on, in id order.
    pub(crate) fn from(&self, id: u64) -> impl Iterator<Item = &Stored> {
        let start = self.plain.partition_point(|s| s.id < id);
        Merge { a: self.plain.range(start..).peekable(), b: self.side.range(id..).peekable() }
    }

    /// The ready entry with the greatest id below `id`.
    pub(crate) fn before(&self, id: u64) -> Option<&Stored> {
        let at = self.plain.partition_point(|s| s.id < id);
        let plain = at.checked_sub(1).and_then(|p| self.plain.get(p));
        let side = self.side.range(..id).next_back().map(|(_, s)| s);
        match (plain, side) {
            (Some(p), Some(s)) => Some(if p.id > s.id { p } else { s }),
            (p, s) => p.or(s),
        }
    }

    /// Adds an entry that was just pushed (or promoted): takeable in its level, unless its key
    /// has an entry out, behind which it waits.
    pub(crate) fn push(&mut self, stored: Stored) {
        if stored.priority == 0 && stored.key.is_none() {
            debug_assert!(self.plain.back().is_none_or(|last| last.id < stored.id));
            self.plain.push_back(stored);
            return;
        }
        let id = stored.id;
        let takeable = stored.key.as_ref().is_none_or(|key| self.gates.admit(key, id));
        if takeable {
            self.levels[usize::from(stored.priority)].insert(id);
        }
        self.side.insert(id, stored);
    }

    /// Gives back an entry that was handed out: takeable first, in id order among the others
    /// given back; its key's gate is left as it is (a reliable delivery kept it, and an
    /// at-most-once take had passed it already). False when the id is ready already.
    pub(crate) fn give_back(&mut self, stored: Stored) -> bool {
        let id = stored.id;
        if self.contains(id) {
            return false;
        }
        self.returned.insert(id);
        self.side.insert(id, stored);
        true
    }

    /// Removes and returns the next takeable entry. Its gate stays where it is: the caller
    /// passes it ([`Ready::pass`]) when the take was at-most-once.
    pub(crate) fn next(&mut self) -> Option<Stored> {
        if let Some(id) = self.returned.pop_first() {
            return self.side.remove(&id);
        }
        if let Some(id) = self.levels[1..].iter_mut().rev().find_map(BTreeSet::pop_first) {
            return self.side.remove(&id);
        }
        let side = self.levels[0].first().copied();
        match (self.plain.front(), side) {
            (Some(plain), Some(side)) if side < plain.id => self.take_level0(side),
            (Some(_), _) => self.plain.pop_front(),
            (None, Some(side)) => self.take_level0(side),
            (None, None) => None,
        }
    }

    fn take_level0(&mut self, id: u64) -> Option<Stored> {
        self.levels[0].remove(&id);
        self.side.remove(&id)
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
        if let Some(stored) = self.side.get(&id) {
            self.levels[usize::from(stored.priority)].insert(id);
        }
    }

    /// Removes the oldest ready entry (retention), wherever it stands in the take order.
    pub(crate) fn remove_oldest(&mut self) -> Option<Stored> {
        let side_first = self.side.first_key_value().map(|(&id, _)| id);
        if self.plain.front().is_some_and(|p| side_first.is_none_or(|s| p.id < s)) {
            return self.plain.pop_front();
        }
        let (id, stored) = self.side.pop_first()?;
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
        self.plain.clear();
        self.side.clear();
        self.returned.clear();
        self.levels.iter_mut().for_each(BTreeSet::clear);
        self.gates.clear();
    }
}

/// Two id-ordered runs of entries read as one.
struct Merge<'a, A: Iterator<Item = &'a Stored>, B: Iterator<Item = (&'a u64, &'a Stored)>> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<'a, A, B> Iterator for Merge<'a, A, B>
where
    A: Iterator<Item = &'a Stored>,
    B: Iterator<Item = (&'a u64, &'a Stored)>,
{
    type Item = &'a Stored;

    fn next(&mut self) -> Option<&'a Stored> {
        let a_first = match (self.a.peek(), self.b.peek()) {
            (Some(a), Some((b, _))) => a.id < **b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if a_first { self.a.next() } else { self.b.next().map(|(_, s)| s) }
    }
}
