//! Property model of delayed messages together with priorities and ordering keys through the
//! Store trait (SPEC P8, P11, P12; docs/ordering.md O1, O2, O6): random sequences of push
//! (level, key), schedule (level, key, due some buckets later), cancel, take (at most once or
//! reliable), ack, release and advance-time, checked after every step against a model that
//! recomputes the take order from scratch. A scheduled message comes due with a fresh id and
//! is then routed like a push made at that moment: behind its key's out message, if any.
//! Time runs in buckets as in `delayed.rs`, so whether a message is due is never a race between
//! clocks.

use super::runner::{Outcome, check, ensure, same};
use crate::backend::Backend;
use crate::cases::store::fixtures::{AMO, connected, queue, reliable, spec};
use busmq_core::store::{
    Entry, NewEntry, Position, PushBatch, QueueSpec, ScheduleBatch, Scheduled, Settle, Settled,
    Settlement,
};
use busmq_core::{QueueName, Store};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

const LEVELS: [u8; 3] = [0, 4, 9];
// Two keys only: scheduled messages then often come due behind an out message of their key.
const KEYS: [&str; 2] = ["k0", "k1"];

#[derive(Clone, Debug)]
enum Op {
    /// Push one message at `LEVELS[level]`, with `KEYS[key]` if any.
    Push { level: usize, key: Option<usize> },
    /// Schedule one such message, due this many buckets later (0: this bucket).
    Schedule { level: usize, key: Option<usize>, due: u32 },
    /// Cancel the n-th schedule made so far (modulo their number).
    Cancel(usize),
    /// Take at most this many, reliably or at most once.
    Take { max: u32, reliable: bool },
    /// Acknowledge the n-th held delivery (modulo their number).
    Ack(usize),
    /// Release the n-th held delivery (modulo their number).
    Release(usize),
    /// Let this many buckets pass.
    Advance(u32),
}

// `Tree: Send`: the tree lives across the awaits of a case, whose future must be `Send`.
fn op() -> impl Strategy<Value = Op, Tree: Send> {
    let routed = || (0usize..3, prop::option::weighted(0.7, 0usize..2));
    prop_oneof![
        3 => routed().prop_map(|(level, key)| Op::Push { level, key }),
        4 => (routed(), 0u32..4).prop_map(|((level, key), due)| Op::Schedule { level, key, due }),
        1 => (0usize..16).prop_map(Op::Cancel),
        3 => (0u32..4, any::<bool>()).prop_map(|(max, reliable)| Op::Take { max, reliable }),
        2 => (0usize..8).prop_map(Op::Ack),
        1 => (0usize..8).prop_map(Op::Release),
        2 => (1u32..3).prop_map(Op::Advance),
    ]
}

/// A message in the model: its byte (unique per sequence), level and key.
#[derive(Clone, Debug)]
struct Msg {
    byte: u8,
    level: u8,
    key: Option<&'static str>,
    returned: bool,
}

/// A scheduled message: its due bucket, schedule order, handle, and whether it still waits.
struct Waiting {
    msg: Msg,
    due: u64,
    seq: u64,
    handle: Scheduled,
    waiting: bool,
}

#[derive(Default)]
struct Model {
    /// Ready messages by id order: a push, or a scheduled message coming due, takes the next.
    ready: BTreeMap<u64, Msg>,
    next_id: u64,
    /// Reliable deliveries not yet settled, in take order, with their id order.
    held: Vec<(Entry, u64, Msg)>,
    /// The id order of each key's out message.
    gates: HashMap<&'static str, u64>,
    schedule: Vec<Waiting>,
}

impl Model {
    /// A message made ready now (pushed, or come due): it takes its key's gate if none is out.
    fn ready_now(&mut self, msg: Msg) {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(key) = msg.key {
            self.gates.entry(key).or_insert(id);
        }
        self.ready.insert(id, msg);
    }

    /// Makes ready what is due by bucket `now`, in due then schedule order (O6).
    fn promote(&mut self, now: u64) {
        let mut due: Vec<usize> =
            (0..self.schedule.len()).filter(|i| self.is_due(*i, now)).collect();
        // Within a bucket the store's own due stamp decides (Redis: the due time in ms on its
        // clock, which the model cannot predict to the millisecond); equal stamps keep
        // schedule order.
        due.sort_by_key(|i| {
            let w = &self.schedule[*i];
            (w.due, w.handle.due(), w.seq)
        });
        for i in due {
            self.schedule[i].waiting = false;
            let msg = self.schedule[i].msg.clone();
            self.ready_now(msg);
        }
    }

    fn is_due(&self, i: usize, now: u64) -> bool {
        self.schedule[i].waiting && self.schedule[i].due < now
    }

    fn delayed(&self) -> u64 {
        self.schedule.iter().filter(|w| w.waiting).count() as u64
    }

    fn takeable(&self, id: u64, msg: &Msg) -> bool {
        msg.returned || msg.key.is_none_or(|key| self.gates.get(key) == Some(&id))
    }

    /// The next message a take finds (O1), removed: returned ones first in id order, then
    /// takeable ones by level, highest first, in id order.
    fn next(&mut self) -> Option<(u64, Msg)> {
        let returned = self.ready.iter().find(|(_, m)| m.returned).map(|(id, _)| *id);
        let by_level = || {
            let takeable =
                self.ready.iter().filter(|(id, m)| !m.returned && self.takeable(**id, m));
            takeable.min_by_key(|(id, m)| (std::cmp::Reverse(m.level), **id)).map(|(id, _)| *id)
        };
        let id = returned.or_else(by_level)?;
        self.ready.remove(&id).map(|msg| (id, msg))
    }

    /// Passes the gate of `msg`'s key, if it holds it, to the key's oldest ready message (O2).
    fn pass(&mut self, id: u64, msg: &Msg) {
        let Some(key) = msg.key else { return };
        if self.gates.get(key) != Some(&id) {
            return;
        }
        match self.ready.iter().find(|(_, m)| m.key == Some(key)) {
            Some((next, _)) => self.gates.insert(key, *next),
            None => self.gates.remove(key),
        };
    }

    /// What a read returns: every ready message in id order, with its level and key (O4).
    fn read(&self) -> Vec<(u8, u8, Option<&'static str>)> {
        self.ready.values().map(|m| (m.byte, m.level, m.key)).collect()
    }
}

fn routed(entries: &[Entry]) -> Vec<(u8, u8, Option<&str>)> {
    entries.iter().map(|e| (e.payload[0], e.priority, e.ordering_key.as_deref())).collect()
}

/// What [`write`] did: a push's id, or a schedule's handle.
enum Written {
    Pushed(u64),
    Scheduled(Scheduled),
}

/// Pushes `msg` (no `delay`) or schedules it, with its level and key on the entry.
async fn write(
    store: &dyn Store,
    q: &QueueName,
    (generation, sp): (u64, &QueueSpec),
    msg: &Msg,
    delay: Option<Duration>,
) -> busmq_core::Result<Written> {
    let entry = NewEntry::new(vec![msg.byte])
        .with_priority(msg.level)
        .with_ordering_key(msg.key.map(Into::into));
    match delay {
        None => {
            let batch = PushBatch::new(generation, sp, std::slice::from_ref(&entry));
            store.push(q, &batch).await.map(Written::Pushed)
        }
        Some(delay) => {
            let batch = ScheduleBatch::new(generation, sp, &entry, delay);
            store.schedule(q, &batch).await.map(Written::Scheduled)
        }
    }
}

async fn run(store: &dyn Store, unit: Duration, ops: Vec<Op>) -> Outcome {
    let q = queue("timed-routing-model");
    let sp = spec();
    let generation = store.attach(&q, &sp).await.expect("attach").generation;
    let mode = reliable(Duration::from_secs(3600), 1000);
    let start = Instant::now();
    let bucket = |n: u64| start + unit * u32::try_from(n).unwrap_or(u32::MAX);
    let mut now = 0u64;
    let mut model = Model::default();
    let (mut written, mut last_id, mut seq) = (0u8, 0u64, 0u64);
    'steps: for (step, op) in ops.into_iter().enumerate() {
        let at = |what: &str| format!("step {step} ({op:?}): {what}");
        // A bucket that overran its first quarter is left (and as many as were overrun): the
        // step starts clean in the first quarter of a bucket.
        if Instant::now() > bucket(now) + unit / 4 {
            while Instant::now() > bucket(now) + unit / 4 {
                now += 1;
            }
            tokio::time::sleep_until(bucket(now)).await;
        }
        // Nothing comes due before the next bucket's middle: a step whose last store call
        // answered after it (a stall of more than a bucket on a busy machine) may have seen
        // the store make ready what the model still holds back, so the sequence ends there,
        // unchecked (neither failed nor passed beyond what was checked).
        let next_due = bucket(now + 1) + unit / 2;
        macro_rules! unless_raced {
            () => {
                if Instant::now() >= next_due {
                    break 'steps;
                }
            };
        }
        // Due messages come before anything done from now on.
        model.promote(now);
        match &op {
            Op::Push { level, key } | Op::Schedule { level, key, .. } => {
                let msg = Msg {
                    byte: written,
                    level: LEVELS[*level],
                    key: key.map(|k| KEYS[k]),
                    returned: false,
                };
                written += 1;
                let due = match &op {
                    Op::Schedule { due, .. } => Some(now + u64::from(*due)),
                    _ => None,
                };
                // Due in a later bucket: half a unit into it. Due now: delay 0, made ready at
                // once like a push.
                let delay = due.map(|due| {
                    if due == now {
                        Duration::ZERO
                    } else {
                        (bucket(due) + unit / 2).saturating_duration_since(Instant::now())
                    }
                });
                let written = write(store, &q, (generation, &sp), &msg, delay).await;
                unless_raced!();
                match written.expect("write") {
                    Written::Pushed(id) => {
                        ensure(id > last_id, || at("ids go forward"))?;
                        last_id = id;
                        model.ready_now(msg);
                    }
                    Written::Scheduled(handle) => {
                        seq += 1;
                        let due = due.expect("a schedule has a due bucket");
                        let waiting = due > now;
                        if !waiting {
                            model.ready_now(msg.clone());
                        }
                        model.schedule.push(Waiting { msg, due, seq, handle, waiting });
                    }
                }
            }
            Op::Cancel(n) => {
                if !model.schedule.is_empty() {
                    let i = n % model.schedule.len();
                    let cancelled = store.cancel(&q, &model.schedule[i].handle).await;
                    unless_raced!();
                    same(cancelled.expect("cancel"), model.schedule[i].waiting, &at("cancelled"))?;
                    model.schedule[i].waiting = false;
                }
            }
            Op::Take { max, reliable } => {
                let taken = store.take(&q, *max, if *reliable { mode } else { AMO }).await;
                unless_raced!();
                let taken = taken.expect("take");
                let mut want = Vec::new();
                while want.len() < *max as usize {
                    let Some((id, msg)) = model.next() else { break };
                    if !*reliable {
                        // Gone at the take: the key's next may come in this same take.
                        model.pass(id, &msg);
                    }
                    want.push((id, msg));
                }
                let want_routed = want.iter().map(|(_, m)| (m.byte, m.level, m.key)).collect();
                same(routed(&taken.entries), want_routed, &at("taken"))?;
                if let Some(e) = taken.entries.iter().map(|e| e.id).max() {
                    last_id = last_id.max(e);
                }
                if *reliable {
                    for (entry, (id, msg)) in taken.entries.iter().zip(want) {
                        model.held.push((entry.clone(), id, msg));
                    }
                }
                // A take of nothing may not look at the store at all.
                let waits = model.delayed() > 0;
                ensure(*max == 0 || taken.next_due.is_some() == waits, || {
                    at(&format!("next due {:?} with {} waiting", taken.next_due, model.delayed()))
                })?;
            }
            Op::Ack(n) | Op::Release(n) => {
                if model.held.is_empty() {
                    continue;
                }
                let (entry, id, mut msg) = model.held.remove(n % model.held.len());
                let action =
                    if matches!(op, Op::Ack(_)) { Settlement::Ack } else { Settlement::Release };
                let outcome = store.settle(&q, &[Settle::of(&entry, action)]).await;
                unless_raced!();
                same(outcome.expect("settle"), vec![Settled::Done], &at("settled"))?;
                if action == Settlement::Ack {
                    model.pass(id, &msg);
                } else {
                    // Given back with its id, still holding its key (O2).
                    msg.returned = true;
                    model.ready.insert(id, msg);
                }
            }
            Op::Advance(k) => {
                now += u64::from(*k);
                tokio::time::sleep_until(bucket(now)).await;
            }
        }
        // Not right after time passed: the stat and the read would make ready what came due,
        // and the next operation must do that itself.
        if matches!(op, Op::Advance(_)) {
            continue;
        }
        let stat = store.stat(&q).await.expect("stat");
        unless_raced!();
        let want = (model.ready.len() as u64, model.delayed(), model.held.len() as u64);
        same((stat.count, stat.delayed, stat.pending), want, &at("stat"))?;
        let all = store.read(&q, Position::Start, u32::MAX).await.expect("read");
        unless_raced!();
        same(routed(&all.entries), model.read(), &at("the queue in id order"))?;
    }
    store.close(&q, None).await.expect("close");
    Ok(())
}

/// P8, P11, P12 (property model, docs/ordering.md O1, O2, O6): however pushes and schedules
/// with levels and keys, cancels, takes of both modes, acks, releases and the passing of time
/// interleave, a scheduled message comes due with a fresh id and is routed like a push made
/// then (behind its key's out message), takes return exactly what the model's order gives,
/// cancel succeeds exactly for messages still waiting, and the queue holds the model's ready
/// messages in id order, waiting ones included.
pub async fn model_scheduled_messages_are_routed_by_level_and_key_when_due(backend: &dyn Backend) {
    let store = connected(backend).await;
    // Real-time rows need buckets long enough for a quarter of one to hold a few round trips.
    let unit =
        if backend.paused_clock() { Duration::from_secs(1) } else { Duration::from_millis(400) };
    let sequences = vec(op(), 1..50);
    check("timed routing", backend.model_cases(), sequences, |ops| run(&*store, unit, ops)).await;
}
