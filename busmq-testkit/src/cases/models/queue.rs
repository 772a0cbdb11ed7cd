//! Property model of the public queue API: random sequences of push (batched or one by one),
//! consume with a limit, consume-then-stop, consume-then-drop, flush and count, checked against
//! a FIFO model (SPEC Q5, Q9-Q12).

use super::runner::{Outcome, check, same};
use crate::backend::Backend;
use crate::support::{bus, eventually, unique, within};
use busmq_core::{ConsumeOptions, Queue};
use futures::StreamExt;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
enum Op {
    /// Push this many messages in one batch (or one by one, concurrently, when not batched).
    Push {
        n: u8,
        batched: bool,
    },
    /// Consume exactly this many with `max` (capped to what the model holds).
    ConsumeMax(u8),
    /// Consume with this prefetch, take this many, then stop: the rest must go back in order.
    TakeThenStop {
        prefetch: u8,
        take: u8,
    },
    /// Drop the consumer after taking some, instead of stopping it.
    TakeThenDrop {
        prefetch: u8,
        take: u8,
    },
    Flush,
    Count,
}

// `Tree: Send`: the tree lives across the awaits of a case, whose future must be `Send`.
fn op() -> impl Strategy<Value = Op, Tree: Send> {
    prop_oneof![
        (1u8..20, any::<bool>()).prop_map(|(n, batched)| Op::Push { n, batched }),
        (1u8..10).prop_map(Op::ConsumeMax),
        (1u8..16, 1u8..8).prop_map(|(prefetch, take)| Op::TakeThenStop { prefetch, take }),
        (1u8..16, 1u8..8).prop_map(|(prefetch, take)| Op::TakeThenDrop { prefetch, take }),
        Just(Op::Flush),
        Just(Op::Count),
    ]
}

/// Consumes `n` messages with `options`, then stops the consumer (or drops it and waits until
/// the queue no longer consumes).
async fn take(queue: &Queue, options: ConsumeOptions, n: usize, stop: bool) -> Vec<u32> {
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    let mut got = Vec::new();
    while got.len() < n {
        let next = within("a message", consumer.next()).await;
        got.push(next.expect("a message").expect("decodes").into_body());
    }
    if stop {
        queue.stop().await.expect("stop");
    } else {
        drop(consumer);
        eventually("the dropped consumer to stop", || async { !queue.is_consuming().await }).await;
    }
    got
}

async fn run(backend: &dyn Backend, ops: Vec<Op>) -> Outcome {
    let bus = bus(backend).await;
    let queue = bus.queue(unique("queue-model")).expect("name");
    queue.attach().await.expect("attach");
    let mut model: VecDeque<u32> = VecDeque::new();
    let mut next = 0u32;
    for (step, op) in ops.into_iter().enumerate() {
        let at = |what: &str| format!("step {step} ({op:?}): {what}");
        match op {
            Op::Push { n, batched } => {
                let values: Vec<u32> = (next..next + u32::from(n)).collect();
                next += u32::from(n);
                if batched {
                    queue.push_all(&values).await.expect("push_all");
                } else {
                    let pushes: Vec<_> = values.iter().map(|v| queue.push(v)).collect();
                    futures::future::try_join_all(pushes).await.expect("push");
                }
                model.extend(values);
            }
            Op::ConsumeMax(k) => {
                let k = usize::from(k).min(model.len());
                if k > 0 {
                    let got = take(&queue, ConsumeOptions::new().max(k as u64), k, false).await;
                    same(got, model.drain(..k).collect(), &at("consumed"))?;
                }
            }
            Op::TakeThenStop { prefetch, take: t } | Op::TakeThenDrop { prefetch, take: t } => {
                let stop = matches!(op, Op::TakeThenStop { .. });
                let t = usize::from(t).min(model.len());
                if t > 0 {
                    let options = ConsumeOptions::new().prefetch(u32::from(prefetch));
                    let got = take(&queue, options, t, stop).await;
                    same(got, model.drain(..t).collect(), &at("consumed"))?;
                }
            }
            Op::Flush => {
                queue.flush().await.expect("flush");
                model.clear();
            }
            Op::Count => {}
        }
        same(queue.count().await.expect("count"), model.len() as u64, &at("count"))?;
    }
    let rest = model.len();
    if rest > 0 {
        let got = take(&queue, ConsumeOptions::new().max(rest as u64), rest, false).await;
        same(got, model.into_iter().collect(), "what was left")?;
    }
    queue.close().await.expect("close");
    bus.disconnect().await.expect("disconnect");
    Ok(())
}

/// Q5, Q9-Q12 (property model): whatever the mix of pushes, limited consumers, stopped and
/// dropped consumers and flushes, every message is consumed once, in push order, and `count`
/// always says how many are left.
pub async fn model_queue_api_behaves_like_a_fifo(backend: &dyn Backend) {
    let sequences = proptest::collection::vec(op(), 1..40);
    check("queue API", backend.model_cases(), sequences, |ops| run(backend, ops)).await;
}
