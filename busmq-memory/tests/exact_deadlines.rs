//! The memory store follows tokio's clock to the millisecond, so on a paused clock its
//! deadlines can be checked at their exact edge, which the shared Store contract (run in real
//! time on Redis too) checks only with margins: expiry, tombstones, visibility and extensions,
//! retention by age, consumer leases and the blocking take's wait.

mod common;

use busmq_core::Store;
use busmq_core::store::{
    ClientId, ConsumerId, ConsumerKind, ConsumerOp, Position, QueueSpec, Receipt, Retention,
    Settle, Settled, Settlement,
};
use busmq_memory::Memory;
use common::*;
use tokio::sync::Notify;
use tokio::time::{Instant, advance};

#[tokio::test(start_paused = true)]
async fn a_queue_expires_exactly_ttl_after_its_last_detach() {
    let store = store().await;
    let queue = q("expiring");
    let spec = spec_ttl(5 * SEC);
    let generation = filled(&store, &queue, &spec, &["a", "b"]).await;
    advance(4 * SEC).await;
    store.renew(&queue, generation, &spec).await.unwrap();
    advance(4 * SEC).await;
    store.detach(&queue, generation).await.unwrap();
    advance(5 * SEC - MS).await;
    assert_eq!(store.stat(&queue).await.unwrap().count, 2);
    advance(MS).await;
    assert!(!store.stat(&queue).await.unwrap().exists);
}

#[tokio::test(start_paused = true)]
async fn a_tombstone_lasts_ten_seconds_or_twice_the_ttl_and_then_lapses() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("tomb");
    let spec = spec_ttl(SEC);
    let old = filled(&a, &queue, &spec, &["a"]).await;
    b.close(&queue, None).await.unwrap();
    advance(10 * SEC - MS).await;
    assert!(push(&a, &queue, old, &spec, &["late"]).await.is_err());
    let new = b.attach(&queue, &spec).await.unwrap().generation;
    push(&b, &queue, new, &spec, &["fresh"]).await.unwrap();
    // Once the tombstone lapsed, the old generation's push just finds the current queue.
    advance(SEC / 2).await;
    b.renew(&queue, new, &spec).await.unwrap();
    push(&a, &queue, old, &spec, &["later"]).await.unwrap();
    assert_eq!(b.stat(&queue).await.unwrap().count, 2);

    let long = q("tomb-long");
    let spec = spec_ttl(30 * SEC);
    let generation = a.attach(&long, &spec).await.unwrap().generation;
    a.close(&long, Some(generation)).await.unwrap();
    advance(60 * SEC - MS).await;
    assert!(push(&a, &long, generation, &spec, &["x"]).await.is_err());
    advance(MS).await;
    push(&a, &long, generation, &spec, &["x"]).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn visibility_and_extensions_end_exactly_at_their_deadline() {
    let store = store().await;
    let queue = q("visibility");
    filled(&store, &queue, &spec(), &["a", "b"]).await;
    let mode = reliable(10 * SEC, 5);
    let taken = store.take(&queue, 2, mode).await.unwrap().entries;
    advance(5 * SEC).await;
    let extend = Settle::of(&taken[1], Settlement::Extend(10 * SEC));
    assert_eq!(store.settle(&queue, &[extend]).await.unwrap(), [Settled::Done]);
    advance(5 * SEC - MS).await;
    assert!(store.take(&queue, 10, mode).await.unwrap().entries.is_empty());
    advance(MS).await;
    assert_eq!(payloads(&store.take(&queue, 10, mode).await.unwrap().entries), ["a"]);
    advance(5 * SEC - MS).await;
    assert!(store.take(&queue, 10, mode).await.unwrap().entries.is_empty());
    advance(MS).await;
    let again = store.take(&queue, 10, mode).await.unwrap().entries;
    assert_eq!((payloads(&again), again[0].deliveries), (vec!["b".to_string()], 2));
}

#[tokio::test(start_paused = true)]
async fn retention_keeps_a_message_exactly_max_age_old_and_not_a_millisecond_more() {
    let store = store().await;
    let queue = q("max-age");
    let spec = QueueSpec {
        ttl: 3600 * SEC,
        retention: Retention { max_len: None, max_age: Some(10 * SEC) },
        ..QueueSpec::default()
    };
    let generation = filled(&store, &queue, &spec, &["old1", "old2"]).await;
    advance(6 * SEC).await;
    push(&store, &queue, generation, &spec, &["young"]).await.unwrap();
    advance(4 * SEC).await;
    assert_eq!(store.stat(&queue).await.unwrap().count, 3, "exactly max_age old is kept");
    advance(MS).await;
    let read = store.read(&queue, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["young"]);
    advance(6 * SEC).await;
    let read = store.read(&queue, Position::Index(0), 10).await.unwrap();
    assert!(read.entries.is_empty());
    assert_eq!(read.last_id, None);
}

#[tokio::test(start_paused = true)]
async fn a_consumer_lease_ends_exactly_after_its_lease() {
    let store = store().await;
    let queue = q("lease");
    store.attach(&queue, &spec()).await.unwrap();
    let id = |seq| ConsumerId::new(&ClientId::new("c"), seq);
    let register = |seq, kind| ConsumerOp::Register { id: id(seq), kind, lease: 10 * SEC };
    store.consumers(&queue, register(1, ConsumerKind::Removing)).await.unwrap();
    advance(10 * SEC - MS).await;
    assert!(store.consumers(&queue, register(2, ConsumerKind::Replaying)).await.is_err());
    advance(MS).await;
    store.consumers(&queue, register(2, ConsumerKind::Replaying)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_blocking_take_of_an_empty_queue_waits_its_whole_wait() {
    let store = store().await;
    let queue = q("wait");
    store.attach(&queue, &spec()).await.unwrap();
    let blocking = store.blocking().expect("the memory store blocks");
    let started = Instant::now();
    let (cancel, resume) = (Notify::new(), Receipt::none());
    let taken = blocking.take_wait(&queue, 10, 2 * SEC, &cancel, &resume).await.unwrap();
    assert!(taken.entries.is_empty());
    let waited = started.elapsed();
    assert!(waited >= 2 * SEC && waited < 3 * SEC, "{waited:?}");
}
