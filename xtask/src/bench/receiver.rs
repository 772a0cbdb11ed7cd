//! The receiving side's bookkeeping: end-to-end latency of every message (from the timestamp it
//! carries) and, where order is promised, that sequence numbers arrive in order without gaps or
//! repeats. Order faults are library faults: they are reported with the scenario.

use super::keyorder::KeyOrder;
use super::payload;
use super::stats::Histogram;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub(crate) struct Receiver {
    pub(crate) latency: Histogram,
    pub(crate) count: u64,
    ordered: bool,
    next: u64,
    out_of_order: u64,
    foreign: u64,
    /// Per-key order shared with the other consumers of a keyed queue (its faults are the
    /// queue's, reported once by whoever made it).
    keys: Option<Arc<KeyOrder>>,
}

impl Receiver {
    /// Expects sequence numbers 0, 1, 2, ... in this order.
    pub(crate) fn ordered() -> Receiver {
        Receiver { ordered: true, ..Receiver::default() }
    }

    /// Order is not promised (several consumers share the queue).
    pub(crate) fn unordered() -> Receiver {
        Receiver::default()
    }

    /// Several consumers share a keyed queue: order is promised per key only.
    pub(crate) fn per_key(keys: Arc<KeyOrder>) -> Receiver {
        Receiver { keys: Some(keys), ..Receiver::default() }
    }

    pub(crate) fn on_message(&mut self, body: &[u8]) {
        let now = payload::now_ns();
        self.count += 1;
        let Some(stamp) = payload::read(body) else {
            self.foreign += 1;
            return;
        };
        self.latency.record_ns(now.saturating_sub(stamp.made_ns));
        if let Some(keys) = &self.keys {
            keys.on_message(body);
        }
        if self.ordered {
            if stamp.seq != self.next {
                self.out_of_order += 1;
            }
            self.next = stamp.seq + 1;
        }
    }

    pub(crate) fn merge(&mut self, other: &Receiver) {
        self.latency.merge(&other.latency);
        self.count += other.count;
        self.out_of_order += other.out_of_order;
        self.foreign += other.foreign;
    }

    /// What went wrong, if anything.
    pub(crate) fn faults(&self) -> Option<String> {
        let mut faults = Vec::new();
        if self.out_of_order > 0 {
            faults.push(format!("{} messages out of order (or after a gap)", self.out_of_order));
        }
        if self.foreign > 0 {
            faults.push(format!("{} messages without the bench header", self.foreign));
        }
        (!faults.is_empty()).then(|| faults.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_faults_are_counted() {
        let mut r = Receiver::ordered();
        for seq in [0, 1, 3, 4] {
            r.on_message(payload::make(seq, 100).as_bytes());
        }
        assert_eq!(r.count, 4);
        assert_eq!(r.latency.count(), 4);
        assert!(r.faults().unwrap().starts_with("1 messages out of order"));
        let mut u = Receiver::unordered();
        u.on_message(payload::make(9, 100).as_bytes());
        u.on_message(b"junk");
        assert_eq!(u.faults().unwrap(), "1 messages without the bench header");
    }
}
