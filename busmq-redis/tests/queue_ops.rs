//! Every queue operation of the Store against one real redis-server: attach, renew, detach,
//! close, push, take, restore, settle, read, consumers, stat, flush, metadata, watch.

mod common;

use busmq_core::store::{
    ClientId, ConsumerId, ConsumerKind, ConsumerOp, DeadLetter, Entry, Metadata, MetadataOp,
    NewEntry, Notice, Position, QueueSpec, Renewal, Retention, Settle, Settled, TakeMode,
};
use busmq_core::{Error, Store};
use bytes::Bytes;
use common::{queue, spec};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

fn msgs(range: std::ops::Range<u32>) -> Vec<NewEntry> {
    range.map(|i| NewEntry::new(format!("m{i}"))).collect()
}

fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect()
}

fn consumer() -> ConsumerId {
    ConsumerId::new(&ClientId::random(), 1)
}

const AMO: TakeMode = TakeMode::AtMostOnce;

fn reliable(visibility: Duration, max_deliveries: u32) -> TakeMode {
    TakeMode::Reliable { visibility, max_deliveries }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_creates_once_and_adopts_the_stored_spec() {
    let Some(srv) = common::server("attach_creates_once_and_adopts_the_stored_spec").await else {
        return;
    };
    let a = common::store(&[&srv]).await;
    let b = common::store(&[&srv]).await;
    let q = queue("attach");
    let first = QueueSpec {
        ttl: Duration::from_secs(7),
        maxsize: Some(3),
        retention: Retention { max_len: Some(100), max_age: Some(Duration::from_secs(60)) },
    };
    let default = spec();
    let (x, y) = tokio::join!(a.attach(&q, &first), b.attach(&q, &default));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!([x.existed, y.existed].iter().filter(|e| !**e).count(), 1, "exactly one creator");
    assert_eq!(x.generation, y.generation);
    assert_eq!(x.spec, y.spec, "the later attacher adopts the creator's spec");
    let again = b.attach(&q, &spec()).await.unwrap();
    assert!(again.existed);
    let stat = a.stat(&q).await.unwrap();
    assert!(stat.exists);
    assert_eq!(stat.generation, Some(x.generation));
    assert_eq!(stat.spec, Some(x.spec));
    assert_eq!((stat.count, stat.pending, stat.last_id), (0, 0, None));
    assert!(!a.stat(&queue("never")).await.unwrap().exists);
    common::stop(&a).await;
    common::stop(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_take_keep_order_and_ids_increase_across_batches() {
    let Some(srv) = common::server("push_and_take_keep_order").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("order");
    let att = s.attach(&q, &spec()).await.unwrap();
    let first = s.push(&q, att.generation, &spec(), &msgs(0..20)).await.unwrap();
    let second = s.push(&q, att.generation, &spec(), &msgs(20..45)).await.unwrap();
    assert!(second >= first + 20, "batches get consecutive ids: {first} {second}");
    assert_eq!(s.stat(&q).await.unwrap().count, 45);
    assert_eq!(s.stat(&q).await.unwrap().last_id, Some(second + 24));
    let c = consumer();
    let mut all = Vec::new();
    loop {
        let t = s.take(&q, &c, 7, AMO).await.unwrap();
        assert!(t.dead.is_empty());
        if t.entries.is_empty() {
            break;
        }
        all.extend(t.entries);
    }
    assert_eq!(payloads(&all), (0..45).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids[0], first);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1 || (w[0] == first + 19 && w[1] == second)));
    assert!(all.iter().all(|e| e.deliveries == 0 && e.dead.is_none()));
    assert_eq!(s.stat(&q).await.unwrap().count, 0);
    // Taking from an empty or missing queue gives nothing, without waiting.
    assert!(s.take(&q, &c, 10, AMO).await.unwrap().entries.is_empty());
    assert!(s.take(&queue("missing"), &c, 10, AMO).await.unwrap().entries.is_empty());
    let rel = reliable(Duration::from_secs(5), 3);
    assert_eq!(s.take(&q, &c, 10, rel).await.unwrap(), Default::default());
    let missing = s.take(&queue("missing"), &c, 10, rel).await.unwrap();
    assert_eq!(missing, Default::default());
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_spans_many_pages_and_chunks() {
    let Some(srv) = common::server("a_large_batch_spans_many_pages").await else {
        return;
    };
    let s = common::store_with(common::builder([srv.url()]).page_size(1000)).await;
    let q = queue("large");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..15_000)).await.unwrap();
    let c = consumer();
    let t = s.take(&q, &c, 12_000, AMO).await.unwrap();
    assert_eq!(t.entries.len(), 12_000);
    assert_eq!(payloads(&t.entries[11_999..]), vec!["m11999"]);
    s.restore(&q, &spec(), &t.entries[10_000..]).await.unwrap();
    let rest = s.take(&q, &c, 10_000, AMO).await.unwrap();
    let expected: Vec<String> = (10_000..15_000).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads(&rest.entries), expected);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxsize_rejects_a_batch_that_does_not_fit() {
    let Some(srv) = common::server("maxsize_rejects").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("full");
    let sp = QueueSpec { maxsize: Some(5), ..spec() };
    let att = s.attach(&q, &sp).await.unwrap();
    s.push(&q, att.generation, &sp, &msgs(0..4)).await.unwrap();
    match s.push(&q, att.generation, &sp, &msgs(4..6)).await {
        Err(Error::QueueFull { queue: name, maxsize: 5 }) => assert_eq!(name, q.as_str()),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(s.stat(&q).await.unwrap().count, 4, "nothing of the batch was written");
    s.push(&q, att.generation, &sp, &msgs(4..5)).await.unwrap();
    // Restore ignores maxsize: those messages were counted already.
    let t = s.take(&q, &consumer(), 2, AMO).await.unwrap();
    s.push(&q, att.generation, &sp, &msgs(5..7)).await.unwrap();
    s.restore(&q, &sp, &t.entries).await.unwrap();
    assert_eq!(s.stat(&q).await.unwrap().count, 7, "restored beyond maxsize");
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_puts_entries_back_at_the_head_in_order() {
    let Some(srv) = common::server("restore_puts_entries_back").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("restore");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..10)).await.unwrap();
    let c = consumer();
    let taken = s.take(&q, &c, 4, AMO).await.unwrap().entries;
    s.restore(&q, &spec(), &taken[1..]).await.unwrap();
    let again = s.take(&q, &c, 100, AMO).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
    assert_eq!(again[0].id, taken[1].id, "ids survive the round trip");
    // Restoring into a queue that vanished creates it again.
    s.close(&q, None).await.unwrap();
    s.restore(&q, &spec(), &taken[..1]).await.unwrap();
    let stat = s.stat(&q).await.unwrap();
    assert!(stat.exists);
    assert_eq!(stat.count, 1);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_take_ack_release_return_and_extend() {
    let Some(srv) = common::server("reliable_take_ack_release").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("reliable");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..6)).await.unwrap();
    let c = consumer();
    let mode = reliable(Duration::from_secs(60), 10);
    let t = s.take(&q, &c, 4, mode).await.unwrap();
    assert_eq!(payloads(&t.entries), ["m0", "m1", "m2", "m3"]);
    assert!(t.entries.iter().all(|e| e.deliveries == 1));
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (2, 4));
    let [e0, e1, e2, e3] = [0, 1, 2, 3].map(|i| t.entries[i].clone());
    let out = s
        .settle(
            &q,
            &[
                Settle::Ack { id: e0.id, delivery: 1 },
                Settle::Ack { id: e0.id, delivery: 1 },
                Settle::Release { id: e2.id, delivery: 1 },
                Settle::Return { id: e1.id, delivery: 1 },
                Settle::Extend { id: e3.id, delivery: 1, by: Duration::from_secs(120) },
                Settle::Ack { id: e3.id, delivery: 2 },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        [
            Settled::Done,
            Settled::Stale,
            Settled::Done,
            Settled::Done,
            Settled::Done,
            Settled::Stale
        ]
    );
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (4, 1));
    // Returned entries come first, in id order, then the rest; Return took one delivery back.
    let t2 = s.take(&q, &c, 10, mode).await.unwrap();
    assert_eq!(payloads(&t2.entries), ["m1", "m2", "m4", "m5"]);
    assert_eq!(t2.entries.iter().map(|e| e.deliveries).collect::<Vec<_>>(), [1, 2, 1, 1]);
    let acks: Vec<Settle> =
        t2.entries.iter().map(|e| Settle::Ack { id: e.id, delivery: e.deliveries }).collect();
    assert!(s.settle(&q, &acks).await.unwrap().iter().all(|r| *r == Settled::Done));
    assert_eq!(s.settle(&q, &[]).await.unwrap(), []);
    let missing = s.settle(&queue("nope"), &acks[..1]).await.unwrap();
    assert_eq!(missing, [Settled::Stale]);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_visibility_returns_entries_first_in_id_order_and_old_settles_go_stale() {
    let Some(srv) = common::server("expired_visibility_returns").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("visibility");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..5)).await.unwrap();
    let (c1, c2) = (consumer(), consumer());
    let short = reliable(Duration::from_millis(300), 10);
    let first = s.take(&q, &c1, 2, short).await.unwrap().entries; // m0, m1
    let long = reliable(Duration::from_secs(60), 10);
    let second = s.take(&q, &c2, 1, long).await.unwrap().entries; // m2
    assert_eq!(payloads(&second), ["m2"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = s.take(&q, &c2, 10, long).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m0", "m1", "m3", "m4"], "expired entries come back first");
    assert_eq!(again[0].deliveries, 2);
    let late = s.settle(&q, &[Settle::Ack { id: first[0].id, delivery: 1 }]).await.unwrap();
    assert_eq!(late, [Settled::Stale], "the first delivery was redelivered meanwhile");
    let now = s.settle(&q, &[Settle::Ack { id: again[0].id, delivery: 2 }]).await.unwrap();
    assert_eq!(now, [Settled::Done]);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_beyond_the_maximum_are_claimed_as_dead() {
    let Some(srv) = common::server("deliveries_beyond_the_maximum").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("dead");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..2)).await.unwrap();
    let c = consumer();
    let mode = reliable(Duration::from_secs(60), 2);
    for round in 1..=2 {
        let t = s.take(&q, &c, 10, mode).await.unwrap();
        assert_eq!(payloads(&t.entries), ["m0", "m1"], "round {round}");
        assert!(t.dead.is_empty());
        let rel: Vec<Settle> = t
            .entries
            .iter()
            .map(|e| Settle::Release { id: e.id, delivery: e.deliveries })
            .collect();
        s.settle(&q, &rel).await.unwrap();
    }
    let t = s.take(&q, &c, 10, mode).await.unwrap();
    assert!(t.entries.is_empty());
    assert_eq!(payloads(&t.dead), ["m0", "m1"]);
    assert!(t.dead.iter().all(|e| e.deliveries == 3));
    assert_eq!(s.stat(&q).await.unwrap().pending, 2, "dead claims are pending until acked");
    let acks: Vec<Settle> =
        t.dead.iter().map(|e| Settle::Ack { id: e.id, delivery: e.deliveries }).collect();
    assert_eq!(s.settle(&q, &acks).await.unwrap(), [Settled::Done, Settled::Done]);
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_information_survives_storage() {
    let Some(srv) = common::server("dead_letter_information_survives").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("dlq");
    let att = s.attach(&q, &spec()).await.unwrap();
    let info = Arc::new(DeadLetter {
        queue: "jobs".into(),
        id: 42,
        deliveries: 5,
        reason: "rejected: bad:input".into(),
    });
    let entry = NewEntry { payload: Bytes::from_static(b"\x00\xffbinary:"), dead: Some(info) };
    s.push(&q, att.generation, &spec(), std::slice::from_ref(&entry)).await.unwrap();
    let t = s.take(&q, &consumer(), 1, AMO).await.unwrap().entries;
    assert_eq!(t[0].payload, entry.payload);
    assert_eq!(t[0].dead, entry.dead);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_by_index_and_id_without_removing() {
    let Some(srv) = common::server("replay_reads_by_index_and_id").await else {
        return;
    };
    let s = common::store(&[&srv]).await; // page size 8
    let q = queue("replay");
    let att = s.attach(&q, &spec()).await.unwrap();
    let first = s.push(&q, att.generation, &spec(), &msgs(0..30)).await.unwrap();
    let ids: Vec<u64> = (0..30).map(|i| first + i).collect();
    let b = s.read(&q, Position::Start, 5).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(b.last_id, Some(ids[29]));
    let b = s.read(&q, Position::Index(13), 4).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m13", "m14", "m15", "m16"]);
    let b = s.read(&q, Position::FromId(ids[20]), 3).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m20", "m21", "m22"]);
    let b = s.read(&q, Position::AfterId(ids[20]), 3).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m21", "m22", "m23"]);
    let b = s.read(&q, Position::AfterId(ids[29]), 3).await.unwrap();
    assert!(b.entries.is_empty());
    let b = s.read(&q, Position::FromId(0), 2).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m0", "m1"]);
    let b = s.read(&q, Position::Index(28), 10).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m28", "m29"]);
    assert!(s.read(&q, Position::Index(30), 10).await.unwrap().entries.is_empty());
    assert!(s.read(&q, Position::End, 10).await.unwrap().entries.is_empty());
    assert_eq!(s.stat(&q).await.unwrap().count, 30, "reads remove nothing");
    // After the head moved, positions count from the new head.
    s.take(&q, &consumer(), 11, AMO).await.unwrap();
    let b = s.read(&q, Position::Index(0), 2).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m11", "m12"]);
    let b = s.read(&q, Position::Index(10), 2).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m21", "m22"]);
    let b = s.read(&q, Position::FromId(ids[3]), 1).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m11"], "messages before the position are skipped");
    let empty = s.read(&queue("none"), Position::Start, 5).await.unwrap();
    assert!(empty.entries.is_empty() && empty.last_id.is_none());
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_at_a_large_position_finds_the_right_entries() {
    let Some(srv) = common::server("replay_at_a_large_position").await else {
        return;
    };
    let s = common::store_with(common::builder([srv.url()]).page_size(16)).await;
    let q = queue("deep");
    let att = s.attach(&q, &spec()).await.unwrap();
    let mut first = 0;
    for batch in 0..25u32 {
        let id = s.push(&q, att.generation, &spec(), &msgs(batch * 1000..(batch + 1) * 1000)).await;
        if batch == 0 {
            first = id.unwrap();
        }
    }
    // A few put-backs make the head page irregular; positions must still be exact.
    let c = consumer();
    let t = s.take(&q, &c, 5, AMO).await.unwrap();
    s.restore(&q, &spec(), &t.entries[2..]).await.unwrap();
    for pos in [0u64, 1, 2, 3, 17, 4_999, 20_000, 24_990] {
        let b = s.read(&q, Position::Index(pos), 3).await.unwrap();
        let want: Vec<String> = (pos + 2..(pos + 5).min(25_000)).map(|i| format!("m{i}")).collect();
        assert_eq!(payloads(&b.entries), want, "index {pos}");
    }
    let all = s.read(&q, Position::Start, 1).await.unwrap();
    let last = all.last_id.unwrap();
    assert!(last >= first + 24_999);
    let b = s.read(&q, Position::Index(20_000), 1).await.unwrap();
    let id = b.entries[0].id;
    let by_id = s.read(&q, Position::FromId(id), 2).await.unwrap();
    assert_eq!(payloads(&by_id.entries), ["m20002", "m20003"]);
    let after = s.read(&q, Position::AfterId(id), 1).await.unwrap();
    assert_eq!(payloads(&after.entries), ["m20003"]);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_count_and_by_age() {
    let Some(srv) = common::server("retention_by_count_and_by_age").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("keep-10");
    let sp = QueueSpec { retention: Retention { max_len: Some(10), max_age: None }, ..spec() };
    let att = s.attach(&q, &sp).await.unwrap();
    for i in 0..5 {
        s.push(&q, att.generation, &sp, &msgs(i * 7..(i + 1) * 7)).await.unwrap();
    }
    let b = s.read(&q, Position::Start, 100).await.unwrap();
    assert_eq!(payloads(&b.entries), (25..35).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(s.stat(&q).await.unwrap().count, 10);

    let q = queue("keep-young");
    let sp = QueueSpec {
        retention: Retention { max_len: None, max_age: Some(Duration::from_millis(400)) },
        ..spec()
    };
    let att = s.attach(&q, &sp).await.unwrap();
    s.push(&q, att.generation, &sp, &msgs(0..20)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.stat(&q).await.unwrap().count, 0, "old messages are not counted");
    s.push(&q, att.generation, &sp, &msgs(20..23)).await.unwrap();
    let b = s.read(&q, Position::Start, 100).await.unwrap();
    assert_eq!(payloads(&b.entries), ["m20", "m21", "m22"]);
    let t = s.take(&q, &consumer(), 100, AMO).await.unwrap();
    assert_eq!(payloads(&t.entries), ["m20", "m21", "m22"]);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_of_different_kinds_do_not_mix() {
    let Some(srv) = common::server("consumers_of_different_kinds").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("mixing");
    s.attach(&q, &spec()).await.unwrap();
    let (a, b) = (consumer(), consumer());
    let lease = Duration::from_secs(30);
    let removing = ConsumerKind::Removing;
    let replaying = ConsumerKind::Replaying;
    s.consumers(&q, ConsumerOp::Register { id: a.clone(), kind: removing, lease }).await.unwrap();
    s.consumers(&q, ConsumerOp::Register { id: a.clone(), kind: removing, lease }).await.unwrap();
    match s.consumers(&q, ConsumerOp::Register { id: b.clone(), kind: replaying, lease }).await {
        Err(Error::MixedConsumers { queue: name, existing, requested }) => {
            assert_eq!((name.as_str(), existing, requested), (q.as_str(), "removing", "replaying"));
        }
        other => panic!("expected MixedConsumers, got {other:?}"),
    }
    s.consumers(&q, ConsumerOp::Renew { id: a.clone(), kind: removing, lease }).await.unwrap();
    s.consumers(&q, ConsumerOp::Unregister { id: a.clone() }).await.unwrap();
    s.consumers(&q, ConsumerOp::Unregister { id: a.clone() }).await.unwrap();
    s.consumers(&q, ConsumerOp::Register { id: b.clone(), kind: replaying, lease }).await.unwrap();
    // A lapsed lease no longer counts.
    let short = Duration::from_millis(200);
    let q2 = queue("lapse");
    s.attach(&q2, &spec()).await.unwrap();
    s.consumers(&q2, ConsumerOp::Register { id: a.clone(), kind: removing, lease: short })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.consumers(&q2, ConsumerOp::Register { id: b, kind: replaying, lease }).await.unwrap();
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_metadata() {
    let Some(srv) = common::server("flush_and_metadata").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("meta");
    assert_eq!(s.metadata(&q, MetadataOp::Get("k".into())).await.unwrap(), Metadata::Value(None));
    assert_eq!(s.metadata(&q, MetadataOp::GetAll).await.unwrap(), Metadata::All(vec![]));
    match s.metadata(&q, MetadataOp::Set(vec![("k".into(), "v".into())])).await {
        Err(Error::NotAttached { queue: name }) => assert_eq!(name, q.as_str()),
        other => panic!("expected NotAttached, got {other:?}"),
    }
    let att = s.attach(&q, &spec()).await.unwrap();
    let set = vec![("b".into(), "".into()), ("a".into(), "1".into()), ("gen".into(), "x".into())];
    assert_eq!(s.metadata(&q, MetadataOp::Set(set)).await.unwrap(), Metadata::Written);
    assert_eq!(
        s.metadata(&q, MetadataOp::Get("b".into())).await.unwrap(),
        Metadata::Value(Some(String::new()))
    );
    assert_eq!(
        s.metadata(&q, MetadataOp::GetAll).await.unwrap(),
        Metadata::All(vec![
            ("a".into(), "1".into()),
            ("b".into(), "".into()),
            ("gen".into(), "x".into())
        ])
    );
    assert_eq!(s.stat(&q).await.unwrap().generation, Some(att.generation), "no clash with 'gen'");
    let first = s.push(&q, att.generation, &spec(), &msgs(0..5)).await.unwrap();
    s.take(&q, &consumer(), 2, reliable(Duration::from_secs(60), 5)).await.unwrap();
    s.flush(&q).await.unwrap();
    let stat = s.stat(&q).await.unwrap();
    assert!(stat.exists);
    assert_eq!((stat.count, stat.pending), (0, 0));
    let next = s.push(&q, att.generation, &spec(), &msgs(5..6)).await.unwrap();
    assert!(next > first + 4, "ids keep increasing after a flush");
    assert_eq!(
        s.metadata(&q, MetadataOp::Get("a".into())).await.unwrap(),
        Metadata::Value(Some("1".into()))
    );
    s.flush(&queue("ghost")).await.unwrap();
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_leaves_a_tombstone_and_ids_never_go_backwards() {
    let Some(srv) = common::server("close_leaves_a_tombstone").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("close");
    let att = s.attach(&q, &spec()).await.unwrap();
    let mut watch = s.watch(&q).await.unwrap();
    let last = s.push(&q, att.generation, &spec(), &msgs(0..3)).await.unwrap() + 2;
    assert!(s.close(&q, Some(att.generation)).await.unwrap());
    let notices: Vec<Notice> = tokio::time::timeout(common::DEADLINE, async {
        let mut seen = Vec::new();
        while let Some(n) = watch.next().await {
            seen.push(n);
            if n == Notice::Closed {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    assert_eq!(notices.last(), Some(&Notice::Closed));
    assert!(!s.stat(&q).await.unwrap().exists);
    match s.push(&q, att.generation, &spec(), &msgs(3..4)).await {
        Err(Error::Closed { queue: name }) => assert_eq!(name, q.as_str()),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(!s.stat(&q).await.unwrap().exists, "a push with the closed generation wrote nothing");
    assert_eq!(s.renew(&q, att.generation, &spec()).await.unwrap(), Renewal::Closed);
    assert!(!s.close(&q, None).await.unwrap());
    let fresh = s.attach(&q, &spec()).await.unwrap();
    assert!(!fresh.existed);
    assert!(fresh.generation > att.generation);
    let id = s.push(&q, fresh.generation, &spec(), &msgs(4..5)).await.unwrap();
    assert!(id > last, "ids never go backwards: {id} <= {last}");
    // A generation closed after it expired still gets its tombstone.
    let q2 = queue("close-expired");
    s.close(&q2, Some(12345)).await.unwrap();
    assert_eq!(s.renew(&q2, 12345, &spec()).await.unwrap(), Renewal::Closed);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_the_queue_and_renew_recreates_it() {
    let Some(srv) = common::server("leases_expire_the_queue").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("lease");
    let sp = QueueSpec { ttl: Duration::from_millis(600), ..spec() };
    let att = s.attach(&q, &sp).await.unwrap();
    let last = s.push(&q, att.generation, &sp, &msgs(0..3)).await.unwrap() + 2;
    s.take(&q, &consumer(), 1, reliable(Duration::from_secs(60), 5)).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(s.renew(&q, att.generation, &sp).await.unwrap(), Renewal::Alive);
    }
    assert!(s.stat(&q).await.unwrap().exists, "renewals keep it alive past its ttl");
    s.detach(&q, att.generation).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let stat = s.stat(&q).await.unwrap();
    assert!(!stat.exists, "it expired ttl after the last detach: {stat:?}");
    // Nothing of the old incarnation leaks into the next one.
    let mut raw = common::raw(&srv).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("busmq:{{{}}}:*", q.as_str()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(keys.iter().all(|k| k.ends_with(":t")), "only the tombstone may remain: {keys:?}");
    match s.renew(&q, att.generation, &sp).await.unwrap() {
        Renewal::Recreated { generation, spec: got } => {
            assert!(generation > att.generation);
            assert_eq!(got, sp);
        }
        other => panic!("expected Recreated, got {other:?}"),
    }
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (0, 0));
    let id = s.push(&q, att.generation, &sp, &msgs(3..4)).await.unwrap();
    assert!(id > last);
    s.detach(&q, 1).await.unwrap();
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_hear_pushes_and_releases_from_another_store() {
    let Some(srv) = common::server("watchers_hear_pushes").await else {
        return;
    };
    let a = common::store(&[&srv]).await;
    let b = common::store(&[&srv]).await;
    let q = queue("watch");
    let att = a.attach(&q, &spec()).await.unwrap();
    let mut w1 = a.watch(&q).await.unwrap();
    let mut w2 = a.watch(&q).await.unwrap();
    b.push(&q, att.generation, &spec(), &msgs(0..3)).await.unwrap();
    for w in [&mut w1, &mut w2] {
        let n = tokio::time::timeout(common::DEADLINE, w.next()).await.unwrap();
        assert_eq!(n, Some(Notice::Available));
    }
    drop(w1);
    let t = b.take(&q, &consumer(), 1, reliable(Duration::from_secs(60), 5)).await.unwrap();
    b.settle(&q, &[Settle::Release { id: t.entries[0].id, delivery: 1 }]).await.unwrap();
    let n = tokio::time::timeout(common::DEADLINE, w2.next()).await.unwrap();
    assert_eq!(n, Some(Notice::Available));
    a.disconnect().await.unwrap();
    let end =
        tokio::time::timeout(common::DEADLINE, async { while w2.next().await.is_some() {} }).await;
    assert!(end.is_ok(), "watch streams end on disconnect");
    common::stop(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_by_id_find_the_first_entry_at_or_after_any_id() {
    let Some(srv) = common::server("reads_by_id_find_the_first_entry").await else {
        return;
    };
    let s = common::store_with(common::builder([srv.url()]).page_size(16)).await;
    let q = queue("by-id");
    let att = s.attach(&q, &spec()).await.unwrap();
    // Batches of varied sizes, some pushed after a pause, so ids have runs and jumps.
    let mut next = 0u32;
    for round in 0..40u32 {
        let size = 1 + (round * 7 + 3) % 23;
        s.push(&q, att.generation, &spec(), &msgs(next..next + size)).await.unwrap();
        next += size;
        if round % 5 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let all = s.read(&q, Position::Start, 10_000).await.unwrap().entries;
    assert_eq!(all.len(), next as usize);
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let mut probes: Vec<u64> = Vec::new();
    for &id in &ids {
        probes.extend([id - 1, id, id + 1]);
    }
    probes.push(ids[ids.len() - 1] + 1000);
    for x in probes {
        let want = ids.iter().position(|&id| id >= x);
        let got = s.read(&q, Position::FromId(x), 2).await.unwrap().entries;
        match want {
            Some(i) => {
                assert_eq!(got.first().map(|e| e.id), Some(ids[i]), "from id {x}");
                assert_eq!(got.get(1).map(|e| e.id), ids.get(i + 1).copied(), "from id {x}");
            }
            None => assert!(got.is_empty(), "from id {x}: {got:?}"),
        }
    }
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_entries_outlive_their_batch_and_settled_batches_leave_nothing() {
    let Some(srv) = common::server("extended_entries_outlive_their_batch").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("extend");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..3)).await.unwrap();
    let c = consumer();
    let t = s.take(&q, &c, 3, reliable(Duration::from_millis(300), 10)).await.unwrap().entries;
    let ext = Settle::Extend { id: t[1].id, delivery: 1, by: Duration::from_secs(60) };
    assert_eq!(s.settle(&q, &[ext]).await.unwrap(), [Settled::Done]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = s.take(&q, &c, 10, reliable(Duration::from_secs(60), 10)).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m0", "m2"], "only the entries that were not extended");
    assert_eq!(again.iter().map(|e| e.deliveries).collect::<Vec<_>>(), [2, 2]);
    let mut acks: Vec<Settle> =
        again.iter().map(|e| Settle::Ack { id: e.id, delivery: e.deliveries }).collect();
    acks.push(Settle::Ack { id: t[1].id, delivery: 1 });
    assert!(s.settle(&q, &acks).await.unwrap().iter().all(|r| *r == Settled::Done));
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    let mut raw = common::raw(&srv).await;
    for suffix in ["x", "z", "r"] {
        let key = format!("busmq:{{{}}}:{suffix}", q.as_str());
        let n: i64 = redis::cmd("EXISTS").arg(&key).query_async(&mut raw).await.unwrap();
        assert_eq!(n, 0, "{key} is empty once everything is settled");
    }
    common::stop(&s).await;
}

/// Pushes of 32 entries and more go through append.lua (the values are appended by RPUSHX in a
/// MULTI, not copied through Lua): pages fill exactly, ids stay consecutive and increasing,
/// refused pushes write nothing, a blocked consumer wakes, and no key is left without expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pushes_append_outside_lua_and_keep_every_rule() {
    let Some(srv) = common::server("large_pushes_append_outside_lua").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("append");
    let sp = QueueSpec { maxsize: Some(100), ..spec() };
    let att = s.attach(&q, &sp).await.unwrap();
    // Page size 8: the first push starts a fresh page and runs over four more, the second
    // starts inside a partly filled page.
    let a = s.push(&q, att.generation, &sp, &msgs(0..37)).await.unwrap();
    let b = s.push(&q, att.generation, &sp, &msgs(37..77)).await.unwrap();
    assert!(b > a + 36, "ids increase across pushes: {a} then {b}");
    match s.push(&q, att.generation, &sp, &msgs(77..117)).await {
        Err(Error::QueueFull { maxsize: 100, .. }) => {}
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(s.stat(&q).await.unwrap().count, 77, "nothing of the refused push was written");
    let c = consumer();
    let first = s.take(&q, &c, 30, AMO).await.unwrap();
    let rest = s.take(&q, &c, 100, AMO).await.unwrap();
    let all: Vec<Entry> = first.entries.into_iter().chain(rest.entries).collect();
    let expected: Vec<String> = (0..77).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads(&all), expected);
    for w in all.windows(2) {
        assert!(w[1].id > w[0].id, "ids strictly increase: {} then {}", w[0].id, w[1].id);
    }
    assert_eq!(all[36].id, a + 36);
    assert_eq!(all[37].id, b);

    // A consumer blocked on the empty queue's next page is woken by a large push.
    let cancel = tokio::sync::Notify::new();
    let waiting = s.take_wait(&q, &c, 100, Duration::from_secs(5), &cancel);
    let pushing = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.push(&q, att.generation, &sp, &msgs(200..240)).await.unwrap()
    };
    let started = std::time::Instant::now();
    let (woken, _) = tokio::join!(waiting, pushing);
    let woken = woken.unwrap();
    assert!(!woken.entries.is_empty(), "the blocked consumer got the pushed entries");
    assert!(started.elapsed() < Duration::from_secs(3), "woken by the push, not the timeout");
    assert_eq!(payloads(&woken.entries)[0], "m200");

    // Every key the pushes wrote carries the queue's expiry, and the in key is gone.
    let mut conn = common::raw(&srv).await;
    let pattern = format!("*{{{}}}*", q.as_str());
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.unwrap();
    assert!(!keys.is_empty());
    let stats: String =
        redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    assert!(stats.contains("cmdstat_rpushx:"), "the pushes went through append.lua");
    for key in &keys {
        assert!(!key.ends_with(":in"), "the in key outlived its transaction");
        if key.ends_with(":t") {
            continue;
        }
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }

    // A push with a closed generation writes nothing, through either path.
    assert!(s.close(&q, Some(att.generation)).await.unwrap());
    match s.push(&q, att.generation, &sp, &msgs(300..340)).await {
        Err(Error::Closed { .. }) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(!s.stat(&q).await.unwrap().exists, "a push with the closed generation wrote nothing");
    let fresh = s.attach(&q, &sp).await.unwrap();
    let id = s.push(&q, fresh.generation, &sp, &msgs(400..440)).await.unwrap();
    assert!(id > all[76].id, "ids never go backwards after a close");
    common::stop(&s).await;
}

/// The keys of the pending batches of queue `q` (`b:` lists and `a:` bitmaps).
async fn batch_keys(raw: &mut redis::aio::MultiplexedConnection, q: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for pattern in ["b:*", "a:*"] {
        let found: Vec<String> = redis::cmd("KEYS")
            .arg(format!("busmq:{{{q}}}:{pattern}"))
            .query_async(raw)
            .await
            .unwrap();
        keys.extend(found);
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_takes_span_small_pages_in_order_and_settled_batches_leave_no_keys() {
    let Some(srv) = common::server("reliable_takes_span_small_pages").await else {
        return;
    };
    // Pages of 2: a take of 9 moves two pages in Redis and the rest through Lua.
    let s = common::store_with(common::builder([srv.url()]).page_size(2)).await;
    let q = queue("small-pages");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..12)).await.unwrap();
    let c = consumer();
    let mode = reliable(Duration::from_secs(60), 10);
    // Start inside a page, so that the first segment is part of one.
    let first = s.take(&q, &c, 1, mode).await.unwrap().entries;
    assert_eq!(payloads(&first), ["m0"]);
    let t = s.take(&q, &c, 9, mode).await.unwrap().entries;
    assert_eq!(payloads(&t), (1..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (2, 10));
    let mut raw = common::raw(&srv).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&batch_keys(&mut raw, q.as_str()).await[0])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(ttl > 0, "pending batches expire with the queue");
    // Release two from different segments: they come back first, in id order.
    let rel = [
        Settle::Release { id: t[7].id, delivery: 1 },
        Settle::Release { id: t[0].id, delivery: 1 },
    ];
    assert_eq!(s.settle(&q, &rel).await.unwrap(), [Settled::Done, Settled::Done]);
    let mut acks: Vec<Settle> =
        t.iter().chain(&first).map(|e| Settle::Ack { id: e.id, delivery: 1 }).collect();
    let out = s.settle(&q, &acks).await.unwrap();
    assert_eq!(out.iter().filter(|o| **o == Settled::Done).count(), 8, "{out:?}");
    let again = s.take(&q, &c, 10, mode).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m1", "m8", "m10", "m11"]);
    assert_eq!(again.iter().map(|e| e.deliveries).collect::<Vec<_>>(), [2, 2, 1, 1]);
    acks = again.iter().map(|e| Settle::Ack { id: e.id, delivery: e.deliveries }).collect();
    assert!(s.settle(&q, &acks).await.unwrap().iter().all(|r| *r == Settled::Done));
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    assert_eq!(batch_keys(&mut raw, q.as_str()).await, Vec::<String>::new());
    // Closing a queue with pending batches removes them too.
    s.push(&q, att.generation, &spec(), &msgs(0..3)).await.unwrap();
    let t = s.take(&q, &c, 3, mode).await.unwrap().entries;
    s.settle(&q, &[Settle::Ack { id: t[1].id, delivery: 1 }]).await.unwrap();
    assert!(!batch_keys(&mut raw, q.as_str()).await.is_empty());
    s.flush(&q).await.unwrap();
    assert_eq!(batch_keys(&mut raw, q.as_str()).await, Vec::<String>::new());
    s.push(&q, att.generation, &spec(), &msgs(0..3)).await.unwrap();
    s.take(&q, &c, 3, mode).await.unwrap();
    s.close(&q, None).await.unwrap();
    assert_eq!(batch_keys(&mut raw, q.as_str()).await, Vec::<String>::new());
    common::stop(&s).await;
}

/// A foreign entry among claimed ones is moved aside and settled; the others are delivered and
/// nothing is lost (tests/foreign.rs covers every take path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_take_of_foreign_data_loses_nothing() {
    let Some(srv) = common::server("a_reliable_take_of_foreign_data").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("reliable-foreign");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..2)).await.unwrap();
    let mut raw = common::raw(&srv).await;
    let _: () = redis::cmd("RPUSH")
        .arg(format!("busmq:{{{}}}:p:0", q.as_str()))
        .arg("7 not a busmq header")
        .query_async(&mut raw)
        .await
        .unwrap();
    let c = consumer();
    let mode = reliable(Duration::from_secs(60), 10);
    let t = s.take(&q, &c, 10, mode).await.unwrap();
    assert_eq!(payloads(&t.entries), ["m0", "m1"]);
    assert_eq!(t.foreign.len(), 1, "{:?}", t.foreign);
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending, stat.quarantined), (0, 2, 1));
    let acks: Vec<Settle> =
        t.entries.iter().map(|e| Settle::Ack { id: e.id, delivery: e.deliveries }).collect();
    assert!(s.settle(&q, &acks).await.unwrap().iter().all(|r| *r == Settled::Done));
    assert_eq!(batch_keys(&mut raw, q.as_str()).await, Vec::<String>::new());
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_is_per_entry_both_ways_and_keeps_settlements_valid() {
    let Some(srv) = common::server("an_extension_is_per_entry").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("extend-both-ways");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..3)).await.unwrap();
    let c = consumer();
    let long = reliable(Duration::from_secs(60), 10);
    let t = s.take(&q, &c, 3, long).await.unwrap().entries;
    // Shorter than the batch's own deadline: only this entry comes back early.
    let ext = Settle::Extend { id: t[0].id, delivery: 1, by: Duration::from_millis(200) };
    let ack = Settle::Ack { id: t[2].id, delivery: 1 };
    assert_eq!(s.settle(&q, &[ext, ack]).await.unwrap(), [Settled::Done, Settled::Done]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = s.take(&q, &c, 10, long).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m0"]);
    assert_eq!(again[0].deliveries, 2);
    let acks = [
        Settle::Ack { id: t[0].id, delivery: 1 },
        Settle::Ack { id: t[1].id, delivery: 1 },
        Settle::Ack { id: again[0].id, delivery: 2 },
    ];
    assert_eq!(s.settle(&q, &acks).await.unwrap(), [Settled::Stale, Settled::Done, Settled::Done]);
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    let mut raw = common::raw(&srv).await;
    assert_eq!(batch_keys(&mut raw, q.as_str()).await, Vec::<String>::new());
    let ext_keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("busmq:{{{}}}:e:*", q.as_str()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(ext_keys.is_empty(), "{ext_keys:?}");
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_extensions_keep_an_entry_pending_while_others_take() {
    let Some(srv) = common::server("repeated_extensions_keep").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let other = common::store(&[&srv]).await;
    let q = queue("extend-repeatedly");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &msgs(0..1)).await.unwrap();
    let second = Duration::from_secs(1);
    let t = s.take(&q, &consumer(), 1, reliable(second, 10)).await.unwrap().entries;
    for round in 0..12 {
        tokio::time::sleep(Duration::from_millis(110)).await;
        if round % 3 == 2 {
            let ext = Settle::Extend { id: t[0].id, delivery: 1, by: second };
            assert_eq!(s.settle(&q, &[ext]).await.unwrap(), [Settled::Done], "round {round}");
        }
        let got = other.take(&q, &consumer(), 5, reliable(second, 10)).await.unwrap().entries;
        assert!(got.is_empty(), "round {round}: {got:?}");
    }
    let ack = Settle::Ack { id: t[0].id, delivery: 1 };
    assert_eq!(s.settle(&q, &[ack]).await.unwrap(), [Settled::Done]);
    common::stop(&s).await;
    common::stop(&other).await;
}
