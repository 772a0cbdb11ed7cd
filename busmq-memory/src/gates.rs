//! Per-key gates (SPEC P11): which entry of each ordering key is out (takeable, or taken
//! reliably and not yet acknowledged) and which wait behind it, oldest first.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The gate of one key. It exists while an entry of the key is out; entries wait only behind
/// an out one.
#[derive(Debug, Default)]
struct Gate {
    out: Option<u64>,
    waiting: BTreeSet<u64>,
}

/// The gates of one queue incarnation (a new incarnation starts with none).
#[derive(Debug, Default)]
pub(crate) struct Gates {
    keys: HashMap<Arc<str>, Gate>,
}

impl Gates {
    /// Admits a new entry `id` of `key`: true when it is out now (its key had nothing out),
    /// false when it waits.
    pub(crate) fn admit(&mut self, key: &Arc<str>, id: u64) -> bool {
        let gate = self.keys.entry(key.clone()).or_default();
        if gate.out.is_none() {
            gate.out = Some(id);
            true
        } else {
            gate.waiting.insert(id);
            false
        }
    }

    /// Passes the gate of `key` from `id` to the oldest waiting entry, which is then out;
    /// returns it. Nothing happens when `id` does not hold the gate (a restored entry, or a
    /// settlement that came after a flush).
    pub(crate) fn pass(&mut self, key: &str, id: u64) -> Option<u64> {
        let gate = self.keys.get_mut(key)?;
        if gate.out != Some(id) {
            return None;
        }
        let next = gate.waiting.pop_first();
        gate.out = next;
        if next.is_none() {
            self.keys.remove(key);
        }
        next
    }

    /// Whether `id` of `key` waits behind the key's out entry.
    #[cfg(test)]
    pub(crate) fn is_waiting(&self, key: &str, id: u64) -> bool {
        self.keys.get(key).is_some_and(|g| g.waiting.contains(&id))
    }

    /// Drops `id` of `key` wherever it is (retention removed it): a waiting one leaves the
    /// line; the out one passes the gate, and the entry that is out next is returned.
    pub(crate) fn forget(&mut self, key: &str, id: u64) -> Option<u64> {
        let gate = self.keys.get_mut(key)?;
        // A key with waiting entries always has one out, so the gate stays.
        if gate.waiting.remove(&id) {
            return None;
        }
        self.pass(key, id)
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_out_per_key_and_the_gate_passes_in_id_order() {
        let mut g = Gates::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        assert!(g.admit(&a, 1));
        assert!(g.admit(&b, 2), "another key goes in parallel");
        assert!(!g.admit(&a, 5));
        assert!(!g.admit(&a, 3));
        assert!(g.is_waiting("a", 3) && !g.is_waiting("a", 1));
        assert_eq!(g.pass("a", 5), None, "only the out entry passes the gate");
        assert_eq!(g.pass("a", 1), Some(3));
        assert_eq!(g.forget("a", 5), None);
        assert_eq!(g.pass("a", 3), None);
        assert!(g.admit(&a, 9), "a key with nothing out admits at once");
        assert_eq!(g.forget("a", 9), None);
        assert!(g.admit(&a, 10));
        g.clear();
        assert!(g.admit(&a, 11) && g.admit(&b, 12));
    }
}
