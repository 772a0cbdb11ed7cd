//! A consumer's background task: the async glue around the fetch machine (`fetch.rs`). It waits
//! for the queue to be attached, performs the steps the machine chooses (takes, waiting takes,
//! reads, heartbeats), and when consuming ends gives back what it holds.

use super::super::due;
use super::super::event::QueueEvent;
use super::super::inner::QueueInner;
use super::super::lifecycle::{Held, Phase};
use super::super::options::{ConsumeMode, ConsumeOptions};
use super::cursor::Cursor;
use super::fetch::{Backoff, Fetch, Step};
use super::pipe::{ConsumerShared, Until};
use super::receive::received;
use super::taking::{take, take_in_turn};
use super::turn::Seen;
use crate::error::Result;
use crate::observability::log_error;
use crate::store::{
    ConsumerKind, ConsumerOp, Entry, Position, Restored, Settle, Settlement, TakeMode,
};
use crate::util::lock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// How long a consumer registration lives without renewal (for the mixing rule).
pub(super) const CONSUMER_LEASE: Duration = Duration::from_secs(15);
/// The longest a consumer waits without checking the store (a safety net for lost wake-ups,
/// how expired reliable deliveries of dead consumers are noticed, and what keeps a store's
/// notice lease alive: an idle consumer's take or read comes back short again, see
/// `Store::watch`).
const MAX_IDLE: Duration = Duration::from_secs(5);
/// How long one waiting take may wait in a store that waits natively; a stop cancels it sooner.
const BLOCK_FOR: Duration = Duration::from_secs(1);

/// A delayed message due sooner than this is waited for here, not in a blocking take: Redis
/// ends a block at its timer's resolution (`hz` 10: 100 ms), far later than the due time.
const NEAR_DUE: Duration = Duration::from_millis(100);

pub(super) async fn run(
    shared: Arc<ConsumerShared>,
    queue: Arc<QueueInner>,
    options: ConsumeOptions,
    kind: ConsumerKind,
    registered: bool,
) {
    // Counted in `busmq_consumers` however the task ends.
    let _running = shared.metrics.running();
    tracing::debug!("consumer started");
    let mut phase = queue.phase.subscribe();
    let mut held = match wait_attached(&shared, &mut phase).await {
        Some(held) => held,
        None => {
            let closed = matches!(*phase.borrow(), Phase::Closed);
            finish(&shared, &queue, &options, closed, None).await;
            return;
        }
    };
    if !registered {
        let op = ConsumerOp::Register { id: shared.id.clone(), kind, lease: CONSUMER_LEASE };
        if let Err(error) = queue.bus.store.consumers(&queue.name, op).await {
            log_error("consumer could not register", Some(queue.name.as_str()), &error);
            shared.metrics.error(&error);
            shared.report(error);
            finish(&shared, &queue, &options, false, None).await;
            return;
        }
        queue.emit(QueueEvent::Consuming(true));
    }
    let mut available = queue.available.subscribe();
    let heartbeat_every = match &options.mode {
        ConsumeMode::Reliable(r) => (r.visibility_timeout / 3).min(MAX_IDLE),
        _ => MAX_IDLE,
    };
    let start = match options.mode {
        ConsumeMode::Replay(position) => position,
        _ => Position::Start,
    };
    // At most four takes per heartbeat period for deadlines that moved since.
    let mut cursor = Cursor::new(start, heartbeat_every / 4);
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_every, heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let blocking =
        matches!(options.mode, ConsumeMode::AtMostOnce) && queue.bus.store.blocking().is_some();
    let mut fetch = Fetch::new(blocking, heartbeat_every, tokio::time::Instant::now());
    // Reliable consumers of this queue on this bus take in turn (see `turn.rs`); `seen` is the
    // last notice that woke this one, until it takes.
    let turn = matches!(options.mode, ConsumeMode::Reliable(_))
        .then(|| queue.turn.get_or_init(|| queue.bus.turns.of(&queue.name)).clone());
    let mut seen: Option<Seen> = None;
    let mut closed = false;
    loop {
        match *phase.borrow_and_update() {
            Phase::Attached(now) => held = now,
            Phase::Closed => {
                closed = true;
                break;
            }
            _ => break,
        }
        if shared.stop_requested() {
            break;
        }
        if shared.confirm_asked() {
            // Not retried here: the stream asks again once a heartbeat's extension answered
            // (which wakes it), and the task goes on renewing and taking meanwhile.
            if let Err(error) = confirm(&shared).await {
                queue.emit(QueueEvent::Error(error));
            }
            continue;
        }
        let want = shared.wanted();
        let now = tokio::time::Instant::now();
        let step = match fetch.next(want, now) {
            // Only an idle consumer waits out a near due time: a busy one (its last take came
            // back full) takes on, or a backlog would drain one batch per due message.
            Step::TakeWaiting(_)
                if fetch.idle()
                    && cursor
                        .store_due
                        .is_some_and(|at| at.saturating_duration_since(now) < NEAR_DUE) =>
            {
                Step::Sleep
            }
            step => step,
        };
        let fetched = match step {
            Step::Beat => {
                beat(&shared, &queue, kind).await;
                // The sleeping branch's ticks count from this beat.
                heartbeat.reset();
                continue;
            }
            Step::Take(n) => {
                available.borrow_and_update();
                // A notice that borrow marked seen may be newer than `seen`: the skip is judged
                // by the newest (`signal_available` records it before it signals).
                if seen.is_some() {
                    seen = *lock(&queue.noticed);
                }
                let span = tracing::trace_span!("take", want = n);
                match &turn {
                    Some(turn) => {
                        let seen = seen.take();
                        let taken =
                            take_in_turn(turn, seen, &shared, &queue, &options, &mut cursor, n);
                        taken.instrument(span).await.map(|got| (n, got))
                    }
                    None => {
                        let taken =
                            take(&shared, &queue, &options, &mut cursor, n).instrument(span);
                        taken.await.map(|got| (n, got))
                    }
                }
            }
            Step::TakeWaiting(n) => {
                available.borrow_and_update();
                let span = tracing::trace_span!("take", want = n, waiting = true);
                let taken = take_waiting(&shared, &queue, &mut cursor, n).instrument(span);
                taken.await.map(|got| (n, got))
            }
            Step::Sleep => {
                let (due, mut passed) = next_due(&shared);
                let now = tokio::time::Instant::now();
                if cursor.store_due.is_some_and(|at| at <= now) {
                    cursor.store_due = None;
                    passed = true;
                }
                let due = due.into_iter().chain(cursor.store_due).min();
                if passed {
                    seen = None;
                    fetch.notice();
                    continue;
                }
                tokio::select! {
                    _ = shared.wake_task.notified() => {}
                    _ = due::until(due) => {
                        seen = None;
                        fetch.notice();
                    }
                    _ = due_changed(&shared) => {}
                    changed = available.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        seen = *lock(&queue.noticed);
                        fetch.notice();
                    }
                    changed = phase.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    _ = heartbeat.tick() => {
                        beat(&shared, &queue, kind).await;
                        // The safety net looks at the store itself.
                        seen = None;
                        fetch.tick(tokio::time::Instant::now());
                    }
                }
                continue;
            }
        };
        match fetched {
            Ok((asked, got)) => fetch.fetched(asked, got),
            Err(error) => {
                if !back_off(fetch.failed(), error, &shared, &queue, &mut phase, &mut available)
                    .await
                {
                    break;
                }
            }
        }
    }
    finish(&shared, &queue, &options, closed, Some(held)).await;
}

/// Reports a failed store call (the first of a series) and pauses as `backoff` says; false
/// when the queue's signals are gone (the task ends).
async fn back_off(
    backoff: Backoff,
    error: crate::error::Error,
    shared: &ConsumerShared,
    queue: &QueueInner,
    phase: &mut watch::Receiver<Phase>,
    available: &mut watch::Receiver<u64>,
) -> bool {
    if backoff.report {
        queue.emit(QueueEvent::Error(error));
    } else {
        tracing::debug!(error = %error, pause = ?backoff.pause, "store call failed again");
    }
    // The keeper signals `available` when the store is back, so a consumer in a long backoff
    // resumes at once instead of sleeping on.
    tokio::select! {
        _ = tokio::time::sleep(backoff.pause) => true,
        _ = shared.wake_task.notified() => true,
        _ = phase.changed() => true,
        changed = available.changed() => changed.is_ok(),
    }
}

/// Asks the store whether the buffered reliable entries are still this consumer's (extending
/// them): the stream waits for the answer before it hands out one whose visibility may have
/// run out (see `pipe::Standing::Lapsed`). Asked once per wait of the stream: when it fails,
/// the stream waits on until a heartbeat's extension answers.
async fn confirm(shared: &ConsumerShared) -> Result<()> {
    let Some(settler) = &shared.settler else {
        return Ok(());
    };
    let ops = shared.buffered(Settlement::Extend(settler.visibility));
    let sent = tokio::time::Instant::now();
    let outcomes = settler.settle_all(&ops).await?;
    shared.extended(&ops, &outcomes, sent, settler.visibility);
    Ok(())
}

/// The next deadline of a delayed release of this consumer, and whether one has passed.
fn next_due(shared: &ConsumerShared) -> (Option<tokio::time::Instant>, bool) {
    match &shared.settler {
        Some(settler) => settler.due.next(tokio::time::Instant::now()),
        None => (None, false),
    }
}

/// Completes when a delayed release is added (the sleep then starts again with it).
async fn due_changed(shared: &ConsumerShared) {
    match &shared.settler {
        Some(settler) => settler.due.changed().await,
        None => std::future::pending().await,
    }
}

/// Waits for the queue to be attached (a consume before attach is deferred, SPEC Q7 test 10).
async fn wait_attached(
    shared: &ConsumerShared,
    phase: &mut watch::Receiver<Phase>,
) -> Option<Held> {
    loop {
        match *phase.borrow_and_update() {
            Phase::Attached(held) => return Some(held),
            Phase::Closed => return None,
            _ => {}
        }
        if shared.stop_requested() {
            return None;
        }
        tokio::select! {
            changed = phase.changed() => changed.ok()?,
            _ = shared.wake_task.notified() => {}
        }
    }
}

/// Takes, waiting in the store for messages when none is ready; never abandoned half-way, so
/// whatever the store took reaches the buffer (and goes back to the queue if consuming stops).
async fn take_waiting(
    shared: &ConsumerShared,
    queue: &QueueInner,
    cursor: &mut Cursor,
    want: usize,
) -> Result<usize> {
    let want = u32::try_from(want).unwrap_or(u32::MAX);
    let store = &queue.bus.store;
    // Never waits past the earliest delayed message: it is promoted by the next take.
    let now = tokio::time::Instant::now();
    let wait =
        cursor.store_due.map_or(BLOCK_FOR, |at| at.saturating_duration_since(now).min(BLOCK_FOR));
    let taken = match store.blocking() {
        Some(blocking) if !wait.is_zero() => {
            let taken = blocking
                .take_wait(&queue.name, want, wait, &shared.cancel_wait, &cursor.resume)
                .await?;
            // A wait that popped without a take (a resumed one) does not know the due time:
            // the one known before stays until a take says otherwise.
            if taken.next_due.is_some() {
                cursor.saw_due(taken.next_due);
            }
            taken
        }
        _ => {
            let taken = store.take(&queue.name, want, TakeMode::AtMostOnce).await?;
            cursor.saw_due(taken.next_due);
            taken
        }
    };
    cursor.resume = taken.resume.clone();
    Ok(received(shared, queue, taken, Until::Always).await)
}

/// Periodic work of a running consumer: keep the registration alive and, in reliable mode,
/// extend what it holds (unless `auto_extend` is off: then only what it took and has not
/// handed out yet, so that held deliveries come back after their visibility timeout).
async fn beat(shared: &ConsumerShared, queue: &QueueInner, kind: ConsumerKind) {
    let op = ConsumerOp::Renew { id: shared.id.clone(), kind, lease: CONSUMER_LEASE };
    if let Err(error) = queue.bus.store.consumers(&queue.name, op).await {
        queue.emit(QueueEvent::Error(error));
    }
    let Some(settler) = &shared.settler else {
        return;
    };
    let extend = Settlement::Extend(settler.visibility);
    let mut ops = shared.buffered(extend);
    let buffered = ops.len();
    // Delayed releases wait until this extension has landed (see `Settler::extending`).
    let _ordered = settler.extending.write().await;
    if shared.auto_extend {
        ops.extend(settler.held(extend));
    }
    if ops.is_empty() {
        return;
    }
    let sent = tokio::time::Instant::now();
    match settler.settle_all(&ops).await {
        // Buffered entries stay this consumer's only as long as the store says so: one whose
        // extension failed is not handed out past its visibility (see `pipe::Buffered`).
        Ok(outcomes) => shared.extended(
            &ops[..buffered],
            &outcomes[..buffered.min(outcomes.len())],
            sent,
            settler.visibility,
        ),
        Err(error) => queue.emit(QueueEvent::Error(error)),
    }
}

/// Returns what the consumer holds and unregisters it.
async fn finish(
    shared: &Arc<ConsumerShared>,
    queue: &Arc<QueueInner>,
    options: &ConsumeOptions,
    closed: bool,
    held: Option<Held>,
) {
    let leftover = shared.finish();
    if !closed {
        if let Some(held) = held {
            if let Err(error) = give_back(shared, queue, options, &held, leftover).await {
                queue.emit(QueueEvent::Error(error));
            }
        }
        let op = ConsumerOp::Unregister { id: shared.id.clone() };
        let _ = queue.bus.store.consumers(&queue.name, op).await;
    }
    if let Some(settler) = &shared.settler {
        if !closed {
            settler.drained().await;
        }
        settler.dead_letters.detach().await;
    }
    {
        let mut slot = queue.consumer.lock().await;
        if slot.as_ref().is_some_and(|active| Arc::ptr_eq(active, shared)) {
            *slot = None;
        }
    }
    shared.signal_done();
    tracing::debug!(closed, "consumer finished");
    queue.emit(QueueEvent::Consuming(false));
}

async fn give_back(
    shared: &ConsumerShared,
    queue: &QueueInner,
    options: &ConsumeOptions,
    held: &Held,
    leftover: Vec<Entry>,
) -> Result<()> {
    match &options.mode {
        ConsumeMode::AtMostOnce if !leftover.is_empty() => {
            let mut attempt = 0;
            loop {
                match queue.bus.store.restore(&queue.name, held.generation, &leftover).await {
                    Ok(Restored::Done) => return Ok(()),
                    // Those messages went with the rest of their queue (closed or expired while
                    // the consumer held them): nothing to put back, nothing lost by us.
                    Ok(outcome) => {
                        tracing::debug!(
                            ?outcome,
                            entries = leftover.len(),
                            "undelivered messages not put back: their queue is gone"
                        );
                        return Ok(());
                    }
                    // Retrying a put-back that may have run would deliver its entries twice;
                    // at most once means they are lost instead (and the error is reported).
                    Err(error) if error.is_unapplied() && attempt < 5 => {
                        attempt += 1;
                        tokio::time::sleep(crate::util::backoff(
                            attempt,
                            Duration::from_millis(50),
                            Duration::from_secs(1),
                        ))
                        .await;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        ConsumeMode::Reliable(_) => {
            let Some(settler) = &shared.settler else {
                return Ok(());
            };
            let mut ops: Vec<Settle> =
                leftover.iter().map(|e| Settle::of(e, Settlement::Return)).collect();
            // Deliveries handed out before `max` was reached stay with their holder, who acks
            // them after the stream ended, and so do those of a stop that asks for it (a
            // graceful service stop); any other stop, drop or detach gives them back (SPEC Q13).
            if !shared.keeps_held() {
                ops.extend(settler.take_held(Settlement::Release));
            }
            if ops.is_empty() {
                return Ok(());
            }
            settler.settle_all(&ops).await.map(drop)
        }
        _ => Ok(()),
    }
}
