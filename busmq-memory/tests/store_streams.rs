//! Store tests for streams: watch notices (push, restore, release, close, coalescing), pub/sub
//! fan-out across stores of one `Memory`, and how disconnect ends both.

mod common;

use busmq_core::Store;
use busmq_core::store::{Notice, TakeMode};
use busmq_memory::Memory;
use common::*;
use futures::{FutureExt, StreamExt};

/// The next item if one is ready now. Notices are sent inside the store call, so after the
/// call returns they are ready without waiting: no test here depends on timing.
fn ready<T>(stream: &mut futures::stream::BoxStream<'static, T>) -> Option<Option<T>> {
    stream.next().now_or_never()
}

#[tokio::test]
async fn a_watcher_is_woken_by_a_push_from_another_store_and_notices_coalesce() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("watch-push");
    let generation = a.attach(&queue, &spec()).await.unwrap().generation;
    let mut watch = a.watch(&queue).await.unwrap();
    assert_eq!(ready(&mut watch), None, "nothing happened yet");
    b.push(&queue, generation, &spec(), &entries(&["1"])).await.unwrap();
    b.push(&queue, generation, &spec(), &entries(&["2"])).await.unwrap();
    assert_eq!(ready(&mut watch), Some(Some(Notice::Available)));
    assert_eq!(ready(&mut watch), None, "two pushes may give one notice");
    b.push(&queue, generation, &spec(), &entries(&["3"])).await.unwrap();
    assert_eq!(ready(&mut watch), Some(Some(Notice::Available)));
}

#[tokio::test]
async fn a_waiting_watcher_wakes_up() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("watch-wait");
    let generation = a.attach(&queue, &spec()).await.unwrap().generation;
    let mut watch = a.watch(&queue).await.unwrap();
    let waiter = tokio::spawn(async move { watch.next().await });
    tokio::task::yield_now().await;
    b.push(&queue, generation, &spec(), &entries(&["1"])).await.unwrap();
    assert_eq!(waiter.await.unwrap(), Some(Notice::Available));
}

#[tokio::test]
async fn a_watch_of_a_queue_that_does_not_exist_yet_sees_its_first_push() {
    let store = store().await;
    let queue = q("watch-early");
    let mut watch = store.watch(&queue).await.unwrap();
    store.push(&queue, 1, &spec(), &entries(&["1"])).await.unwrap();
    assert_eq!(ready(&mut watch), Some(Some(Notice::Available)));
}

#[tokio::test]
async fn restore_wakes_watchers_and_take_does_not() {
    let store = store().await;
    let queue = q("watch-restore");
    filled(&store, &queue, &spec(), &["1"]).await;
    let mut watch = store.watch(&queue).await.unwrap();
    let taken = store.take(&queue, &consumer(), 1, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(ready(&mut watch), None);
    store.restore(&queue, &spec(), &taken.entries).await.unwrap();
    assert_eq!(ready(&mut watch), Some(Some(Notice::Available)));
}

#[tokio::test]
async fn close_is_told_to_every_watcher_and_the_stream_goes_on() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("watch-close");
    a.attach(&queue, &spec()).await.unwrap();
    let mut watch_a = a.watch(&queue).await.unwrap();
    let mut watch_b = b.watch(&queue).await.unwrap();
    b.close(&queue, None).await.unwrap();
    assert_eq!(ready(&mut watch_a), Some(Some(Notice::Closed)));
    assert_eq!(ready(&mut watch_b), Some(Some(Notice::Closed)));
    // A new incarnation's push right after the close: both are reported, close first.
    b.close(&queue, None).await.unwrap();
    b.push(&queue, 1, &spec(), &entries(&["new"])).await.unwrap();
    assert_eq!(ready(&mut watch_a), Some(Some(Notice::Available)));
    let generation = b.stat(&queue).await.unwrap().generation.unwrap();
    b.close(&queue, Some(generation)).await.unwrap();
    b.push(&queue, 1, &spec(), &entries(&["newer"])).await.unwrap();
    assert_eq!(ready(&mut watch_b), Some(Some(Notice::Closed)));
    assert_eq!(ready(&mut watch_b), Some(Some(Notice::Available)));
    assert_eq!(ready(&mut watch_b), None);
}

#[tokio::test]
async fn publish_reaches_every_subscription_of_every_store_exactly_once() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let news = topic("news");
    assert_eq!(a.publish(&news, "before".into()).await.unwrap(), 0);
    let mut subs = vec![
        a.subscribe(&news).await.unwrap(),
        a.subscribe(&news).await.unwrap(),
        b.subscribe(&news).await.unwrap(),
    ];
    let mut other = b.subscribe(&topic("other")).await.unwrap();
    assert_eq!(b.publish(&news, "one".into()).await.unwrap(), 3);
    assert_eq!(a.publish(&news, "two".into()).await.unwrap(), 3);
    for sub in &mut subs {
        assert_eq!(ready(sub), Some(Some("one".into())));
        assert_eq!(ready(sub), Some(Some("two".into())));
        assert_eq!(ready(sub), None, "each message exactly once, nothing from before");
    }
    assert_eq!(ready(&mut other), None);
    drop(subs.pop());
    assert_eq!(a.publish(&news, "three".into()).await.unwrap(), 2, "dropped ones do not count");
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
async fn disconnect_ends_this_stores_streams_only_and_reconnect_works() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("disconnect");
    let t = topic("disconnect");
    let mut watch_a = a.watch(&queue).await.unwrap();
    let mut sub_a = a.subscribe(&t).await.unwrap();
    let mut watch_b = b.watch(&queue).await.unwrap();
    let mut sub_b = b.subscribe(&t).await.unwrap();
    let waiting = tokio::spawn(async move { (watch_a.next().await, sub_a.next().await) });
    tokio::task::yield_now().await;
    a.disconnect().await.unwrap();
    assert_eq!(waiting.await.unwrap(), (None, None));
    assert_eq!(b.publish(&t, "x".into()).await.unwrap(), 1);
    b.push(&queue, 1, &spec(), &entries(&["x"])).await.unwrap();
    assert_eq!(ready(&mut watch_b), Some(Some(Notice::Available)));
    assert_eq!(ready(&mut sub_b), Some(Some("x".into())));

    a.connect().await.unwrap();
    let mut watch_a = a.watch(&queue).await.unwrap();
    let mut sub_a = a.subscribe(&t).await.unwrap();
    assert_eq!(b.publish(&t, "y".into()).await.unwrap(), 2);
    b.push(&queue, 1, &spec(), &entries(&["y"])).await.unwrap();
    assert_eq!(ready(&mut watch_a), Some(Some(Notice::Available)));
    assert_eq!(ready(&mut sub_a), Some(Some("y".into())));
}

#[tokio::test]
async fn dropping_a_store_ends_its_subscriptions() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let t = topic("dropped-store");
    let mut sub = a.subscribe(&t).await.unwrap();
    let _kept = b.subscribe(&t).await.unwrap();
    drop(a);
    assert_eq!(b.publish(&t, "x".into()).await.unwrap(), 1);
    assert_eq!(sub.next().await, None);
}

#[tokio::test]
async fn dropping_the_store_ends_its_watch_streams() {
    let store = store().await;
    let mut watch = store.watch(&q("dropped")).await.unwrap();
    drop(store);
    assert_eq!(watch.next().await, None);
}
