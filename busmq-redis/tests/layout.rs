//! The stored layout version (issue 12 item 7): a queue whose meta hash holds a layout version
//! this client does not know (an older `1`, or a newer `3`) is refused by every operation with
//! `Error::UnknownLayout` naming the queue and both versions, and nothing of it is read or
//! written: its keys are byte-identical afterwards.

mod common;

use busmq_core::store::{ClientId, ConsumerId};
use busmq_core::store::{
    ConsumerKind, ConsumerOp, Dedupe, Entry, MetadataOp, NewEntry, Position, PushBatch, Receipt,
    Settle, Settlement, TakeMode,
};
use busmq_core::{Error, QueueName, Result, Store};
use common::{queue, spec};
use redis::aio::MultiplexedConnection;
use std::time::Duration;
use tokio::sync::Notify;

/// The version this client writes (see `script/keys.rs`).
const SUPPORTED: &str = "2";

/// Every key of queue `q` with its serialized value and remaining life.
async fn snapshot(raw: &mut MultiplexedConnection, q: &QueueName) -> Vec<(String, Vec<u8>, i64)> {
    let pattern = format!("busmq:{{{}}}:*", q.as_str());
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(raw).await.unwrap();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(raw).await.unwrap();
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(raw).await.unwrap();
        out.push((key, dump, ttl));
    }
    out
}

/// The dedupe key `plant` leaves, naming entry 2 of generation 1: a keyed push with it must
/// still be refused, not answered from the key.
const PLANTED_KEY: &str = "planted";

/// A queue as another version of busmq might have left it: a meta hash with layout `version`,
/// a page of entries and a producer dedupe key.
async fn plant(raw: &mut MultiplexedConnection, q: &QueueName, version: &str) {
    let prefix = format!("busmq:{{{}}}:", q.as_str());
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}m"))
        .arg(&["v", version, "gen", "1", "ttl", "30000", "size", "8", "last", "2"])
        .arg(&["base", "0", "n", "2", "head", "0", "tail", "2", "max", "", "rlen", "", "rage", ""])
        .query_async(raw)
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(format!("{prefix}p:0"))
        .arg(&["1:0:0:old", "2:0:0:old"])
        .query_async(raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}k:{PLANTED_KEY}"))
        .arg("1:2")
        .query_async(raw)
        .await
        .unwrap();
}

fn refused<T: std::fmt::Debug>(what: &str, q: &QueueName, version: &str, result: Result<T>) {
    match result {
        Err(Error::UnknownLayout { queue, found, supported }) => {
            assert_eq!(queue, q.as_str(), "{what}");
            assert_eq!((found.as_str(), supported.as_str()), (version, SUPPORTED), "{what}");
        }
        other => panic!("{what} on layout {version}: expected UnknownLayout, got {other:?}"),
    }
}

/// A delivery with a real receipt, taken from a queue in this client's layout.
async fn delivery(s: &impl Store) -> Entry {
    let good = queue("layout-good");
    let generation = s.attach(&good, &spec()).await.unwrap().generation;
    s.push(&good, &PushBatch::new(generation, &spec(), &[NewEntry::new("z")])).await.unwrap();
    let reliable = TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 3 };
    s.take(&good, 1, reliable).await.unwrap().entries.remove(0)
}

/// Runs every queue operation on `q` and checks that each one is refused.
async fn every_operation_is_refused(s: &impl Store, q: &QueueName, version: &str) {
    let sp = spec();
    let one = [NewEntry::new("x")];
    let many: Vec<NewEntry> = (0..40).map(|i| NewEntry::new(format!("m{i}"))).collect();
    let reliable = TakeMode::Reliable { visibility: Duration::from_secs(5), max_deliveries: 3 };
    let taken = delivery(s).await;
    let consumer = ConsumerId::new(&ClientId::new("layout"), 1);
    let register = ConsumerOp::Register {
        id: consumer,
        kind: ConsumerKind::Removing,
        lease: Duration::from_secs(5),
    };
    refused("attach", q, version, s.attach(q, &sp).await);
    refused("renew", q, version, s.renew(q, 1, &sp).await);
    refused("push", q, version, s.push(q, &PushBatch::new(1, &sp, &one)).await);
    refused("a large push", q, version, s.push(q, &PushBatch::new(1, &sp, &many)).await);
    let mut keyed = PushBatch::new(1, &sp, &one);
    keyed.dedupe = Some(Dedupe { key: PLANTED_KEY, window: Duration::from_secs(60) });
    refused("a keyed push", q, version, s.push(q, &keyed).await);
    refused("take", q, version, s.take(q, 10, TakeMode::AtMostOnce).await);
    refused("reliable take", q, version, s.take(q, 10, reliable).await);
    if let Some(blocking) = s.blocking() {
        let (cancel, resume) = (Notify::new(), Receipt::none());
        let wait = blocking.take_wait(q, 10, Duration::from_secs(1), &cancel, &resume);
        refused("blocking take", q, version, wait.await);
    }
    refused("restore", q, version, s.restore(q, 1, std::slice::from_ref(&taken)).await);
    refused("settle", q, version, s.settle(q, &[Settle::of(&taken, Settlement::Ack)]).await);
    refused("read", q, version, s.read(q, Position::Start, 10).await);
    refused("consumers", q, version, s.consumers(q, register).await);
    refused("stat", q, version, s.stat(q).await);
    refused("flush", q, version, s.flush(q).await);
    refused("metadata", q, version, s.metadata(q, MetadataOp::GetAll).await);
    let set = MetadataOp::Set(vec![("k".into(), "v".into())]);
    refused("metadata set", q, version, s.metadata(q, set).await);
    refused("detach", q, version, s.detach(q, 1).await);
    refused("close", q, version, s.close(q, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_in_an_unknown_layout_is_refused_and_left_untouched() {
    let Some(srv) = common::server("a_queue_in_an_unknown_layout_is_refused").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    for version in ["1", "3"] {
        let q = queue(&format!("layout-{version}"));
        plant(&mut raw, &q, version).await;
        let before = snapshot(&mut raw, &q).await;
        assert_eq!(before.len(), 3, "{before:?}");
        every_operation_is_refused(&s, &q, version).await;
        let after = snapshot(&mut raw, &q).await;
        let keys = |s: &[(String, Vec<u8>, i64)]| s.iter().map(|k| k.0.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&after), keys(&before), "layout {version}: no key added or removed");
        for ((key, dump, ttl), (_, was, had)) in after.iter().zip(&before) {
            assert_eq!(dump, was, "layout {version}: {key} changed");
            assert_eq!((*ttl, *had), (-1, -1), "layout {version}: {key} got an expiry");
        }
        // Another queue of the same store is not affected.
        let fine = queue("layout-fine");
        let att = s.attach(&fine, &spec()).await.unwrap();
        s.push(&fine, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("y")]))
            .await
            .unwrap();
        assert_eq!(s.stat(&fine).await.unwrap().count, 1);
    }
    common::stop(&s).await;
}
