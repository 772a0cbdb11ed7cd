//! Maps keyed by message id on the per-message path (the deliveries a reliable consumer
//! holds), hashed by a multiply and MurmurHash3's finaliser instead of SipHash.
//!
//! SipHash guards a map against keys an attacker picks to collide. These keys are message ids
//! of one queue, which only a client allowed to push to it can influence, and the map holds
//! the deliveries one consumer has handed out and not settled, so the worst such a client could
//! do is slow that consumer's own bookkeeping. SipHash cost about three hashes of some 140
//! instructions each for every acknowledged message: 2.5% of a reliable consumer's client
//! instructions in the bench (`docs/performance.md`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by message id.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// One multiply per id written, and MurmurHash3's 64-bit finaliser when the hash is taken, so
/// that ids which differ only in their high bits (ids from the clock) or step by a power of
/// two still spread over the low bits the table indexes by and the top bits it tags slots
/// with.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        z = (z ^ (z >> 33)).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        z ^ (z >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    fn hash(id: u64) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(id)
    }

    /// The bits a table of `buckets` slots indexes by, and the 7 top bits hashbrown keeps
    /// beside each slot, must both vary for ids that step by a power of two (clock-based ids
    /// often do): otherwise such ids crowd into a few slots.
    #[test]
    fn ids_that_step_by_a_power_of_two_spread_over_the_table() {
        let buckets = 1024u64;
        for step in [1u64, 2, 1 << 10, 1 << 20, 1 << 32, 1 << 40] {
            let start = 1_733_500_000_000_000u64;
            let ids: Vec<u64> = (0..buckets).map(|i| start.wrapping_add(i * step)).collect();
            let slots: HashSet<u64> = ids.iter().map(|&id| hash(id) & (buckets - 1)).collect();
            let tags: HashSet<u64> = ids.iter().map(|&id| hash(id) >> 57).collect();
            assert!(slots.len() > buckets as usize / 2, "step {step}: {} slots", slots.len());
            assert!(tags.len() > 64, "step {step}: {} tags", tags.len());
        }
    }

    #[test]
    fn a_map_keyed_by_id_finds_what_it_holds() {
        let mut map: IdMap<u32> = IdMap::default();
        for id in 0..10_000u64 {
            map.insert(id << 20, id as u32);
        }
        assert_eq!(map.len(), 10_000);
        assert!((0..10_000u64).all(|id| map.get(&(id << 20)) == Some(&(id as u32))));
        assert_eq!(map.get(&1), None);
    }
}
