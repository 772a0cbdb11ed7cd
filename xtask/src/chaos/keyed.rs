//! The per-key checks of the `reliable+keyed` and `reliable+keyed+wait` modes (SPEC P11), pure
//! functions of a [`History`] whose producers pushed message `seq` with ordering key
//! `seq % keys`:
//!
//! * **reordered**: a first delivery of a message after a later message of its key was
//!   delivered (in handout time order). A redelivery of a message already seen is allowed: at
//!   least once means the same id may come again.
//! * **overlapped**: a delivery handed out while a delivery of another message of its key was
//!   held. A delivery is held from its handout until its consumer issued the ack (the store can
//!   pass the key on no earlier), or, never acked, until the same message is handed out again
//!   (it came back: released, expired or given back after its consumer died); held to the end if
//!   neither happened. Two deliveries of the same message may overlap (visibility expiry).
//! * **unexplained duplicates**: a repeated delivery of a message whose delivery count is not
//!   above every earlier one's (a redelivery counts up; two handouts of one take do not).

use super::history::{AckRecord, DeliveryRecord, History};
use std::collections::{HashMap, HashSet};

/// The per-key figures of one keyed history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KeyedVerdict {
    pub(crate) reordered: u64,
    pub(crate) overlapped: u64,
    pub(crate) unexplained_duplicates: u64,
}

/// Computes the figures (see the module documentation).
pub(crate) fn check(history: &History, keys: u64) -> KeyedVerdict {
    let keys = keys.max(1);
    let mut by_key: HashMap<(usize, u64), Vec<&DeliveryRecord>> = HashMap::new();
    for d in &history.deliveries {
        by_key.entry((d.queue, d.seq % keys)).or_default().push(d);
    }
    let acks = ack_index(&history.acks);
    let mut verdict = KeyedVerdict::default();
    for deliveries in by_key.values_mut() {
        // Stable: equal times keep the order they were recorded in.
        deliveries.sort_by_key(|d| d.at_us);
        verdict.reordered += reordered(deliveries);
        verdict.overlapped += overlapped(deliveries, &acks);
        verdict.unexplained_duplicates += unexplained(deliveries);
    }
    verdict
}

type AckIndex = HashMap<(usize, u64, u32, u32), Vec<u64>>;

fn ack_index(acks: &[AckRecord]) -> AckIndex {
    let mut index: AckIndex = HashMap::new();
    for a in acks {
        index.entry((a.queue, a.seq, a.consumer, a.deliveries)).or_default().push(a.issued_us);
    }
    index
}

fn reordered(deliveries: &[&DeliveryRecord]) -> u64 {
    let (mut seen, mut top, mut count) = (HashSet::new(), 0, 0);
    for d in deliveries {
        if seen.insert(d.seq) && d.seq < top {
            count += 1;
        }
        top = top.max(d.seq);
    }
    count
}

/// When each delivery (in `deliveries`' order) stopped being held.
fn held_until(deliveries: &[&DeliveryRecord], acks: &AckIndex) -> Vec<u64> {
    deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let acked = acks
                .get(&(d.queue, d.seq, d.consumer, d.deliveries))
                .and_then(|times| times.iter().copied().filter(|t| *t >= d.at_us).min());
            let again = || deliveries[i + 1..].iter().find(|e| e.seq == d.seq).map(|e| e.at_us);
            acked.or_else(again).unwrap_or(u64::MAX)
        })
        .collect()
}

fn overlapped(deliveries: &[&DeliveryRecord], acks: &AckIndex) -> u64 {
    let until = held_until(deliveries, acks);
    let mut held: Vec<(u64, u64)> = Vec::new();
    let mut count = 0;
    for (d, end) in deliveries.iter().zip(until) {
        held.retain(|(_, e)| *e > d.at_us);
        if held.iter().any(|(seq, _)| *seq != d.seq) {
            count += 1;
        }
        held.push((d.seq, end));
    }
    count
}

fn unexplained(deliveries: &[&DeliveryRecord]) -> u64 {
    let mut highest: HashMap<u64, u32> = HashMap::new();
    let mut count = 0;
    for d in deliveries {
        match highest.get_mut(&d.seq) {
            None => {
                highest.insert(d.seq, d.deliveries);
            }
            Some(top) if d.deliveries > *top => *top = d.deliveries,
            Some(_) => count += 1,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: u64 = 2;

    fn got(seq: u64, consumer: u32, deliveries: u32, at_us: u64) -> DeliveryRecord {
        DeliveryRecord { queue: 0, seq, consumer, deliveries, at_ms: at_us / 1_000, at_us }
    }

    fn ack(seq: u64, consumer: u32, deliveries: u32, issued_us: u64) -> AckRecord {
        AckRecord { queue: 0, seq, consumer, deliveries, issued_us }
    }

    fn history(deliveries: Vec<DeliveryRecord>, acks: Vec<AckRecord>) -> History {
        History { deliveries, acks, keys: Some(KEYS), ..History::default() }
    }

    #[test]
    fn one_at_a_time_per_key_in_push_order_is_clean() {
        // Key 0: 2, 4, 6 one after another on alternating consumers; key 1: 1, 3 alongside.
        let h = history(
            vec![
                got(2, 1, 1, 10),
                got(1, 2, 1, 11),
                got(4, 2, 1, 30),
                got(3, 1, 1, 31),
                got(6, 1, 1, 50),
            ],
            vec![
                ack(2, 1, 1, 20),
                ack(1, 2, 1, 25),
                ack(4, 2, 1, 40),
                ack(3, 1, 1, 45),
                ack(6, 1, 1, 60),
            ],
        );
        assert_eq!(check(&h, KEYS), KeyedVerdict::default());
    }

    #[test]
    fn a_key_handed_out_while_held_is_an_overlap() {
        // 4 is handed out before 2's ack was issued.
        let h = history(
            vec![got(2, 1, 1, 10), got(4, 2, 1, 15)],
            vec![ack(2, 1, 1, 20), ack(4, 2, 1, 30)],
        );
        assert_eq!(check(&h, KEYS).overlapped, 1);
        // Never acked and never handed out again: held to the end.
        let h = history(vec![got(2, 1, 1, 10), got(4, 2, 1, 50)], vec![ack(4, 2, 1, 60)]);
        assert_eq!(check(&h, KEYS).overlapped, 1);
    }

    #[test]
    fn a_redelivery_ends_the_hold_and_may_overlap_itself() {
        // 2's consumer died; 2 came back (count 2) on another consumer, acked, then 4.
        let h = history(
            vec![got(2, 1, 1, 10), got(2, 2, 2, 3_000), got(4, 2, 1, 3_020)],
            vec![ack(2, 2, 2, 3_010), ack(4, 2, 1, 3_030)],
        );
        assert_eq!(check(&h, KEYS), KeyedVerdict::default());
        // Visibility expired while the first consumer still held it: the same id twice is allowed.
        let h = history(
            vec![got(2, 1, 1, 10), got(2, 2, 2, 3_000), got(4, 2, 1, 3_500)],
            vec![ack(2, 2, 2, 3_010), ack(2, 1, 1, 4_000), ack(4, 2, 1, 4_100)],
        );
        let v = check(&h, KEYS);
        assert_eq!((v.overlapped, v.reordered, v.unexplained_duplicates), (1, 0, 0), "{v:?}");
    }

    #[test]
    fn a_later_message_of_a_key_first_is_a_reorder_but_other_keys_are_not() {
        let h = history(
            vec![got(4, 1, 1, 10), got(1, 2, 1, 12), got(2, 1, 1, 30)],
            vec![ack(4, 1, 1, 20), ack(1, 2, 1, 22), ack(2, 1, 1, 40)],
        );
        let v = check(&h, KEYS);
        assert_eq!((v.reordered, v.overlapped), (1, 0), "{v:?}");
    }

    #[test]
    fn a_repeat_without_a_higher_count_is_unexplained() {
        let h = history(
            vec![got(2, 1, 1, 10), got(2, 2, 1, 30), got(2, 2, 2, 50)],
            vec![ack(2, 1, 1, 20), ack(2, 2, 1, 40), ack(2, 2, 2, 60)],
        );
        assert_eq!(check(&h, KEYS).unexplained_duplicates, 1);
    }
}
