//! Producer dedupe keys of one queue incarnation (SPEC P10): the id each key's push got, until
//! its window ends. Expired keys are dropped on every keyed push, oldest first, so what is kept
//! is bounded by the keyed pushes of one window.

use crate::clock::deadline;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct DedupeKeys {
    ids: HashMap<Arc<str>, (u64, Instant)>,
    /// The same keys by the end of their window, to drop the expired ones without a scan.
    ends: BTreeSet<(Instant, Arc<str>)>,
}

impl DedupeKeys {
    /// The id of the push that wrote `key` within its window, if any; forgets expired keys.
    pub(crate) fn seen(&mut self, key: &str, now: Instant) -> Option<u64> {
        while let Some((end, _)) = self.ends.first() {
            if *end > now {
                break;
            }
            if let Some((_, key)) = self.ends.pop_first() {
                self.ids.remove(&key);
            }
        }
        self.ids.get(key).map(|(id, _)| *id)
    }

    /// Remembers that `key`'s push got `id`, for `window` from `now`.
    pub(crate) fn remember(&mut self, key: &str, id: u64, window: Duration, now: Instant) {
        let key: Arc<str> = key.into();
        let end = deadline(now, window);
        if let Some((_, old)) = self.ids.insert(key.clone(), (id, end)) {
            self.ends.remove(&(old, key.clone()));
        }
        self.ends.insert((end, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_answers_within_its_window_only() {
        let now = Instant::now();
        let mut keys = DedupeKeys::default();
        assert_eq!(keys.seen("a", now), None);
        keys.remember("a", 7, Duration::from_millis(100), now);
        assert_eq!(keys.seen("a", now + Duration::from_millis(99)), Some(7));
        assert_eq!(keys.seen("a", now + Duration::from_millis(100)), None);
        assert!(keys.ids.is_empty() && keys.ends.is_empty(), "expired keys are dropped");
    }
}
