//! The consumer task's takes from the store: plain, and for reliable consumers in their turn
//! (`turn.rs`), with what each take saw noted in the task's cursor.

use super::super::inner::QueueInner;
use super::super::options::{ConsumeMode, ConsumeOptions};
use super::cursor::Cursor;
use super::pipe::{ConsumerShared, Until};
use super::receive::{received, report_foreign};
use super::turn::{Seen, Turn};
use crate::error::Result;
use crate::store::{Position, TakeMode, Taken};
use std::time::Duration;
use tokio::time::Instant;

/// The longest a reliable consumer waits for another one's take before it takes out of turn: a
/// take stuck on a failing-over or unreachable server must not hold up the others (nor their
/// heartbeats) for longer than this.
const TURN_WAIT: Duration = Duration::from_millis(100);

/// A take of a reliable consumer, in its turn: skipped (as a take that found nothing) when the
/// notice that woke the consumer was covered by another consumer's take meanwhile.
pub(super) async fn take_in_turn(
    turn: &Turn,
    seen: Option<Seen>,
    shared: &ConsumerShared,
    queue: &QueueInner,
    options: &ConsumeOptions,
    cursor: &mut Cursor,
    want: usize,
) -> Result<usize> {
    let Ok(taking) = tokio::time::timeout(TURN_WAIT, turn.enter()).await else {
        // Out of turn: a plain take, which covers no other consumer's notice.
        return take(shared, queue, options, cursor, want).await;
    };
    let taken = {
        // Moved in, so that the turn is let go at the end of this block.
        let mut taking = taking;
        if let Some(due) = seen.and_then(|seen| taking.covered(seen)) {
            // That take also saw the queue's earliest due time, which this consumer must wake
            // for too (SPEC P8) in case the other one is busy then.
            cursor.store_due = due;
            return Ok(0);
        }
        let number = taking.start();
        let (taken, until) = store_take(queue, options, cursor, want).await?;
        // Counted as `received` counts them. The turn is let go before the entries are
        // handled: dead-letter moves are a round trip each, and the consumers waiting for the
        // turn cannot heartbeat their own deliveries meanwhile.
        let got = taken.entries.len() + taken.dead.len() + taken.foreign.len();
        taking.finish(number, want, got, cursor.store_due);
        (taken, until)
    };
    Ok(received(shared, queue, taken.0, taken.1).await)
}

/// An at-most-once or reliable take from the store (the due time it saw noted in `cursor`),
/// with, for a reliable take, when its entries stop being this consumer's unless extended.
async fn store_take(
    queue: &QueueInner,
    options: &ConsumeOptions,
    cursor: &mut Cursor,
    want: usize,
) -> Result<(Taken, Until)> {
    let want = u32::try_from(want).unwrap_or(u32::MAX);
    let (mode, visibility) = match &options.mode {
        ConsumeMode::Reliable(reliable) => (
            TakeMode::Reliable {
                visibility: reliable.visibility_timeout,
                max_deliveries: reliable.max_deliveries,
            },
            Some(reliable.visibility_timeout),
        ),
        _ => (TakeMode::AtMostOnce, None),
    };
    // Before the call: the store's deadline counts from when it ran the take, not earlier.
    let sent = visibility.map(|_| Instant::now());
    let taken = queue.bus.store.take(&queue.name, want, mode).await?;
    cursor.saw_take(taken.next_due, taken.next_expiry);
    let until = match (sent, visibility) {
        (Some(sent), Some(visibility)) => Until::after(sent, visibility),
        _ => Until::Always,
    };
    Ok((taken, until))
}

pub(super) async fn take(
    shared: &ConsumerShared,
    queue: &QueueInner,
    options: &ConsumeOptions,
    cursor: &mut Cursor,
    want: usize,
) -> Result<usize> {
    let store = &queue.bus.store;
    match &options.mode {
        ConsumeMode::AtMostOnce | ConsumeMode::Reliable(_) => {
            let (taken, until) = store_take(queue, options, cursor, want).await?;
            Ok(received(shared, queue, taken, until).await)
        }
        ConsumeMode::Replay(_) => {
            let want = u32::try_from(want).unwrap_or(u32::MAX);
            if cursor.position == Position::End {
                let batch = store.read(&queue.name, Position::End, 1).await?;
                cursor.position = batch.last_id.map_or(Position::Start, Position::AfterId);
            }
            let batch = store.read(&queue.name, cursor.position, want).await?;
            cursor.saw_due(batch.next_due);
            // Not counted: the cursor moves only with entries, so they are no progress.
            report_foreign(queue, batch.foreign);
            if let Some(last) = batch.entries.last() {
                cursor.position = Position::AfterId(last.id);
            }
            let n = batch.entries.len();
            shared.deliver(batch.entries, Until::Always);
            Ok(n)
        }
    }
}
