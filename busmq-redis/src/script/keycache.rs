//! The key names of the queues a store works on, built once per queue instead of on every
//! call: each operation names the queue's keys, and formatting them took eight allocations per
//! push and per blocking take, a measurable share of a channel message's client CPU (see
//! docs/performance.md, issue 14).

use super::keys::{Layout, QueueKeys};
use busmq_core::support::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Queues whose keys are kept. Past this, the cache starts again empty: a client that names
/// ever more queues (a reply queue per request, say) keeps building keys, as it did before the
/// cache, and never holds more than this many.
const MAX_QUEUES: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    queues: Mutex<HashMap<Box<str>, Arc<QueueKeys>>>,
}

impl KeyCache {
    /// The keys of `queue` under `layout` (always the same layout for one cache: the store's).
    pub(crate) fn queue(&self, layout: &Layout, queue: &str) -> Arc<QueueKeys> {
        let mut queues = lock(&self.queues);
        if let Some(keys) = queues.get(queue) {
            return keys.clone();
        }
        if queues.len() >= MAX_QUEUES {
            queues.clear();
        }
        let keys = Arc::new(layout.queue(queue));
        queues.insert(queue.into(), keys.clone());
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_built_once_per_queue_and_match_the_layout() {
        let layout = Layout::new("busmq").unwrap();
        let cache = KeyCache::default();
        let first = cache.queue(&layout, "orders");
        assert!(Arc::ptr_eq(&first, &cache.queue(&layout, "orders")));
        assert_eq!(first.keys, layout.queue("orders").keys);
        assert_eq!(first.channel, layout.queue("orders").channel);
        assert_eq!(cache.queue(&layout, "other").meta(), "busmq:{other}:m");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let layout = Layout::new("ns").unwrap();
        let cache = KeyCache::default();
        for i in 0..MAX_QUEUES + 10 {
            let keys = cache.queue(&layout, &format!("q{i}"));
            assert_eq!(keys.meta(), format!("ns:{{q{i}}}:m"));
        }
        assert!(lock(&cache.queues).len() <= MAX_QUEUES);
    }
}
