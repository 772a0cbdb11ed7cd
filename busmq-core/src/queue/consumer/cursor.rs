//! What a consumer task carries from one fetch to the next: its replay position, where a
//! blocking take resumes, and when the store said it should take again without a notice.

use crate::store::{Position, Receipt};
use std::time::Duration;

/// What the task carries from one fetch to the next.
pub(super) struct Cursor {
    /// Where a replaying consumer continues.
    pub(super) position: Position,
    /// Where the store said a blocking take may resume waiting.
    pub(super) resume: Receipt,
    /// When the store said to look again without a notice, as the last take or read said: the
    /// queue's earliest delayed message comes due (SPEC P8), or for a reliable take a pending
    /// delivery's deadline (SPEC Q13). An idle consumer takes again then, and a waiting take
    /// waits no longer.
    pub(super) store_due: Option<tokio::time::Instant>,
    /// The soonest a pending delivery's deadline makes this consumer take again (see
    /// [`Cursor::saw_take`]).
    expiry_gap: Duration,
}

/// Waited past a store's due time before taking again: the store measured it before its answer
/// reached us, and Redis counts whole milliseconds.
const DUE_MARGIN: Duration = Duration::from_millis(2);

impl Cursor {
    pub(super) fn new(position: Position, expiry_gap: Duration) -> Cursor {
        Cursor { position, resume: Receipt::none(), store_due: None, expiry_gap }
    }

    pub(super) fn saw_due(&mut self, next_due: Option<Duration>) {
        let now = tokio::time::Instant::now();
        self.store_due = next_due.and_then(|d| now.checked_add(d + DUE_MARGIN));
    }

    /// As [`Cursor::saw_due`], for a take that also said when the queue's earliest pending
    /// delivery runs out (SPEC Q13): a dead consumer's deliveries then come back at their
    /// deadline, not at this consumer's next heartbeat. Not sooner than `expiry_gap` after
    /// this take: a backend may report a deadline that has moved since (Redis keeps a batch's
    /// earliest deadline when the delivery that set it is acked), and an idle consumer must
    /// not take once per such delivery.
    pub(super) fn saw_take(&mut self, next_due: Option<Duration>, next_expiry: Option<Duration>) {
        let expiry = next_expiry.map(|d| d.max(self.expiry_gap));
        self.saw_due(next_due.into_iter().chain(expiry).min());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn wake_after(cursor: &Cursor) -> Option<Duration> {
        cursor.store_due.map(|at| at - tokio::time::Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn a_take_wakes_at_the_sooner_of_due_and_expiry_but_not_before_the_gap() {
        let mut c = Cursor::new(Position::Start, 250 * MS);
        c.saw_take(None, None);
        assert_eq!(wake_after(&c), None, "nothing delayed or pending: no wake");
        c.saw_take(Some(900 * MS), Some(400 * MS));
        assert_eq!(wake_after(&c), Some(400 * MS + DUE_MARGIN), "the deadline comes first");
        c.saw_take(Some(100 * MS), Some(400 * MS));
        assert_eq!(wake_after(&c), Some(100 * MS + DUE_MARGIN), "the due time comes first");
        c.saw_take(None, Some(Duration::ZERO));
        assert_eq!(wake_after(&c), Some(250 * MS + DUE_MARGIN), "a passed deadline: the gap");
        c.saw_take(Some(Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(wake_after(&c), Some(DUE_MARGIN), "a due message is not held by the gap");
    }
}
