//! What the memory store promises beyond the shared Store contract, because it lives in one
//! process: true parallel callers meet one lock per queue, payloads are shared rather than
//! copied, notices are ready when the call returns and coalesce, publish counts its receivers,
//! subscribers are unbounded, dropping a store ends its streams, and what a close destroyed
//! stays destroyed.

mod common;

use busmq_core::Store;
use busmq_core::store::{NewEntry, Notice, PushBatch, Topics};
use busmq_memory::Memory;
use common::*;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use std::sync::Arc;

/// The next item if one is ready now (notices and messages are sent inside the store call).
fn ready<T>(stream: &mut BoxStream<'static, T>) -> Option<Option<T>> {
    stream.next().now_or_never()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_parallel_first_attachers_exactly_one_creates_the_queue() {
    for round in 0..20 {
        let memory = Memory::new();
        let queue = q(&format!("race-{round}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = connected(&memory).await;
            let (queue, barrier) = (queue.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.attach(&queue, &spec()).await.unwrap()
            }));
        }
        let mut attached = Vec::new();
        for task in tasks {
            attached.push(task.await.unwrap());
        }
        assert_eq!(attached.iter().filter(|a| !a.existed).count(), 1, "round {round}");
        assert!(attached.iter().all(|a| a.generation == attached[0].generation));
    }
}

#[tokio::test]
async fn payloads_are_shared_not_copied() {
    let store = store().await;
    let queue = q("zero-copy");
    let payload = bytes::Bytes::from(vec![7u8; 1024]);
    let generation = store.attach(&queue, &spec()).await.unwrap().generation;
    let batch = [NewEntry::new(payload.clone())];
    store.push(&queue, &PushBatch::new(generation, &spec(), &batch)).await.unwrap();
    let taken = store.take(&queue, 1, AMO).await.unwrap();
    assert_eq!(taken.entries[0].payload.as_ptr(), payload.as_ptr());
}

#[tokio::test]
async fn notices_are_ready_when_the_call_returns_coalesce_and_a_take_sends_none() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("notices");
    let generation = a.attach(&queue, &spec()).await.unwrap().generation;
    let mut watch = a.watch(&queue).await.unwrap();
    assert_eq!(ready(&mut watch), None, "nothing happened yet");
    push(&b, &queue, generation, &spec(), &["1"]).await.unwrap();
    push(&b, &queue, generation, &spec(), &["2"]).await.unwrap();
    assert_eq!(ready(&mut watch), Some(Some(Notice::Available)));
    assert_eq!(ready(&mut watch), None, "two pushes gave one notice");
    b.take(&queue, 1, AMO).await.unwrap();
    assert_eq!(ready(&mut watch), None, "a take tells nobody");
    // A close and the next incarnation's push are both told, close first.
    b.close(&queue, None).await.unwrap();
    push(&b, &queue, 1, &spec(), &["new"]).await.unwrap();
    assert_eq!(ready(&mut watch), Some(Some(Notice::Closed)));
    assert_eq!(ready(&mut watch), Some(Some(Notice::Available)));
    assert_eq!(ready(&mut watch), None);
}

#[tokio::test]
async fn publish_counts_the_subscriptions_it_reached() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let news = topic("news");
    assert_eq!(a.publish(&news, "before".into()).await.unwrap(), 0);
    let mut subs = vec![
        a.subscribe(&news).await.unwrap(),
        a.subscribe(&news).await.unwrap(),
        b.subscribe(&news).await.unwrap(),
    ];
    assert_eq!(b.publish(&news, "one".into()).await.unwrap(), 3);
    for sub in &mut subs {
        assert_eq!(ready(sub), Some(Some("one".into())));
    }
    drop(subs.pop());
    assert_eq!(a.publish(&news, "two".into()).await.unwrap(), 2, "dropped ones do not count");
}

#[tokio::test]
async fn a_slow_subscriber_neither_blocks_publishers_nor_loses_messages() {
    let store = store().await;
    let t = topic("firehose");
    let mut sub = store.subscribe(&t).await.unwrap();
    for i in 0..10_000u32 {
        assert_eq!(store.publish(&t, i.to_string().into()).await.unwrap(), 1);
    }
    for i in 0..10_000u32 {
        assert_eq!(ready(&mut sub), Some(Some(i.to_string().into())));
    }
}

#[tokio::test]
async fn dropping_a_store_ends_its_subscriptions_and_watches() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let t = topic("dropped-store");
    let mut sub = a.subscribe(&t).await.unwrap();
    let mut watch = a.watch(&q("dropped")).await.unwrap();
    let _kept = b.subscribe(&t).await.unwrap();
    drop(a);
    assert_eq!(b.publish(&t, "x".into()).await.unwrap(), 1);
    assert_eq!(sub.next().await, None);
    assert_eq!(watch.next().await, None);
}

/// A close naming an older generation tombstones the incarnation it destroyed as well, so
/// that nobody holding either generation recreates a headless queue by pushing.
#[tokio::test(start_paused = true)]
async fn a_close_tombstones_the_generation_it_destroyed_too() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("tomb-both");
    let spec = spec_ttl(SEC);
    let old = a.attach(&queue, &spec).await.unwrap().generation;
    tokio::time::advance(SEC).await;
    let current = b.attach(&queue, &spec).await.unwrap().generation;
    assert!(a.close(&queue, Some(old)).await.unwrap());
    for generation in [old, current] {
        let err = push(&b, &queue, generation, &spec, &["x"]).await.unwrap_err();
        assert!(matches!(err, busmq_core::Error::Closed { .. }), "{err}");
    }
}
