//! Property test: random sequences of push (batches), at-most-once take, restore, flush and
//! count on one queue, checked step by step against a `VecDeque` model. Proptest shrinks a
//! failure to a minimal sequence of operations.

mod common;

use busmq_core::store::{Entry, NewEntry, Position, QueueSpec, TakeMode};
use busmq_core::{Error, Store};
use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::VecDeque;

const MAXSIZE: usize = 8;

#[derive(Clone, Debug)]
enum Op {
    /// Push these payloads as one batch.
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

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => vec(any::<u8>(), 1..5).prop_map(Op::Push),
        3 => (0u32..5).prop_map(Op::Take),
        1 => Just(Op::RestoreNewest),
        1 => Just(Op::RestoreOldest),
        1 => Just(Op::Flush),
        2 => Just(Op::Count),
    ]
}

/// The model: ready messages as (id, payload) in order, and the batches taken and not given
/// back. Restored messages go back to their place by id, which is "at the head, in order" for
/// messages taken from the head.
#[derive(Default)]
struct Model {
    ready: VecDeque<(u64, u8)>,
    held: VecDeque<Vec<Entry>>,
    last_id: u64,
}

impl Model {
    fn restore(&mut self, entries: &[Entry]) {
        for e in entries {
            let pos = self.ready.partition_point(|(id, _)| *id < e.id);
            self.ready.insert(pos, (e.id, e.payload[0]));
        }
    }
}

fn pairs(entries: &[Entry]) -> Vec<(u64, u8)> {
    entries.iter().map(|e| (e.id, e.payload[0])).collect()
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = store().await;
    let queue = q("model");
    let spec = QueueSpec { maxsize: Some(MAXSIZE as u64), ..QueueSpec::default() };
    let generation = store.attach(&queue, &spec).await.unwrap().generation;
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Push(batch) => {
                let entries: Vec<NewEntry> =
                    batch.iter().map(|b| NewEntry::new(vec![*b])).collect();
                let pushed = store.push(&queue, generation, &spec, &entries).await;
                if model.ready.len() + batch.len() > MAXSIZE {
                    prop_assert!(matches!(pushed, Err(Error::QueueFull { .. })), "{pushed:?}");
                } else {
                    let first = pushed.unwrap();
                    prop_assert!(first > model.last_id, "ids go forward");
                    for (id, b) in (first..).zip(&batch) {
                        model.ready.push_back((id, *b));
                        model.last_id = id;
                    }
                }
            }
            Op::Take(n) => {
                let taken = store.take(&queue, &consumer(), n, TakeMode::AtMostOnce).await.unwrap();
                let expected: Vec<_> =
                    model.ready.drain(..(n as usize).min(model.ready.len())).collect();
                prop_assert_eq!(pairs(&taken.entries), expected);
                if !taken.entries.is_empty() {
                    model.held.push_back(taken.entries);
                }
            }
            Op::RestoreNewest | Op::RestoreOldest => {
                let batch = match op {
                    Op::RestoreNewest => model.held.pop_back(),
                    _ => model.held.pop_front(),
                };
                if let Some(batch) = batch {
                    store.restore(&queue, &spec, &batch).await.unwrap();
                    model.restore(&batch);
                }
            }
            Op::Flush => {
                store.flush(&queue).await.unwrap();
                model.ready.clear();
            }
            Op::Count => {
                let count = store.stat(&queue).await.unwrap().count;
                prop_assert_eq!(count, model.ready.len() as u64);
            }
        }
        // Checking everything after each step stops at the first divergence, so shrinking
        // ends on the operation that broke the queue.
        let all = store.read(&queue, Position::Start, u32::MAX).await.unwrap();
        prop_assert_eq!(pairs(&all.entries), Vec::from(model.ready.clone()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_queue_behaves_like_a_deque(ops in vec(op(), 1..60)) {
        // A paused clock: the queue's ttl never passes, however slow the machine is.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(run(ops))?;
    }
}
