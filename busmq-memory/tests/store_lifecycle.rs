//! Store tests for the lifecycle of queues: connection state, attach, renew, detach, expiry,
//! close and tombstones, ids and generations, stat, flush, metadata and consumer leases.

mod common;

use busmq_core::store::ClientId;
use busmq_core::store::{
    ConsumerId, ConsumerKind, ConsumerOp, Metadata, MetadataOp, Position, QueueSpec, Renewal,
    StoreEvent, StoreState, TakeMode,
};
use busmq_core::{Error, Store};
use busmq_memory::{Memory, MemoryStore};
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::advance;

#[tokio::test]
async fn connect_and_disconnect_report_each_transition_once() {
    let store = MemoryStore::new();
    assert_eq!(store.backend(), "memory");
    assert_eq!(store.state(), StoreState::Offline);
    let mut events = store.events();
    assert_eq!(store.connect().await.unwrap(), StoreState::Online);
    assert_eq!(store.connect().await.unwrap(), StoreState::Online, "connect again is a no-op");
    assert_eq!(store.state(), StoreState::Online);
    store.disconnect().await.unwrap();
    store.disconnect().await.unwrap();
    assert_eq!(store.state(), StoreState::Offline);
    store.connect().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(StoreEvent::State(state)) = events.try_recv() {
        seen.push(state);
    }
    assert_eq!(seen, [StoreState::Online, StoreState::Offline, StoreState::Online]);
}

#[tokio::test]
async fn data_calls_fail_with_not_connected_before_connect_and_after_disconnect() {
    let memory = Memory::new();
    let store = memory.store();
    let queue = q("nc");
    let not_connected =
        |r: Result<(), Error>| assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");
    not_connected(store.attach(&queue, &spec()).await.map(drop));
    store.connect().await.unwrap();
    let generation = store.attach(&queue, &spec()).await.unwrap().generation;
    store.disconnect().await.unwrap();
    not_connected(store.attach(&queue, &spec()).await.map(drop));
    not_connected(store.renew(&queue, generation, &spec()).await.map(drop));
    not_connected(store.detach(&queue, generation).await);
    not_connected(store.close(&queue, None).await.map(drop));
    not_connected(store.push(&queue, generation, &spec(), &entries(&["x"])).await.map(drop));
    not_connected(store.take(&queue, &consumer(), 1, TakeMode::AtMostOnce).await.map(drop));
    not_connected(store.restore(&queue, &spec(), &[]).await);
    not_connected(store.settle(&queue, &[]).await.map(drop));
    not_connected(store.read(&queue, Position::Start, 1).await.map(drop));
    let op = ConsumerOp::Unregister { id: consumer() };
    not_connected(store.consumers(&queue, op).await);
    not_connected(store.stat(&queue).await.map(drop));
    not_connected(store.flush(&queue).await);
    not_connected(store.metadata(&queue, MetadataOp::GetAll).await.map(drop));
    not_connected(store.watch(&queue).await.map(drop));
    not_connected(store.publish(&topic("t"), "x".into()).await.map(drop));
    not_connected(store.subscribe(&topic("t")).await.map(drop));
    // The data itself is still there for other clients.
    let other = connected(&memory).await;
    assert!(other.stat(&queue).await.unwrap().exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_first_attachers_exactly_one_creates_the_queue() {
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
        let mut created = 0;
        let mut generations = Vec::new();
        for task in tasks {
            let attachment = task.await.unwrap();
            created += usize::from(!attachment.existed);
            generations.push(attachment.generation);
        }
        assert_eq!(created, 1, "round {round}");
        generations.dedup();
        assert_eq!(generations.len(), 1, "everyone attached to one incarnation");
    }
}

#[tokio::test]
async fn later_attachers_adopt_the_creators_spec() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("spec");
    let first = QueueSpec { ttl: 7 * SEC, maxsize: Some(3), ..QueueSpec::default() };
    let created = a.attach(&queue, &first).await.unwrap();
    assert!(!created.existed);
    assert_eq!(created.spec, first);
    let adopted = b.attach(&queue, &spec_ttl(60 * SEC)).await.unwrap();
    assert!(adopted.existed);
    assert_eq!(adopted.spec, first);
    assert_eq!(adopted.generation, created.generation);
    let err = b.attach(&q("zero"), &spec_ttl(Duration::ZERO)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "ttl", .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_queue_expires_ttl_after_its_last_detach() {
    let store = store().await;
    let queue = q("expiring");
    let spec = spec_ttl(5 * SEC);
    let generation = filled(&store, &queue, &spec, &["a", "b"]).await;
    advance(4 * SEC).await;
    store.renew(&queue, generation, &spec).await.unwrap();
    advance(4 * SEC).await;
    store.detach(&queue, generation).await.unwrap();
    advance(5 * SEC - Duration::from_millis(1)).await;
    assert_eq!(store.stat(&queue).await.unwrap().count, 2);
    advance(Duration::from_millis(1)).await;
    let stat = store.stat(&queue).await.unwrap();
    assert!(!stat.exists);
    assert_eq!(stat, Default::default(), "an expired queue looks like one that never existed");
    let taken = store.take(&queue, &consumer(), 10, TakeMode::AtMostOnce).await.unwrap();
    assert!(taken.entries.is_empty());
    assert!(store.read(&queue, Position::Start, 10).await.unwrap().entries.is_empty());
    let all = store.metadata(&queue, MetadataOp::GetAll).await.unwrap();
    assert_eq!(all, Metadata::All(vec![]));
}

#[tokio::test(start_paused = true)]
async fn renewing_keeps_a_queue_alive_and_a_silent_client_counts_as_gone_after_ttl() {
    let store = store().await;
    let queue = q("leases");
    let spec = spec_ttl(3 * SEC);
    let generation = filled(&store, &queue, &spec, &["a"]).await;
    for _ in 0..10 {
        advance(SEC).await;
        assert_eq!(store.renew(&queue, generation, &spec).await.unwrap(), Renewal::Alive);
    }
    advance(3 * SEC).await;
    assert!(!store.stat(&queue).await.unwrap().exists);
}

#[tokio::test(start_paused = true)]
async fn renew_recreates_or_adopts_a_vanished_incarnation_and_reports_closed_ones() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("renew");
    let spec = spec_ttl(2 * SEC);
    let old = a.attach(&queue, &spec).await.unwrap().generation;
    advance(2 * SEC).await;
    let renewed = a.renew(&queue, old, &spec).await.unwrap();
    let Renewal::Recreated { generation: new, spec: got } = renewed else {
        panic!("expected Recreated, got {renewed:?}");
    };
    assert!(new > old);
    assert_eq!(got, spec);
    assert_eq!(a.stat(&queue).await.unwrap().generation, Some(new));

    // A client whose incarnation vanished adopts the one another client created meanwhile.
    advance(2 * SEC).await;
    let other = b.attach(&queue, &spec_ttl(9 * SEC)).await.unwrap();
    assert!(!other.existed);
    let adopted = a.renew(&queue, new, &spec).await.unwrap();
    assert_eq!(
        adopted,
        Renewal::Recreated { generation: other.generation, spec: spec_ttl(9 * SEC) }
    );

    assert!(b.close(&queue, Some(other.generation)).await.unwrap());
    assert_eq!(a.renew(&queue, other.generation, &spec).await.unwrap(), Renewal::Closed);
    assert!(!a.stat(&queue).await.unwrap().exists, "renew of a closed generation creates nothing");
}

#[tokio::test(start_paused = true)]
async fn detach_of_another_generation_changes_nothing() {
    let store = store().await;
    let queue = q("detach");
    let spec = spec_ttl(2 * SEC);
    let generation = store.attach(&queue, &spec).await.unwrap().generation;
    advance(SEC).await;
    store.renew(&queue, generation, &spec).await.unwrap();
    // Expiry is now t=3s; a detach from a stale generation must not touch it.
    store.detach(&queue, generation - 1).await.unwrap();
    store.detach(&q("missing"), 1).await.unwrap();
    advance(SEC + SEC / 2).await;
    assert!(store.stat(&queue).await.unwrap().exists);
    advance(SEC / 2).await;
    assert!(!store.stat(&queue).await.unwrap().exists);
}

#[tokio::test(start_paused = true)]
async fn ids_never_go_backwards_across_close_expiry_and_recreation() {
    let store = store().await;
    let queue = q("ids");
    let spec = spec_ttl(SEC);
    let mut last = 0;
    let mut last_generation = 0;
    for round in 0..6 {
        let attachment = store.attach(&queue, &spec).await.unwrap();
        assert!(!attachment.existed, "round {round}");
        assert!(attachment.generation > last_generation, "round {round}");
        last_generation = attachment.generation;
        let first = store
            .push(&queue, attachment.generation, &spec, &entries(&["a", "b", "c"]))
            .await
            .unwrap();
        assert!(first > last, "round {round}: {first} after {last}");
        let stat = store.stat(&queue).await.unwrap();
        assert_eq!(stat.last_id, Some(first + 2), "a batch gets consecutive ids");
        last = first + 2;
        if round % 2 == 0 {
            store.close(&queue, Some(attachment.generation)).await.unwrap();
        } else {
            store.detach(&queue, attachment.generation).await.unwrap();
            advance(SEC).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn close_leaves_a_tombstone_that_refuses_the_closed_generation() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("tomb");
    let spec = spec_ttl(SEC);
    let old = filled(&a, &queue, &spec, &["a"]).await;
    assert!(b.close(&queue, None).await.unwrap(), "it existed");
    assert!(!b.close(&queue, None).await.unwrap(), "it is gone now");

    let err = a.push(&queue, old, &spec, &entries(&["late"])).await.unwrap_err();
    assert!(matches!(&err, Error::Closed { queue } if queue == "tomb"), "{err}");
    assert!(!a.stat(&queue).await.unwrap().exists, "the refused push wrote nothing");
    assert_eq!(a.renew(&queue, old, &spec).await.unwrap(), Renewal::Closed);

    // The tombstone stays at least max(2 * ttl, 10 s), whatever the ttl.
    advance(10 * SEC - Duration::from_millis(1)).await;
    assert!(a.push(&queue, old, &spec, &entries(&["late"])).await.is_err());

    // A new attach makes a new generation, unaffected by the tombstone.
    let new = b.attach(&queue, &spec).await.unwrap();
    assert!(!new.existed);
    assert!(new.generation > old);
    b.push(&queue, new.generation, &spec, &entries(&["fresh"])).await.unwrap();
    assert_eq!(b.stat(&queue).await.unwrap().count, 1);
    assert!(a.push(&queue, old, &spec, &entries(&["late"])).await.is_err());

    // Once the tombstone lapsed, the old generation's push just finds the current queue.
    advance(SEC / 2).await;
    b.renew(&queue, new.generation, &spec).await.unwrap();
    a.push(&queue, old, &spec, &entries(&["later"])).await.unwrap();
    assert_eq!(b.stat(&queue).await.unwrap().count, 2);
}

#[tokio::test(start_paused = true)]
async fn a_long_ttl_keeps_the_tombstone_twice_as_long() {
    let store = store().await;
    let queue = q("tomb-long");
    let spec = spec_ttl(30 * SEC);
    let generation = store.attach(&queue, &spec).await.unwrap().generation;
    store.close(&queue, Some(generation)).await.unwrap();
    advance(60 * SEC - Duration::from_millis(1)).await;
    assert!(store.push(&queue, generation, &spec, &entries(&["x"])).await.is_err());
    advance(Duration::from_millis(1)).await;
    store.push(&queue, generation, &spec, &entries(&["x"])).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_with_a_stale_generation_closes_the_current_incarnation_too() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("tomb-stale");
    let spec = spec_ttl(SEC);
    let old = a.attach(&queue, &spec).await.unwrap().generation;
    advance(SEC).await;
    let current = b.attach(&queue, &spec).await.unwrap().generation;
    assert!(a.close(&queue, Some(old)).await.unwrap());
    for generation in [old, current] {
        let err = b.push(&queue, generation, &spec, &entries(&["x"])).await.unwrap_err();
        assert!(matches!(err, Error::Closed { .. }), "{err}");
    }
}

#[tokio::test]
async fn close_with_a_generation_of_a_gone_queue_still_refuses_its_pushes() {
    let store = store().await;
    let queue = q("tomb-gone");
    assert!(!store.close(&queue, Some(42)).await.unwrap());
    let err = store.push(&queue, 42, &spec(), &entries(&["x"])).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
}

#[tokio::test]
async fn stat_reports_counts_spec_and_generation_without_changing_anything() {
    let store = store().await;
    let queue = q("stat");
    assert_eq!(store.stat(&queue).await.unwrap(), Default::default());
    let spec = QueueSpec { maxsize: Some(100), ..spec() };
    let generation = filled(&store, &queue, &spec, &["a", "b", "c"]).await;
    store.take(&queue, &consumer(), 1, reliable(SEC, 5)).await.unwrap();
    let stat = store.stat(&queue).await.unwrap();
    assert!(stat.exists);
    assert_eq!((stat.count, stat.pending), (2, 1));
    assert_eq!(stat.spec, Some(spec));
    assert_eq!(stat.generation, Some(generation));
    assert!(stat.last_id.is_some());
    assert_eq!(store.stat(&queue).await.unwrap(), stat);
}

#[tokio::test]
async fn flush_removes_messages_but_keeps_spec_metadata_and_ids() {
    let store = store().await;
    let queue = q("flush");
    let spec = spec_ttl(9 * SEC);
    let generation = filled(&store, &queue, &spec, &["a", "b", "c"]).await;
    let set = MetadataOp::Set(vec![("k".into(), "v".into())]);
    store.metadata(&queue, set).await.unwrap();
    let taken = store.take(&queue, &consumer(), 1, reliable(SEC, 5)).await.unwrap();
    let before = store.stat(&queue).await.unwrap();
    store.flush(&queue).await.unwrap();
    let after = store.stat(&queue).await.unwrap();
    assert_eq!((after.count, after.pending), (0, 0));
    assert_eq!(
        (after.spec, after.generation, after.last_id),
        (before.spec, before.generation, before.last_id)
    );
    let value = store.metadata(&queue, MetadataOp::Get("k".into())).await.unwrap();
    assert_eq!(value, Metadata::Value(Some("v".into())));
    let ack = busmq_core::store::Settle::Ack { id: taken.entries[0].id, delivery: 1 };
    assert_eq!(store.settle(&queue, &[ack]).await.unwrap(), [busmq_core::store::Settled::Stale]);
    let next = store.push(&queue, generation, &spec, &entries(&["d"])).await.unwrap();
    assert!(next > before.last_id.unwrap());
    store.flush(&q("missing")).await.unwrap();
}

#[tokio::test]
async fn metadata_reads_and_writes_strings_and_refuses_writes_to_missing_queues() {
    let store = store().await;
    let queue = q("meta");
    assert_eq!(
        store.metadata(&queue, MetadataOp::Get("a".into())).await.unwrap(),
        Metadata::Value(None)
    );
    let set = MetadataOp::Set(vec![("x".into(), "1".into())]);
    let err = store.metadata(&queue, set.clone()).await.unwrap_err();
    assert!(matches!(&err, Error::NotAttached { queue } if queue == "meta"), "{err}");
    assert!(!store.stat(&queue).await.unwrap().exists, "the refused write created nothing");

    store.attach(&queue, &spec()).await.unwrap();
    let pairs =
        vec![("b".into(), "2".into()), ("a".into(), String::new()), ("c".into(), "3".into())];
    assert_eq!(store.metadata(&queue, MetadataOp::Set(pairs)).await.unwrap(), Metadata::Written);
    store.metadata(&queue, MetadataOp::Set(vec![("c".into(), "4".into())])).await.unwrap();
    assert_eq!(
        store.metadata(&queue, MetadataOp::GetAll).await.unwrap(),
        Metadata::All(vec![
            ("a".into(), String::new()),
            ("b".into(), "2".into()),
            ("c".into(), "4".into()),
        ])
    );
    assert_eq!(
        store.metadata(&queue, MetadataOp::Get("a".into())).await.unwrap(),
        Metadata::Value(Some(String::new())),
        "an empty value is a value"
    );
}

fn consumer_id(seq: u64) -> ConsumerId {
    ConsumerId::new(&ClientId::new("c"), seq)
}

#[tokio::test(start_paused = true)]
async fn consumers_of_the_other_kind_are_refused_until_their_lease_lapses() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("mixed");
    a.attach(&queue, &spec()).await.unwrap();
    let register = |seq, kind| ConsumerOp::Register { id: consumer_id(seq), kind, lease: 10 * SEC };
    a.consumers(&queue, register(1, ConsumerKind::Removing)).await.unwrap();
    a.consumers(&queue, register(2, ConsumerKind::Removing)).await.unwrap();
    a.consumers(&queue, register(1, ConsumerKind::Removing)).await.unwrap();
    let err = b.consumers(&queue, register(3, ConsumerKind::Replaying)).await.unwrap_err();
    let Error::MixedConsumers { queue: name, existing, requested } = &err else {
        panic!("expected MixedConsumers, got {err:?}");
    };
    assert_eq!((name.as_str(), *existing, *requested), ("mixed", "removing", "replaying"));

    // Unregistering one leaves the other; renewing keeps its lease going.
    a.consumers(&queue, ConsumerOp::Unregister { id: consumer_id(1) }).await.unwrap();
    advance(9 * SEC).await;
    let renew =
        ConsumerOp::Renew { id: consumer_id(2), kind: ConsumerKind::Removing, lease: 10 * SEC };
    a.consumers(&queue, renew).await.unwrap();
    advance(9 * SEC).await;
    assert!(b.consumers(&queue, register(3, ConsumerKind::Replaying)).await.is_err());

    // A consumer that stops renewing counts as gone after its lease.
    advance(SEC).await;
    b.consumers(&queue, register(3, ConsumerKind::Replaying)).await.unwrap();
    let err = a.consumers(&queue, register(4, ConsumerKind::Removing)).await.unwrap_err();
    assert!(matches!(
        err,
        Error::MixedConsumers { existing: "replaying", requested: "removing", .. }
    ));
    b.consumers(&queue, ConsumerOp::Unregister { id: consumer_id(3) }).await.unwrap();
    a.consumers(&queue, register(4, ConsumerKind::Removing)).await.unwrap();
    a.consumers(&q("unknown"), ConsumerOp::Unregister { id: consumer_id(9) }).await.unwrap();
}

#[tokio::test]
async fn closing_a_queue_forgets_its_consumers() {
    let store = store().await;
    let queue = q("mixed-close");
    store.attach(&queue, &spec()).await.unwrap();
    let register = |kind| ConsumerOp::Register { id: consumer_id(1), kind, lease: 60 * SEC };
    store.consumers(&queue, register(ConsumerKind::Removing)).await.unwrap();
    store.close(&queue, None).await.unwrap();
    store.attach(&queue, &spec()).await.unwrap();
    let other =
        ConsumerOp::Register { id: consumer_id(2), kind: ConsumerKind::Replaying, lease: 60 * SEC };
    store.consumers(&queue, other).await.unwrap();
}
