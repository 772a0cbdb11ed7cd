//! The checker: a pure function from a recorded [`History`] to the figures of the report.
//!
//! * **lost**: acknowledged pushes never delivered. A push that failed is not counted either
//!   way: it may or may not have been written (a timeout does not say).
//! * **duplicated**: deliveries beyond the first of the same message (reliable redeliveries
//!   included: at-least-once allows them, at-most-once does not).
//! * **reordered**: in a single-consumer queue, first deliveries of a message with a lower
//!   sequence number than one delivered before it. Redeliveries (delivery count above 1) and
//!   repeated deliveries are left out: a message given back after a consumer died comes late
//!   by design.
//! * per key, for the keyed mode (`History::keys`): reordered (replacing the per-queue
//!   figure, since several consumers share a keyed queue), overlapped and unexplained
//!   duplicates, as `keyed.rs` defines them.
//! * **recovery**: for each fault and each queue, the time from the end of the fault to the
//!   first delivery, after that end, of a message pushed after the fault *began*: end-to-end
//!   flow through the store, not a message that sat in a consumer's buffer since before the
//!   fault, and not the time to work off the backlog that built up during the fault (that is
//!   throughput, not recovery). A fault's recovery is the slowest of its queues; a queue that
//!   never delivers such a message although some were pushed is a stall (`None`).

use super::history::{FaultWindow, History};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The figures for one history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) pushed: u64,
    pub(crate) acked: u64,
    /// Distinct messages delivered at least once.
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
    /// Keyed mode: deliveries handed out while another message of their key was held.
    pub(crate) overlapped: u64,
    /// Keyed mode: repeated deliveries that are not redeliveries (no higher delivery count).
    pub(crate) unexplained_duplicates: u64,
    /// One entry per fault, in order; `None` is a stall.
    pub(crate) recoveries: Vec<Option<u64>>,
}

impl Verdict {
    /// Faults after which delivery never resumed.
    pub(crate) fn stalls(&self) -> usize {
        self.recoveries.iter().filter(|r| r.is_none()).count()
    }

    /// Median and maximum recovery over the faults that recovered.
    pub(crate) fn recovery_median_max(&self) -> Option<(u64, u64)> {
        let mut done: Vec<u64> = self.recoveries.iter().flatten().copied().collect();
        if done.is_empty() {
            return None;
        }
        done.sort_unstable();
        Some((done[(done.len() - 1) / 2], done[done.len() - 1]))
    }
}

/// Computes the figures (see the module documentation).
pub(crate) fn check(history: &History) -> Verdict {
    let mut verdict = Verdict {
        pushed: history.pushes.len() as u64,
        acked: history.pushes.iter().filter(|p| p.acked).count() as u64,
        ..Verdict::default()
    };
    let mut seen: HashSet<(usize, u64)> = HashSet::new();
    let mut highest: HashMap<usize, u64> = HashMap::new();
    for d in &history.deliveries {
        if !seen.insert((d.queue, d.seq)) {
            verdict.duplicated += 1;
            continue;
        }
        if d.deliveries > 1 {
            continue;
        }
        let top = highest.entry(d.queue).or_insert(0);
        if d.seq < *top {
            verdict.reordered += 1;
        } else {
            *top = d.seq;
        }
    }
    verdict.delivered = seen.len() as u64;
    if let Some(keys) = history.keys {
        let keyed = super::keyed::check(history, keys);
        verdict.reordered = keyed.reordered;
        verdict.overlapped = keyed.overlapped;
        verdict.unexplained_duplicates = keyed.unexplained_duplicates;
    }
    verdict.lost =
        history.pushes.iter().filter(|p| p.acked && !seen.contains(&(p.queue, p.seq))).count()
            as u64;
    verdict.recoveries = history.faults.iter().map(|f| recovery(history, f)).collect();
    verdict
}

/// A fault's recovery: its slowest queue's, or `None` (a stall) when a queue never flowed again.
fn recovery(history: &History, fault: &FaultWindow) -> Option<u64> {
    recovery_per_queue(history, fault)
        .into_iter()
        .try_fold(0, |slowest, (_, r)| Some(slowest.max(r?)))
}

/// Each queue's recovery from `fault` (see the module documentation), in queue order, for
/// the queues that got pushes after the fault began; `None` for a queue that never delivered
/// one of those. `--trace` prints them, so that one slow occurrence can be told from the rest.
pub(crate) fn recovery_per_queue(
    history: &History,
    fault: &FaultWindow,
) -> Vec<(usize, Option<u64>)> {
    let started: HashMap<(usize, u64), u64> =
        history.pushes.iter().map(|p| ((p.queue, p.seq), p.started_ms)).collect();
    let fresh =
        |queue: usize, seq: u64| started.get(&(queue, seq)).is_some_and(|s| *s >= fault.start_ms);
    let queues: BTreeSet<usize> =
        history.pushes.iter().filter(|p| p.started_ms >= fault.start_ms).map(|p| p.queue).collect();
    queues
        .into_iter()
        .map(|queue| {
            let first = history
                .deliveries
                .iter()
                .filter(|d| d.queue == queue && d.at_ms >= fault.end_ms && fresh(d.queue, d.seq))
                .map(|d| d.at_ms)
                .min();
            (queue, first.map(|at| at - fault.end_ms))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::history::{DeliveryRecord, PushRecord};

    fn push(queue: usize, seq: u64, started_ms: u64, acked: bool) -> PushRecord {
        PushRecord { queue, seq, started_ms, acked }
    }

    fn got(queue: usize, seq: u64, deliveries: u32, at_ms: u64) -> DeliveryRecord {
        DeliveryRecord { queue, seq, consumer: 1, deliveries, at_ms, at_us: at_ms * 1_000 }
    }

    fn clean() -> History {
        History {
            pushes: (1..=5).map(|s| push(0, s, s * 10, true)).collect(),
            deliveries: (1..=5).map(|s| got(0, s, 1, s * 10 + 5)).collect(),
            faults: Vec::new(),
            ..History::default()
        }
    }

    #[test]
    fn a_clean_history_has_nothing_to_report() {
        let v = check(&clean());
        assert_eq!((v.pushed, v.acked, v.delivered), (5, 5, 5));
        assert_eq!((v.lost, v.duplicated, v.reordered), (0, 0, 0));
    }

    #[test]
    fn a_known_loss_duplicate_and_reorder_are_found() {
        let mut h = clean();
        // Lost: acknowledged, never delivered.
        h.pushes.push(push(0, 6, 60, true));
        // Not lost: the push failed, so nobody was promised anything.
        h.pushes.push(push(0, 7, 70, false));
        // Duplicate: 2 delivered again.
        h.deliveries.push(got(0, 2, 1, 80));
        // Reordered: 9 then 8, both first deliveries.
        h.pushes.push(push(0, 8, 80, true));
        h.pushes.push(push(0, 9, 81, true));
        h.deliveries.push(got(0, 9, 1, 90));
        h.deliveries.push(got(0, 8, 1, 91));
        let v = check(&h);
        assert_eq!(v.lost, 1, "{v:?}");
        assert_eq!(v.duplicated, 1, "{v:?}");
        assert_eq!(v.reordered, 1, "{v:?}");
        assert_eq!((v.pushed, v.acked, v.delivered), (9, 8, 7));
    }

    #[test]
    fn redeliveries_are_duplicates_but_not_reorders() {
        let mut h = clean();
        h.pushes.push(push(0, 6, 60, true));
        h.pushes.push(push(0, 7, 70, true));
        // 6 was held by a consumer that died; it comes back after 7.
        h.deliveries.push(got(0, 6, 1, 61));
        h.deliveries.push(got(0, 7, 1, 71));
        h.deliveries.push(got(0, 6, 2, 90));
        let v = check(&h);
        assert_eq!((v.duplicated, v.reordered, v.lost), (1, 0, 0));
        // Taken by a consumer that died before handing it out: only the redelivery is seen.
        let mut h = clean();
        h.pushes.push(push(0, 6, 60, true));
        h.pushes.push(push(0, 7, 70, true));
        h.deliveries.push(got(0, 7, 1, 71));
        h.deliveries.push(got(0, 6, 2, 90));
        let v = check(&h);
        assert_eq!((v.duplicated, v.reordered, v.lost), (0, 0, 0));
    }

    #[test]
    fn queues_are_ordered_independently() {
        let h = History {
            pushes: vec![push(0, 1, 0, true), push(1, 1, 0, true), push(0, 2, 1, true)],
            deliveries: vec![got(0, 2, 1, 5), got(1, 1, 1, 6), got(0, 1, 1, 7)],
            faults: Vec::new(),
            ..History::default()
        };
        let v = check(&h);
        assert_eq!(v.reordered, 1);
        assert_eq!(v.lost, 0);
    }

    #[test]
    fn recovery_counts_from_the_end_of_the_fault_to_new_messages_flowing() {
        let h = History {
            pushes: vec![
                push(0, 1, 40, true),  // buffered before the fault began
                push(0, 2, 60, true),  // pushed during the fault
                push(1, 1, 120, true), // pushed after it
            ],
            deliveries: vec![got(0, 1, 1, 105), got(0, 2, 1, 150), got(1, 1, 1, 400)],
            faults: vec![FaultWindow { start_ms: 50, end_ms: 100 }],
            ..History::default()
        };
        let v = check(&h);
        assert_eq!(v.recoveries, vec![Some(300)], "the slowest queue counts, not old messages");
        assert_eq!(v.recovery_median_max(), Some((300, 300)));
    }

    #[test]
    fn a_queue_that_never_flows_again_is_a_stall() {
        let h = History {
            pushes: vec![push(0, 1, 10, true), push(0, 2, 200, true), push(0, 3, 300, true)],
            deliveries: vec![got(0, 1, 1, 20)],
            faults: vec![
                FaultWindow { start_ms: 0, end_ms: 5 },
                FaultWindow { start_ms: 100, end_ms: 150 },
            ],
            ..History::default()
        };
        let v = check(&h);
        assert_eq!(v.recoveries, vec![Some(15), None]);
        assert_eq!(v.stalls(), 1);
        assert_eq!(v.lost, 2);
        assert_eq!(v.recovery_median_max(), Some((15, 15)));
    }

    #[test]
    fn each_queue_s_recovery_is_given_and_the_fault_takes_the_slowest() {
        let h = History {
            pushes: vec![push(0, 1, 60, true), push(1, 1, 60, true), push(2, 1, 10, true)],
            deliveries: vec![got(0, 1, 1, 130), got(1, 1, 1, 90)],
            faults: vec![FaultWindow { start_ms: 50, end_ms: 100 }],
            ..History::default()
        };
        let fault = h.faults[0];
        // Queue 1's only fresh message came before the fault ended, so nothing fresh flowed
        // after it: a stall. Queue 2 got no push after the fault began and is left out.
        assert_eq!(recovery_per_queue(&h, &fault), vec![(0, Some(30)), (1, None)]);
        assert_eq!(check(&h).recoveries, vec![None]);
        let flowing = History { deliveries: vec![got(0, 1, 1, 130), got(1, 1, 1, 400)], ..h };
        assert_eq!(recovery_per_queue(&flowing, &fault), vec![(0, Some(30)), (1, Some(300))]);
        assert_eq!(check(&flowing).recoveries, vec![Some(300)]);
    }

    #[test]
    fn median_and_maximum() {
        let v = Verdict {
            recoveries: vec![Some(30), Some(10), Some(20), Some(40)],
            ..Verdict::default()
        };
        assert_eq!(v.recovery_median_max(), Some((20, 40)));
        assert_eq!(Verdict::default().recovery_median_max(), None);
    }
}
