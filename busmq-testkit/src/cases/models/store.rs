//! Property model of one queue through the Store trait: random sequences of push (batches),
//! at-most-once take, restore, flush and count, checked after every step against a `VecDeque`
//! (SPEC Q5, Q6, Q8-Q10, Q12).

use super::runner::{Outcome, check, ensure, same};
use crate::backend::Backend;
use crate::cases::store::fixtures::{AMO, connected, maxsize, queue, try_push};
use busmq_core::store::{Entry, NewEntry, Position, Restored};
use busmq_core::{Error, Store};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::VecDeque;

const MAXSIZE: usize = 8;

#[derive(Clone, Debug)]
enum Op {
    /// Push these one-byte payloads as one batch.
    Push(Vec<u8>),
    /// Take at most this many.
    Take(u32),
    /// Give back the most recently taken batch still held.
    RestoreNewest,
    /// Give back the oldest taken batch still held.
    RestoreOldest,
    Flush,
    Count,
}

// `Tree: Send`: the tree lives across the awaits of a case, whose future must be `Send`.
fn op() -> impl Strategy<Value = Op, Tree: Send> {
    prop_oneof![
        4 => vec(any::<u8>(), 1..5).prop_map(Op::Push),
        3 => (0u32..5).prop_map(Op::Take),
        1 => Just(Op::RestoreNewest),
        1 => Just(Op::RestoreOldest),
        1 => Just(Op::Flush),
        2 => Just(Op::Count),
    ]
}

/// The ready messages as (id, payload) in order, the batches taken and not given back, and the
/// newest id pushed.
#[derive(Default)]
struct Model {
    ready: VecDeque<(u64, u8)>,
    held: VecDeque<Vec<Entry>>,
    last_id: u64,
}

impl Model {
    /// Every restored entry goes back at its id's place among the ready ones.
    fn restore(&mut self, batch: &[Entry]) {
        for e in batch {
            let at = self.ready.partition_point(|(id, _)| *id < e.id);
            self.ready.insert(at, (e.id, e.payload[0]));
        }
    }
}

fn pairs(entries: &[Entry]) -> Vec<(u64, u8)> {
    entries.iter().map(|e| (e.id, e.payload[0])).collect()
}

async fn run(store: &dyn Store, ops: Vec<Op>) -> Outcome {
    let q = queue("store-model");
    let spec = maxsize(MAXSIZE as u64);
    let generation = store.attach(&q, &spec).await.expect("attach").generation;
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        let at = |what: &str| format!("step {step} ({op:?}): {what}");
        match &op {
            Op::Push(batch) => {
                let entries: Vec<NewEntry> =
                    batch.iter().map(|b| NewEntry::new(vec![*b])).collect();
                let pushed = try_push(store, &q, generation, &spec, &entries).await;
                if model.ready.len() + batch.len() > MAXSIZE {
                    let full = matches!(pushed, Err(Error::QueueFull { .. }));
                    ensure(full, || at(&format!("expected QueueFull, got {pushed:?}")))?;
                } else {
                    let first = pushed.expect("push");
                    ensure(first > model.last_id, || at("ids go forward"))?;
                    for (id, b) in (first..).zip(batch) {
                        model.ready.push_back((id, *b));
                        model.last_id = id;
                    }
                }
            }
            Op::Take(n) => {
                let taken = store.take(&q, *n, AMO).await.expect("take");
                let want: Vec<_> =
                    model.ready.drain(..(*n as usize).min(model.ready.len())).collect();
                same(pairs(&taken.entries), want, &at("taken"))?;
                if !taken.entries.is_empty() {
                    model.held.push_back(taken.entries);
                }
            }
            Op::RestoreNewest | Op::RestoreOldest => {
                let newest = matches!(op, Op::RestoreNewest);
                let batch = if newest { model.held.back() } else { model.held.front() };
                if let Some(batch) = batch.cloned() {
                    let restored = store.restore(&q, generation, &batch).await.expect("restore");
                    ensure(restored == Restored::Done, || at(&format!("restored: {restored:?}")))?;
                    model.restore(&batch);
                    if newest {
                        model.held.pop_back()
                    } else {
                        model.held.pop_front()
                    };
                }
            }
            Op::Flush => {
                store.flush(&q).await.expect("flush");
                model.ready.clear();
            }
            Op::Count => {
                let count = store.stat(&q).await.expect("stat").count;
                same(count, model.ready.len() as u64, &at("count"))?;
            }
        }
        // Checked after each step, so that a failure (and its shrinking) stops at the step that
        // broke the queue.
        let all = store.read(&q, Position::Start, u32::MAX).await.expect("read");
        same(pairs(&all.entries), Vec::from(model.ready.clone()), &at("the queue"))?;
    }
    store.close(&q, None).await.expect("close");
    Ok(())
}

/// Q5, Q6, Q8-Q10, Q12 (property model): however pushes, takes, restores and flushes
/// interleave, the queue holds exactly what a `VecDeque` model holds, in the same order, with
/// ids that only go forward and whole batches refused at `maxsize`.
pub async fn model_store_queue_behaves_like_a_deque(backend: &dyn Backend) {
    let store = connected(backend).await;
    let sequences = vec(op(), 1..60);
    check("store queue", backend.model_cases(), sequences, |ops| run(&*store, ops)).await;
}
