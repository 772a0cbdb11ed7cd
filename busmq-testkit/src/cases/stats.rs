//! Cases for what a queue reports without consuming: flush, exists, count, ttl, metadata and
//! the per-client counters (SPEC Q5).

use crate::backend::Backend;
use crate::support::{bus, take, unique};
use busmq_core::AttachOptions;
use std::time::Duration;

/// Q5, Q6 (seed "flush", study 7.2 #18): ids 1, 2, 3 increase; count is 3; after a flush a new
/// attacher finds the queue (it still exists) and count is 0.
pub async fn flush_removes_messages_but_keeps_queue(backend: &dyn Backend) {
    let name = unique("flush");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let ids = [q.push(&1).await.unwrap(), q.push(&2).await.unwrap(), q.push(&3).await.unwrap()];
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    assert_eq!(q.count().await.unwrap(), 3);
    q.set_metadata("kept", "yes").await.unwrap();
    q.flush().await.unwrap();
    let later = bus(backend).await.queue(&name).unwrap();
    assert!(later.attach().await.unwrap(), "the queue still exists");
    assert_eq!(later.count().await.unwrap(), 0);
    assert_eq!(later.metadata("kept").await.unwrap().as_deref(), Some("yes"));
    let after = q.push(&4).await.unwrap();
    assert!(after > ids[2], "ids keep increasing after a flush");
}

/// Q5: `count` counts the messages not yet consumed.
pub async fn count_counts_unconsumed_messages(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("count")).unwrap();
    assert_eq!(q.count().await.unwrap(), 0, "a missing queue counts 0");
    q.attach().await.unwrap();
    q.push_all(0..5).await.unwrap();
    assert_eq!(q.count().await.unwrap(), 5);
    let mut consumer =
        q.consume_with::<i32>(busmq_core::ConsumeOptions::new().max(2)).await.unwrap();
    take(&mut consumer, 2, "two messages").await;
    crate::support::ends(&mut consumer, "max reached").await;
    assert_eq!(q.count().await.unwrap(), 3);
}

/// Q5: `ttl` reports the stored ttl, and nothing for a missing queue.
pub async fn ttl_reports_the_stored_ttl(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("ttl")).unwrap();
    assert_eq!(q.ttl().await.unwrap(), None);
    q.attach().await.unwrap();
    assert_eq!(q.ttl().await.unwrap(), Some(Duration::from_secs(30)), "the default is 30 s");
    let other = b.queue(unique("ttl")).unwrap();
    other.attach_with(AttachOptions::new().ttl(Duration::from_millis(2500))).await.unwrap();
    assert_eq!(other.ttl().await.unwrap(), Some(Duration::from_millis(2500)));
}

/// Q5 (seed "metadata", study 7.2 #21): set and get single keys, set many at once, get all.
pub async fn metadata_get_set_get_all_set_many(backend: &dyn Backend) {
    let name = unique("meta");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    assert_eq!(q.metadata("key1").await.unwrap(), None);
    q.set_metadata("key1", "value1").await.unwrap();
    q.set_metadata("key2", "value2").await.unwrap();
    assert_eq!(q.metadata("key1").await.unwrap().as_deref(), Some("value1"));
    assert_eq!(q.metadata("key2").await.unwrap().as_deref(), Some("value2"));
    q.set_metadata_many([("key3", "value3"), ("key4", "ünïcode ✓")]).await.unwrap();
    q.set_metadata("key1", "changed").await.unwrap();
    let other = bus(backend).await.queue(&name).unwrap();
    let all = other.metadata_all().await.unwrap();
    let expected: Vec<(String, String)> =
        [("key1", "changed"), ("key2", "value2"), ("key3", "value3"), ("key4", "ünïcode ✓")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(all, expected, "every client sees the same metadata, sorted by key");
}

/// Q5 (fix of node busmq's `metadata(k, '')` being a read): an empty value is stored.
pub async fn metadata_empty_value_is_a_value(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("meta-empty")).unwrap();
    q.attach().await.unwrap();
    q.set_metadata("blank", "").await.unwrap();
    assert_eq!(q.metadata("blank").await.unwrap().as_deref(), Some(""));
    q.set_metadata("zero", "0").await.unwrap();
    assert_eq!(q.metadata("zero").await.unwrap().as_deref(), Some("0"));
}

/// Q5: `pushed` and `consumed` count this client's own pushes and deliveries.
pub async fn pushed_and_consumed_count_this_clients_messages(backend: &dyn Backend) {
    let name = unique("counters");
    let (a, b) = (bus(backend).await, bus(backend).await);
    let producer = a.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let other = b.queue(&name).unwrap();
    other.attach().await.unwrap();
    producer.push_all(0..4).await.unwrap();
    other.push(&99).await.unwrap();
    assert_eq!(producer.pushed(), 4);
    assert_eq!(other.pushed(), 1);
    let mut consumer = other.consume::<i32>().await.unwrap();
    take(&mut consumer, 5, "all five").await;
    assert_eq!(other.consumed(), 5);
    assert_eq!(producer.consumed(), 0);
}

/// Q5: `exists` works without attaching.
pub async fn exists_works_without_attaching(backend: &dyn Backend) {
    let name = unique("exists");
    let b = bus(backend).await;
    let observer = b.queue(&name).unwrap();
    assert!(!observer.exists().await.unwrap());
    let owner = bus(backend).await.queue(&name).unwrap();
    owner.attach().await.unwrap();
    assert!(observer.exists().await.unwrap());
    assert!(!observer.is_attached());
}

/// Q5: `pushed()` counts a push as soon as the push returned its id (read-your-writes), for
/// single pushes, concurrent pushes and batches.
pub async fn pushed_counts_a_push_as_soon_as_it_returns(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("pushed-now")).unwrap();
    q.attach().await.unwrap();
    let mut expected = 0;
    for i in 0..50u32 {
        q.push(&i).await.unwrap();
        expected += 1;
        assert_eq!(q.pushed(), expected, "after push {i}");
        let ids = q.push_all([i, i]).await.unwrap();
        expected += ids.len() as u64;
        assert_eq!(q.pushed(), expected, "after push_all {i}");
        let (x, y) = futures::join!(q.push(&i), q.push(&i));
        x.unwrap();
        y.unwrap();
        expected += 2;
        assert_eq!(q.pushed(), expected, "after two concurrent pushes {i}");
    }
    // A caller on another thread (as on a multi-thread runtime) is woken by the push's reply
    // while the worker that wrote it goes on running: the count must already include it.
    for i in 0..500u32 {
        let push = q.push(&i);
        let handle = q.clone();
        let seen = tokio::task::spawn_blocking(move || {
            futures::executor::block_on(push).unwrap();
            handle.pushed()
        });
        expected += 1;
        assert_eq!(seen.await.unwrap(), expected, "seen from another thread after push {i}");
    }
}
