//! The keyed scenarios' order check (SPEC P11): message `seq` was pushed with key
//! `(seq / run) % keys`, and the consumers sharing the queue must each get a key's messages in
//! push order, one after another. The consumers record into one shared map when a message
//! arrives, before they ack it: the store cannot hand out the key's next message before that ack,
//! so an arrival with a lower sequence number than the key's last is a library fault.

use super::payload;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a keyed producer assigns keys: runs of `run` consecutive messages share a key, `keys`
/// keys in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) keys: u64,
    pub(crate) run: u64,
}

impl Keys {
    pub(crate) fn of(self, seq: u64) -> u64 {
        (seq / self.run.max(1)) % self.keys.max(1)
    }

    pub(crate) fn name(self, seq: u64) -> String {
        format!("k{}", self.of(seq))
    }
}

/// The last sequence number each key delivered, shared by the consumers of one queue.
#[derive(Debug)]
pub(crate) struct KeyOrder {
    keys: Keys,
    last: Mutex<HashMap<u64, u64>>,
    reordered: AtomicU64,
}

impl KeyOrder {
    pub(crate) fn new(keys: Keys) -> KeyOrder {
        KeyOrder { keys, last: Mutex::new(HashMap::new()), reordered: AtomicU64::new(0) }
    }

    /// Records a delivered message (by its body) before it is acknowledged.
    pub(crate) fn on_message(&self, body: &[u8]) {
        let Some(stamp) = payload::read(body) else { return };
        let key = self.keys.of(stamp.seq);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.insert(key, stamp.seq) {
            Some(before) if before >= stamp.seq => {
                self.reordered.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// What went wrong, if anything.
    pub(crate) fn faults(&self) -> Option<String> {
        let n = self.reordered.load(Ordering::Relaxed);
        (n > 0).then(|| format!("{n} messages arrived after a later message of their key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_order_per_key() {
        let keys = Keys { keys: 3, run: 2 };
        assert_eq!((0..8).map(|s| keys.of(s)).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 2, 0, 0]);
        let order = KeyOrder::new(keys);
        for seq in [0, 2, 1, 6, 3] {
            order.on_message(payload::make(seq, 100).as_bytes());
        }
        assert_eq!(order.faults(), None);
        order.on_message(payload::make(4, 100).as_bytes());
        order.on_message(payload::make(5, 100).as_bytes());
        order.on_message(payload::make(1, 100).as_bytes());
        assert_eq!(
            order.faults().unwrap(),
            "1 messages arrived after a later message of their key"
        );
    }
}
