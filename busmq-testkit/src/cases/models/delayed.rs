//! Property model of delayed messages through the Store trait (SPEC P8): random sequences of
//! push, schedule, cancel, take and advance-time, checked after every step against a model of
//! the ready messages and the schedule. Time runs in buckets of `unit` (virtual on paused
//! rows, real on Redis rows): a message is scheduled to come due half a unit into a later
//! bucket, and every operation runs in the first quarter of its bucket, so whether a message
//! is due is never a race between clocks; a bucket that overran is left for the next one.

use super::runner::{Outcome, check, ensure, same};
use crate::backend::Backend;
use crate::cases::store::fixtures::{AMO, connected, queue, spec};
use busmq_core::Store;
use busmq_core::store::{Entry, NewEntry, Position, PushBatch, ScheduleBatch, Scheduled};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug)]
enum Op {
    /// Push one message with this byte.
    Push(u8),
    /// Schedule one message with this byte, due this many buckets later (0: this bucket).
    Schedule(u8, u32),
    /// Cancel the n-th handle given so far (modulo their number).
    Cancel(usize),
    /// Take at most this many, at most once.
    Take(u32),
    /// Let this many buckets pass.
    Advance(u32),
}

// `Tree: Send`: the tree lives across the awaits of a case, whose future must be `Send`.
fn op() -> impl Strategy<Value = Op, Tree: Send> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::Push),
        4 => (any::<u8>(), 0u32..4).prop_map(|(b, k)| Op::Schedule(b, k)),
        1 => (0usize..16).prop_map(Op::Cancel),
        3 => (0u32..5).prop_map(Op::Take),
        3 => (1u32..3).prop_map(Op::Advance),
    ]
}

/// A scheduled message in the model: its byte, its due bucket, and whether it still waits.
struct Waiting {
    byte: u8,
    due: u64,
    seq: u64,
    handle: Scheduled,
    waiting: bool,
}

#[derive(Default)]
struct Model {
    /// Ready bytes in delivery order.
    ready: VecDeque<u8>,
    schedule: Vec<Waiting>,
    seq: u64,
}

impl Model {
    /// Moves what is due by bucket `now` to the ready messages, in due then schedule order.
    fn promote(&mut self, now: u64) {
        let mut due: Vec<&mut Waiting> =
            self.schedule.iter_mut().filter(|w| w.waiting && w.due < now).collect();
        // Within a bucket, the store's own due stamp decides (Redis: the due time in ms on its
        // clock, which the model cannot predict to the millisecond); equal stamps keep
        // schedule order.
        due.sort_by_key(|w| (w.due, w.handle.due(), w.seq));
        for w in due {
            w.waiting = false;
            self.ready.push_back(w.byte);
        }
    }

    fn delayed(&self) -> u64 {
        self.schedule.iter().filter(|w| w.waiting).count() as u64
    }
}

fn bytes(entries: &[Entry]) -> Vec<u8> {
    entries.iter().map(|e| e.payload[0]).collect()
}

async fn run(store: &dyn Store, unit: Duration, ops: Vec<Op>) -> Outcome {
    let q = queue("delayed-model");
    let sp = spec();
    let generation = store.attach(&q, &sp).await.expect("attach").generation;
    let start = Instant::now();
    let bucket = |n: u64| start + unit * u32::try_from(n).unwrap_or(u32::MAX);
    let mut now = 0u64;
    let mut model = Model::default();
    let mut last_id = 0;
    for (step, op) in ops.into_iter().enumerate() {
        let at = |what: &str| format!("step {step} ({op:?}): {what}");
        // A bucket that overran its first quarter is left (and as many as were overrun): the
        // step starts clean in the first quarter of a bucket.
        if Instant::now() > bucket(now) + unit / 4 {
            while Instant::now() > bucket(now) + unit / 4 {
                now += 1;
            }
            tokio::time::sleep_until(bucket(now)).await;
        }
        // Due messages come before anything written from now on (pushes promote too).
        model.promote(now);
        match &op {
            Op::Push(b) => {
                let batch = [NewEntry::new(vec![*b])];
                let id = store.push(&q, &PushBatch::new(generation, &sp, &batch)).await;
                let id = id.expect("push");
                ensure(id > last_id, || at("ids go forward"))?;
                last_id = id;
                model.ready.push_back(*b);
            }
            Op::Schedule(b, k) => {
                let due = now + u64::from(*k);
                let delay = if *k == 0 {
                    Duration::ZERO
                } else {
                    (bucket(due) + unit / 2).saturating_duration_since(Instant::now())
                };
                let entry = NewEntry::new(vec![*b]);
                let batch = ScheduleBatch::new(generation, &sp, &entry, delay);
                let handle = store.schedule(&q, &batch).await.expect("schedule");
                model.seq += 1;
                // Delay 0: due at once, promoted by the next operation like a push.
                let due = if *k == 0 { now.wrapping_sub(1) } else { due };
                let waiting = Waiting { byte: *b, due, seq: model.seq, handle, waiting: true };
                if *k == 0 {
                    model.ready.push_back(*b);
                    model.schedule.push(Waiting { waiting: false, ..waiting });
                } else {
                    model.schedule.push(waiting);
                }
            }
            Op::Cancel(n) => {
                if !model.schedule.is_empty() {
                    let i = n % model.schedule.len();
                    let cancelled = store.cancel(&q, &model.schedule[i].handle).await;
                    let want = model.schedule[i].waiting;
                    same(cancelled.expect("cancel"), want, &at("cancelled"))?;
                    model.schedule[i].waiting = false;
                }
            }
            Op::Take(n) => {
                let taken = store.take(&q, *n, AMO).await.expect("take");
                let want: Vec<u8> =
                    model.ready.drain(..(*n as usize).min(model.ready.len())).collect();
                same(bytes(&taken.entries), want, &at("taken"))?;
                if let Some(e) = taken.entries.last() {
                    last_id = last_id.max(e.id);
                }
                // A take of nothing may not look at the store at all.
                let waits = model.delayed() > 0;
                ensure(*n == 0 || taken.next_due.is_some() == waits, || {
                    at(&format!("next due {:?} with {} waiting", taken.next_due, model.delayed()))
                })?;
            }
            Op::Advance(k) => {
                now += u64::from(*k);
                tokio::time::sleep_until(bucket(now)).await;
                model.promote(now);
            }
        }
        // Not right after time passed: the stat and the read would promote what came due, and
        // the next operation must do that itself.
        if matches!(op, Op::Advance(_)) {
            continue;
        }
        let stat = store.stat(&q).await.expect("stat");
        same((stat.count, stat.delayed), (model.ready.len() as u64, model.delayed()), &at("stat"))?;
        let all = store.read(&q, Position::Start, u32::MAX).await.expect("read");
        same(bytes(&all.entries), Vec::from(model.ready.clone()), &at("the queue"))?;
    }
    store.close(&q, None).await.expect("close");
    Ok(())
}

/// P8 (property model): however pushes, schedules, cancels, takes and the passing of time
/// interleave, the queue holds exactly the model's ready messages in order (due messages in
/// due order, after what was pushed before they came due), counts the waiting ones as delayed,
/// and cancel succeeds exactly for messages still waiting.
pub async fn model_delayed_messages_follow_their_due_times(backend: &dyn Backend) {
    let store = connected(backend).await;
    // Real-time rows need buckets long enough for a quarter of one to hold a few round trips.
    let unit =
        if backend.paused_clock() { Duration::from_secs(1) } else { Duration::from_millis(400) };
    let sequences = vec(op(), 1..40);
    check("delayed", backend.model_cases(), sequences, |ops| run(&*store, unit, ops)).await;
}
