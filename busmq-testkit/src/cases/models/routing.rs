//! Property model of priorities (SPEC P12) and per-key ordering (SPEC P11) through the Store
//! trait: random sequences of push (one to three messages in one store call, each with its own
//! level and key), take (at most once or reliable), ack and
//! release, checked after every step against a plain model that recomputes the take order
//! from scratch: returned entries first in id order, then takeable entries by level (highest
//! first) in id order, where an entry of a key is takeable only while it holds the key's gate.

use super::runner::{Outcome, check, same};
use crate::backend::Backend;
use crate::cases::store::fixtures::{AMO, connected, queue, reliable, spec};
use busmq_core::Store;
use busmq_core::store::{Entry, NewEntry, Position, PushBatch, Settle, Settled, Settlement};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const LEVELS: [u8; 3] = [0, 4, 9];
const KEYS: [&str; 3] = ["k0", "k1", "k2"];

#[derive(Clone, Debug)]
enum Op {
    /// Push one message per `(level, key)` in one store call: at `LEVELS[level]`, with
    /// `KEYS[key]` if any.
    Push(Vec<(usize, Option<usize>)>),
    /// Take at most this many, reliably or at most once.
    Take { max: u32, reliable: bool },
    /// Acknowledge the n-th held delivery (modulo their number).
    Ack(usize),
    /// Release the n-th held delivery (modulo their number).
    Release(usize),
}

// `Tree: Send`: the tree lives across the awaits of a case, whose future must be `Send`.
fn op() -> impl Strategy<Value = Op, Tree: Send> {
    prop_oneof![
        5 => vec((0usize..3, prop::option::weighted(0.7, 0usize..3)), 1..4).prop_map(Op::Push),
        3 => (0u32..9, any::<bool>()).prop_map(|(max, reliable)| Op::Take { max, reliable }),
        2 => (0usize..8).prop_map(Op::Ack),
        1 => (0usize..8).prop_map(Op::Release),
    ]
}

/// A ready message in the model (by push number, which orders like ids).
#[derive(Clone, Debug)]
struct Msg {
    byte: u8,
    level: u8,
    key: Option<&'static str>,
    returned: bool,
}

#[derive(Default)]
struct Model {
    ready: BTreeMap<u8, Msg>,
    /// Reliable deliveries not yet settled, in take order.
    held: Vec<(Entry, Msg)>,
    /// The push number of each key's out entry.
    gates: HashMap<&'static str, u8>,
}

impl Model {
    fn push(&mut self, msg: Msg) {
        if let Some(key) = msg.key {
            self.gates.entry(key).or_insert(msg.byte);
        }
        self.ready.insert(msg.byte, msg);
    }

    fn takeable(&self, msg: &Msg) -> bool {
        msg.returned || msg.key.is_none_or(|key| self.gates.get(key) == Some(&msg.byte))
    }

    /// The next entry a take finds, removed.
    fn next(&mut self) -> Option<Msg> {
        let returned = self.ready.values().find(|m| m.returned).map(|m| m.byte);
        let by_level = || {
            let takeable = self.ready.values().filter(|m| !m.returned && self.takeable(m));
            takeable.min_by_key(|m| (std::cmp::Reverse(m.level), m.byte)).map(|m| m.byte)
        };
        let byte = returned.or_else(by_level)?;
        self.ready.remove(&byte)
    }

    /// Passes the gate of `msg`'s key, if it holds it, to the key's oldest ready entry.
    fn pass(&mut self, msg: &Msg) {
        let Some(key) = msg.key else { return };
        if self.gates.get(key) != Some(&msg.byte) {
            return;
        }
        match self.ready.values().find(|m| m.key == Some(key)) {
            Some(next) => self.gates.insert(key, next.byte),
            None => self.gates.remove(key),
        };
    }
}

fn bytes(entries: &[Entry]) -> Vec<u8> {
    entries.iter().map(|e| e.payload[0]).collect()
}

async fn run(store: &dyn Store, ops: Vec<Op>) -> Outcome {
    let q = queue("routing-model");
    let sp = spec();
    let generation = store.attach(&q, &sp).await.expect("attach").generation;
    let mode = reliable(Duration::from_secs(600), 1000);
    let mut model = Model::default();
    let mut pushed = 0u8;
    for (step, op) in ops.into_iter().enumerate() {
        let at = |what: &str| format!("step {step} ({op:?}): {what}");
        match &op {
            Op::Push(routes) => {
                let mut batch = Vec::new();
                let mut msgs = Vec::new();
                for (level, key) in routes {
                    let msg = Msg {
                        byte: pushed,
                        level: LEVELS[*level],
                        key: key.map(|k| KEYS[k]),
                        returned: false,
                    };
                    pushed += 1;
                    let entry = NewEntry::new(vec![msg.byte]).with_priority(msg.level);
                    batch.push(entry.with_ordering_key(msg.key.map(Into::into)));
                    msgs.push(msg);
                }
                store.push(&q, &PushBatch::new(generation, &sp, &batch)).await.expect("push");
                for msg in msgs {
                    model.push(msg);
                }
            }
            Op::Take { max, reliable } => {
                let taken = store.take(&q, *max, if *reliable { mode } else { AMO }).await;
                let taken = taken.expect("take");
                let mut want: Vec<Msg> = Vec::new();
                while want.len() < *max as usize {
                    let Some(msg) = model.next() else { break };
                    if !*reliable {
                        // Gone at the take: the key's next may come in this same take.
                        model.pass(&msg);
                    }
                    want.push(msg);
                }
                let want_bytes: Vec<u8> = want.iter().map(|m| m.byte).collect();
                same(bytes(&taken.entries), want_bytes, &at("taken"))?;
                for (entry, msg) in taken.entries.iter().zip(want) {
                    let routed = (entry.priority, entry.ordering_key.as_deref());
                    same(routed, (msg.level, msg.key), &at("level and key"))?;
                    if *reliable {
                        model.held.push((entry.clone(), msg));
                    }
                }
            }
            Op::Ack(n) | Op::Release(n) => {
                if model.held.is_empty() {
                    continue;
                }
                let (entry, mut msg) = model.held.remove(n % model.held.len());
                let action =
                    if matches!(op, Op::Ack(_)) { Settlement::Ack } else { Settlement::Release };
                let outcome = store.settle(&q, &[Settle::of(&entry, action)]).await;
                same(outcome.expect("settle"), vec![Settled::Done], &at("settled"))?;
                if action == Settlement::Ack {
                    model.pass(&msg);
                } else {
                    msg.returned = true;
                    model.ready.insert(msg.byte, msg);
                }
            }
        }
        let stat = store.stat(&q).await.expect("stat");
        let want = (model.ready.len() as u64, model.held.len() as u64);
        same((stat.count, stat.pending), want, &at("stat"))?;
        let all = store.read(&q, Position::Start, u32::MAX).await.expect("read");
        let want: Vec<u8> = model.ready.keys().copied().collect();
        same(bytes(&all.entries), want, &at("the queue in id order"))?;
    }
    store.close(&q, None).await.expect("close");
    Ok(())
}

/// P11, P12 (property model): however pushes with levels and keys, takes of both modes, acks
/// and releases interleave, takes return exactly what the model's order gives (returned first,
/// then by level, one entry per key out), and the queue holds the model's ready entries in id
/// order, waiting ones included.
pub async fn model_priorities_and_keys_follow_the_take_order(backend: &dyn Backend) {
    let store = connected(backend).await;
    let sequences = vec(op(), 1..60);
    check("routing", backend.model_cases(), sequences, |ops| run(&*store, ops)).await;
}
