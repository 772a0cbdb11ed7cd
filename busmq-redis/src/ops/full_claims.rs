//! The queues whose reliable takes go straight to claim.lua for a while: claim_fast.lua answered
//! 'slow' for them (side entries, returned entries, a delayed message due, ...), and for a queue
//! with priorities or ordering keys it would answer so on every take, each time costing a round
//! trip and a script call before claim.lua (keyed-4 moved a third less with it; see
//! docs/performance.md, issue 14). After [`FULL_FOR`] the fast script is tried again.

use busmq_core::support::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a queue's takes skip claim_fast.lua after it answered 'slow'.
pub(crate) const FULL_FOR: Duration = Duration::from_secs(1);
/// Queues remembered. Past this, the memory starts again empty (as `KeyCache`).
const MAX_QUEUES: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct FullClaims {
    until: Mutex<HashMap<Box<str>, Instant>>,
}

impl FullClaims {
    /// Whether `queue`'s takes should go straight to claim.lua at `now`.
    pub(crate) fn full(&self, queue: &str, now: Instant) -> bool {
        let mut until = lock(&self.until);
        match until.get(queue) {
            Some(at) if *at > now => true,
            Some(_) => {
                until.remove(queue);
                false
            }
            None => false,
        }
    }

    /// claim_fast.lua answered 'slow' for `queue` at `now`.
    pub(crate) fn slow(&self, queue: &str, now: Instant) {
        let mut until = lock(&self.until);
        if until.len() >= MAX_QUEUES && !until.contains_key(queue) {
            until.clear();
        }
        until.insert(queue.into(), now + FULL_FOR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_answer_sends_a_queue_to_claim_lua_until_it_lapses() {
        let claims = FullClaims::default();
        let t0 = Instant::now();
        assert!(!claims.full("keyed", t0));
        claims.slow("keyed", t0);
        assert!(claims.full("keyed", t0 + FULL_FOR / 2));
        assert!(!claims.full("other", t0), "only the queue that answered 'slow'");
        assert!(!claims.full("keyed", t0 + FULL_FOR), "then the fast script is tried again");
        assert!(!claims.full("keyed", t0), "and the lapsed entry is gone");
    }

    #[test]
    fn the_memory_never_holds_more_than_its_bound() {
        let claims = FullClaims::default();
        let t0 = Instant::now();
        for i in 0..MAX_QUEUES + 10 {
            claims.slow(&format!("q{i}"), t0);
        }
        assert!(lock(&claims.until).len() <= MAX_QUEUES);
        assert!(claims.full(&format!("q{}", MAX_QUEUES + 9), t0));
    }
}
