//! Property test of the public queue API on the memory store: random sequences of push, consume
//! (with a limit), consume-then-stop, flush and count, checked against a `VecDeque` model.
//! Proptest shrinks a failure to a minimal sequence.

use busmq_core::{Bus, ConsumeOptions, Queue};
use busmq_memory::Memory;
use futures::StreamExt;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
enum Op {
    /// Push this many messages in one batch (or one by one when `batched` is false).
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
    /// Drop a consumer after taking some, instead of stopping it.
    TakeThenDrop {
        prefetch: u8,
        take: u8,
    },
    Flush,
    Count,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..20, any::<bool>()).prop_map(|(n, batched)| Op::Push { n, batched }),
        (1u8..10).prop_map(Op::ConsumeMax),
        (1u8..16, 1u8..8).prop_map(|(prefetch, take)| Op::TakeThenStop { prefetch, take }),
        (1u8..16, 1u8..8).prop_map(|(prefetch, take)| Op::TakeThenDrop { prefetch, take }),
        Just(Op::Flush),
        Just(Op::Count),
    ]
}

async fn take(queue: &Queue, options: ConsumeOptions, n: usize, stop: bool) -> Vec<u32> {
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    let mut got = Vec::new();
    while got.len() < n {
        got.push(consumer.next().await.expect("a message").expect("decodes").into_body());
    }
    if stop {
        queue.stop().await.expect("stop");
    } else {
        drop(consumer);
        while queue.is_consuming().await {
            tokio::task::yield_now().await;
        }
    }
    got
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let memory = Memory::new();
    let bus = Bus::new(memory.store());
    bus.connect().await.expect("connect");
    let queue = bus.queue("model").expect("name");
    queue.attach().await.expect("attach");
    let mut model: VecDeque<u32> = VecDeque::new();
    let mut next = 0u32;
    for op in ops {
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
                    let want: Vec<u32> = model.drain(..k).collect();
                    prop_assert_eq!(got, want);
                }
            }
            Op::TakeThenStop { prefetch, take: t } | Op::TakeThenDrop { prefetch, take: t } => {
                let stop = matches!(op, Op::TakeThenStop { .. });
                let t = usize::from(t).min(model.len());
                if t > 0 {
                    let options = ConsumeOptions::new().prefetch(u32::from(prefetch));
                    let got = take(&queue, options, t, stop).await;
                    let want: Vec<u32> = model.drain(..t).collect();
                    prop_assert_eq!(got, want);
                }
            }
            Op::Flush => {
                queue.flush().await.expect("flush");
                model.clear();
            }
            Op::Count => {}
        }
        prop_assert_eq!(queue.count().await.expect("count"), model.len() as u64);
    }
    let rest = model.len();
    if rest > 0 {
        let got = take(&queue, ConsumeOptions::new().max(rest as u64), rest, false).await;
        prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }
    bus.disconnect().await.expect("disconnect");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn queue_api_matches_a_fifo_model(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
