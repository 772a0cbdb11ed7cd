//! Acks travel to settle.lua as runs of consecutive indices of one batch, set 32 bits to a
//! BITFIELD operation: every entry of a run is still settled once, in call order, and the
//! entries of a run that were settled before are told apart from the others.

mod common;

use busmq_core::store::{Entry, NewEntry, PushBatch, Settle, Settled, Settlement, TakeMode};
use busmq_core::{QueueName, Store};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use common::{queue, spec};
use std::time::Duration;

const RELIABLE: TakeMode =
    TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 10 };

fn acks<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Settle> {
    entries.into_iter().map(|e| Settle::of(e, Settlement::Ack)).collect()
}

/// What each settlement should report: `Done` except at the positions in `stale`.
fn expect(n: usize, stale: &[usize]) -> Vec<Settled> {
    (0..n).map(|i| if stale.contains(&i) { Settled::Stale } else { Settled::Done }).collect()
}

struct Taken {
    srv: RedisServer,
    s: RedisStore,
    q: QueueName,
    t: Vec<Entry>,
}

/// `n` entries pushed and taken reliably, on pages of `page` entries (a take moves whole pages
/// and parts of one into batches of their own, and what lies past its first pages into one
/// more), or `None` when redis-server is missing.
async fn setup(test: &str, n: u32, page: u32) -> Option<Taken> {
    let srv = common::server(test).await?;
    let s = common::store_with(common::builder([srv.url()]).page_size(page)).await;
    let q = queue(test);
    let att = s.attach(&q, &spec()).await.unwrap();
    let all: Vec<NewEntry> = (0..n).map(|i| NewEntry::new(format!("m{i}"))).collect();
    for chunk in all.chunks(1000) {
        s.push(&q, &PushBatch::new(att.generation, &spec(), chunk)).await.unwrap();
    }
    let mut t = Vec::new();
    while t.len() < n as usize {
        let got = s.take(&q, n - t.len() as u32, RELIABLE).await.unwrap().entries;
        assert!(!got.is_empty(), "the queue ran dry after {}", t.len());
        t.extend(got);
    }
    Some(Taken { srv, s, q, t })
}

/// Whatever settle.lua left of the queue's pending batches (`b:`, `a:` and `e:` keys).
async fn batch_keys(srv: &RedisServer, q: &QueueName) -> Vec<String> {
    let mut raw = common::raw(srv).await;
    let mut out = Vec::new();
    for kind in ["b", "a", "e"] {
        let pattern = format!("busmq:{{{}}}:{kind}:*", q.as_str());
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(pattern).query_async(&mut raw).await.unwrap();
        out.extend(keys);
    }
    out
}

/// A run whose middle was acked before reports those entries stale and the rest done, and the
/// batch goes once every entry is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_tells_apart_the_entries_acked_before() {
    let Some(Taken { srv, s, q, t }) = setup("a_run_tells_apart", 100, 128).await else {
        return;
    };
    assert_eq!(s.settle(&q, &acks(&t[10..20])).await.unwrap(), expect(10, &[]));
    let stale: Vec<usize> = (10..20).collect();
    assert_eq!(s.settle(&q, &acks(&t)).await.unwrap(), expect(100, &stale));
    assert_eq!(s.settle(&q, &acks(&t[..1])).await.unwrap(), [Settled::Stale]);
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    assert_eq!(batch_keys(&srv, &q).await, Vec::<String>::new());
    common::stop(&s).await;
}

/// Acks out of order, repeated in one call and mixed with releases are settled in call order:
/// a second ack of an entry, or one after its release, is stale; a release after an ack too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_out_of_order_repeated_and_mixed_settle_each_entry_once() {
    // Pages of 4: the twelve entries come in several batches, so runs stop at their ends too.
    let Some(Taken { srv: _srv, s, q, t }) = setup("runs_out_of_order", 12, 4).await else {
        return;
    };
    // Runs [5], [3, 4], [0, 1, 2], [2, 3] (both stale), [9], [8], [7], [6, 7] (7 stale).
    let order = [5, 3, 4, 0, 1, 2, 2, 3, 9, 8, 7, 6, 7];
    let out = s.settle(&q, &acks(order.iter().map(|&i| &t[i]))).await.unwrap();
    assert_eq!(out, expect(order.len(), &[6, 7, 12]));
    let mixed = [
        Settle::of(&t[10], Settlement::Release),
        Settle::of(&t[10], Settlement::Ack),
        Settle::of(&t[11], Settlement::Ack),
        Settle::of(&t[11], Settlement::Release),
        Settle::of(&t[0], Settlement::Release),
    ];
    let out = s.settle(&q, &mixed).await.unwrap();
    assert_eq!(out, [Settled::Done, Settled::Stale, Settled::Done, Settled::Stale, Settled::Stale]);
    // Only the released entry comes back, as its second delivery.
    let again = s.take(&q, 10, RELIABLE).await.unwrap().entries;
    assert_eq!(again.len(), 1);
    assert_eq!((&again[0].payload[..], again[0].deliveries), (&b"m10"[..], 2));
    assert_eq!(s.settle(&q, &acks(&again)).await.unwrap(), [Settled::Done]);
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    common::stop(&s).await;
}

/// A run of 9,000 entries takes two BITFIELD calls (256 operations of 32 bits each): entries
/// of both calls' ranges are settled, and those acked before are stale in either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_longer_than_one_bitfield_call_settles_every_entry() {
    // One page: the take renames it whole into one batch.
    let Some(Taken { srv, s, q, t }) = setup("a_long_run", 9_000, 10_000).await else {
        return;
    };
    let before = [0, 31, 32, 33, 4_000, 8_191, 8_192, 8_999];
    let out = s.settle(&q, &acks(before.iter().map(|&i| &t[i]))).await.unwrap();
    assert_eq!(out, expect(before.len(), &[]));
    assert_eq!(s.settle(&q, &acks(&t)).await.unwrap(), expect(t.len(), &before));
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    assert_eq!(batch_keys(&srv, &q).await, Vec::<String>::new());
    common::stop(&s).await;
}
