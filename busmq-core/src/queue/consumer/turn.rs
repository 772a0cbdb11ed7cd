//! Takes in turn: the reliable consumers one bus runs on one queue (each on its own handle or
//! not) share a [`Turn`], so that a notice that wakes all of them costs one take, not one each.
//! Their takes run one at a time; a consumer woken by a notice skips its take when a take that
//! started after it saw the notice came back short (the queue was drained after the push that
//! sent the notice, and that short take asked the store for the next notice). A take that came
//! back full lets the next one go ahead, so a backlog is still shared out, and a consumer whose
//! buffer is full does not take at all, so the others get the work it cannot.
//!
//! (Four consumers that all took on each notice found one batch between them: in the bench
//! two thirds of their reliable takes came back empty, each a claim script and its MULTI on
//! the Redis that also serves the producer.)

use crate::name::QueueName;
use crate::util::lock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::MutexGuard;
use tokio::time::Instant;

/// The turns of one bus, by queue.
#[derive(Default)]
pub(crate) struct Turns {
    by_queue: Mutex<HashMap<QueueName, Weak<Turn>>>,
}

impl Turns {
    /// The turn of `queue`'s reliable consumers on this bus (made on first use, gone with the
    /// last of them).
    pub(crate) fn of(&self, queue: &QueueName) -> Arc<Turn> {
        let mut map = lock(&self.by_queue);
        if let Some(turn) = map.get(queue).and_then(Weak::upgrade) {
            return turn;
        }
        map.retain(|_, turn| turn.strong_count() > 0);
        let turn = Arc::new(Turn::default());
        map.insert(queue.clone(), Arc::downgrade(&turn));
        turn
    }
}

/// See the module documentation.
#[derive(Default, Debug)]
pub(crate) struct Turn {
    /// Takes started so far; a take's number is the count after its start.
    started: AtomicU64,
    /// What the latest short take found, held while taking.
    drained: tokio::sync::Mutex<Drained>,
}

#[derive(Default, Debug)]
struct Drained {
    /// The number of the latest take that came back short (0: none).
    by: u64,
    /// When the queue's earliest delayed message comes due, as that take said.
    due: Option<Instant>,
}

/// A notice as a consumer saw it: takes numbered above this started after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen(u64);

impl Turn {
    /// Called when a consumer sees a notice.
    pub(crate) fn seen(&self) -> Seen {
        Seen(self.started.load(Ordering::SeqCst))
    }

    /// Waits for the turn to take.
    pub(crate) async fn enter(&self) -> Taking<'_> {
        Taking { turn: self, drained: self.drained.lock().await }
    }
}

/// The turn to take, held across one take.
pub(crate) struct Taking<'a> {
    turn: &'a Turn,
    drained: MutexGuard<'a, Drained>,
}

impl Taking<'_> {
    /// Whether a take started after `seen` came back short: the notice needs no take of its own.
    /// Then `Some` of the due time that take saw.
    pub(crate) fn covered(&self, seen: Seen) -> Option<Option<Instant>> {
        (self.drained.by > seen.0).then_some(self.drained.due)
    }

    /// Starts a take; `finish` it with what it got.
    pub(crate) fn start(&mut self) -> u64 {
        self.turn.started.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The take numbered `number` asked for `asked`, got `got` and saw the earliest due time
    /// `due` (a failed take: leave it unfinished).
    pub(crate) fn finish(&mut self, number: u64, asked: usize, got: usize, due: Option<Instant>) {
        if got < asked && number > self.drained.by {
            *self.drained = Drained { by: number, due };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consumers woken by one notice, each taking (or skipping) in turn: how many takes they
    /// make, when the queue holds `ready` entries and each asks for `want`.
    async fn takes_after_one_notice(consumers: usize, want: usize, mut ready: usize) -> usize {
        let turn = Turn::default();
        let seen: Vec<Seen> = (0..consumers).map(|_| turn.seen()).collect();
        let mut takes = 0;
        for seen in seen {
            let mut taking = turn.enter().await;
            if taking.covered(seen).is_some() {
                continue;
            }
            let number = taking.start();
            takes += 1;
            let got = ready.min(want);
            ready -= got;
            taking.finish(number, want, got, None);
        }
        takes
    }

    #[tokio::test]
    async fn one_notice_to_four_consumers_costs_one_take_when_it_drains_the_queue() {
        assert_eq!(takes_after_one_notice(4, 128, 40).await, 1);
        assert_eq!(takes_after_one_notice(4, 128, 0).await, 1, "even an empty one");
    }

    #[tokio::test]
    async fn a_full_take_lets_the_next_consumer_take() {
        assert_eq!(takes_after_one_notice(4, 128, 128).await, 2, "the second finds it drained");
        assert_eq!(takes_after_one_notice(4, 128, 300).await, 3);
        assert_eq!(takes_after_one_notice(4, 128, 1000).await, 4, "a backlog for everyone");
    }

    #[tokio::test]
    async fn a_take_started_before_the_notice_does_not_cover_it() {
        let turn = Turn::default();
        let mut taking = turn.enter().await;
        let early = taking.start();
        // The notice is seen while that take is on its way: it may predate the push.
        let seen = turn.seen();
        taking.finish(early, 128, 0, None);
        drop(taking);
        let mut taking = turn.enter().await;
        assert!(taking.covered(seen).is_none(), "must take");
        let late = taking.start();
        taking.finish(late, 128, 3, None);
        drop(taking);
        assert!(turn.enter().await.covered(seen).is_some(), "a later short take covers it");
    }

    #[tokio::test]
    async fn a_full_or_failed_take_covers_nothing() {
        let turn = Turn::default();
        let seen = turn.seen();
        let mut taking = turn.enter().await;
        let n = taking.start();
        taking.finish(n, 64, 64, None);
        assert!(taking.covered(seen).is_none());
        let _failed = taking.start();
        assert!(taking.covered(seen).is_none());
    }

    #[tokio::test]
    async fn a_covered_notice_gets_the_due_time_the_covering_take_saw() {
        let turn = Turn::default();
        let seen = turn.seen();
        let due = Instant::now() + std::time::Duration::from_secs(3);
        let mut taking = turn.enter().await;
        let n = taking.start();
        taking.finish(n, 10, 0, Some(due));
        assert_eq!(taking.covered(seen), Some(Some(due)));
    }

    #[test]
    fn consumers_of_one_queue_on_one_bus_share_a_turn() {
        let turns = Turns::default();
        let a = QueueName::new("a").unwrap();
        let first = turns.of(&a);
        assert!(Arc::ptr_eq(&first, &turns.of(&a)));
        assert!(!Arc::ptr_eq(&first, &turns.of(&QueueName::new("b").unwrap())));
        drop(first);
        let _again = turns.of(&a);
        assert_eq!(lock(&turns.by_queue).len(), 1, "the gone turns are forgotten");
    }
}
