//! What the Redis layout adds to the Store contract (which busmq-testkit's `store_` cases check
//! on every backend), against one real redis-server: page lists and Lua's chunking, the append
//! path of large pushes, pending batch keys, foreign bytes among claimed entries, and that every
//! key of a queue expires with it.

mod common;

use busmq_core::Error;
use busmq_core::store::{
    Entry, NewEntry, Position, PushBatch, QueueSpec, Restored, Settle, Settled, Settlement,
    TakeMode,
};
use busmq_core::{QueueName, Store};
use common::{queue, spec};
use std::time::Duration;

fn msgs(range: std::ops::Range<u32>) -> Vec<NewEntry> {
    range.map(|i| NewEntry::new(format!("m{i}"))).collect()
}

fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect()
}

const AMO: TakeMode = TakeMode::AtMostOnce;
const RELIABLE: TakeMode =
    TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 10 };

async fn push(
    s: &impl Store,
    q: &QueueName,
    generation: u64,
    sp: &QueueSpec,
    e: &[NewEntry],
) -> u64 {
    s.push(q, &PushBatch::new(generation, sp, e)).await.unwrap()
}

fn settle_all(entries: &[Entry], action: Settlement) -> Vec<Settle> {
    entries.iter().map(|e| Settle::of(e, action)).collect()
}

/// Every key of queue `q` matching `pattern` (`*` for all).
async fn keys(
    raw: &mut redis::aio::MultiplexedConnection,
    q: &QueueName,
    pattern: &str,
) -> Vec<String> {
    let pattern = format!("busmq:{{{}}}:{pattern}", q.as_str());
    redis::cmd("KEYS").arg(pattern).query_async(raw).await.unwrap()
}

/// The keys of the pending batches of `q` (`b:` lists, `a:` bitmaps, `e:` extensions).
async fn batch_keys(raw: &mut redis::aio::MultiplexedConnection, q: &QueueName) -> Vec<String> {
    let mut out = keys(raw, q, "b:*").await;
    out.extend(keys(raw, q, "a:*").await);
    out.extend(keys(raw, q, "e:*").await);
    out
}

/// A batch larger than Lua's `unpack` limit and than many pages goes in and out whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_spans_many_pages_and_chunks() {
    let Some(srv) = common::server("a_large_batch_spans_many_pages").await else {
        return;
    };
    let s = common::store_with(common::builder([srv.url()]).page_size(1000)).await;
    let q = queue("large");
    let att = s.attach(&q, &spec()).await.unwrap();
    push(&s, &q, att.generation, &spec(), &msgs(0..15_000)).await;
    let t = s.take(&q, 12_000, AMO).await.unwrap();
    assert_eq!(t.entries.len(), 12_000);
    assert_eq!(payloads(&t.entries[11_999..]), vec!["m11999"]);
    let restored = s.restore(&q, att.generation, &t.entries[10_000..]).await.unwrap();
    assert_eq!(restored, Restored::Done);
    let rest = s.take(&q, 10_000, AMO).await.unwrap();
    let expected: Vec<String> = (10_000..15_000).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads(&rest.entries), expected);
    common::stop(&s).await;
}

/// Restores merge into the head page in id order (small pages, restores given back out of
/// order, a later restore below an earlier one), so that reads by index and by id, which
/// search the pages, still find every entry after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_keep_the_pages_in_id_order_for_reads() {
    let Some(srv) = common::server("restores_keep_the_pages_in_id_order").await else {
        return;
    };
    let s = common::store_with(common::builder([srv.url()]).page_size(4)).await;
    let q = queue("restore-pages");
    let generation = s.attach(&q, &spec()).await.unwrap().generation;
    push(&s, &q, generation, &spec(), &msgs(0..12)).await;
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(s.take(&q, 3, AMO).await.unwrap().entries);
    }
    for i in [0, 2, 1] {
        assert_eq!(s.restore(&q, generation, &taken[i]).await.unwrap(), Restored::Done);
    }
    push(&s, &q, generation, &spec(), &msgs(12..16)).await;
    let (store, name) = (&s, &q);
    let read = |from| async move { payloads(&store.read(name, from, 2).await.unwrap().entries) };
    assert_eq!(read(Position::Index(4)).await, ["m4", "m5"]);
    assert_eq!(read(Position::FromId(taken[1][2].id)).await, ["m5", "m6"]);
    assert_eq!(read(Position::AfterId(taken[2][2].id)).await, ["m9", "m10"]);
    assert_eq!(read(Position::Index(13)).await, ["m13", "m14"]);
    let all = s.take(&q, 100, AMO).await.unwrap().entries;
    let expected: Vec<String> = (0..16).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads(&all), expected);
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
    let a = push(&s, &q, att.generation, &sp, &msgs(0..37)).await;
    let b = push(&s, &q, att.generation, &sp, &msgs(37..77)).await;
    assert!(b > a + 36, "ids increase across pushes: {a} then {b}");
    match s.push(&q, &PushBatch::new(att.generation, &sp, &msgs(77..117))).await {
        Err(Error::QueueFull { maxsize: 100, .. }) => {}
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(s.stat(&q).await.unwrap().count, 77, "nothing of the refused push was written");
    let first = s.take(&q, 30, AMO).await.unwrap();
    let rest = s.take(&q, 100, AMO).await.unwrap();
    let all: Vec<Entry> = first.entries.into_iter().chain(rest.entries).collect();
    assert_eq!(payloads(&all), (0..77).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[1].id > w[0].id), "ids strictly increase");
    assert_eq!((all[36].id, all[37].id), (a + 36, b));

    // A consumer blocked on the empty queue's next page is woken by a large push.
    let blocking = s.blocking().expect("a single fixed instance can block");
    let (cancel, resume) = (tokio::sync::Notify::new(), Default::default());
    let waiting = blocking.take_wait(&q, 100, Duration::from_secs(5), &cancel, &resume);
    let pushing = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        push(&s, &q, att.generation, &sp, &msgs(200..240)).await
    };
    let started = std::time::Instant::now();
    let (woken, _) = tokio::join!(waiting, pushing);
    let woken = woken.unwrap();
    assert!(!woken.entries.is_empty(), "the blocked consumer got the pushed entries");
    assert!(started.elapsed() < Duration::from_secs(3), "woken by the push, not the timeout");
    assert_eq!(payloads(&woken.entries)[0], "m200");

    // Every key the pushes wrote carries the queue's expiry, and the in key is gone.
    let mut conn = common::raw(&srv).await;
    let written = keys(&mut conn, &q, "*").await;
    assert!(!written.is_empty());
    let stats: String =
        redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    assert!(stats.contains("cmdstat_rpushx:"), "the pushes went through append.lua");
    for key in written.iter().filter(|k| !k.ends_with(":t")) {
        assert!(!key.ends_with(":in"), "the in key outlived its transaction");
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }

    // A push with a closed generation writes nothing, through either path.
    assert!(s.close(&q, Some(att.generation)).await.unwrap());
    match s.push(&q, &PushBatch::new(att.generation, &sp, &msgs(300..340))).await {
        Err(Error::Closed { .. }) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(!s.stat(&q).await.unwrap().exists, "a push with the closed generation wrote nothing");
    common::stop(&s).await;
}

/// A leftover in key (`<ns>:{q}:in` exists only inside append's MULTI, so one found outside it
/// is foreign): a large push is refused with ForeignData, and nothing of it reaches the queue
/// nor does the leftover replace a page (append.lua's commit once renamed it over the page at
/// the queue's tail, losing that page's entries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_in_key_refuses_a_large_push_and_loses_nothing() {
    let Some(srv) = common::server("a_leftover_in_key_refuses_a_large_push").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("leftover-in");
    let att = s.attach(&q, &spec()).await.unwrap();
    push(&s, &q, att.generation, &spec(), &msgs(0..40)).await;
    let mut raw = common::raw(&srv).await;
    let stray = format!("busmq:{{{}}}:in", q.as_str());
    let _: () = redis::cmd("RPUSH").arg(&stray).arg("by hand").query_async(&mut raw).await.unwrap();
    match s.push(&q, &PushBatch::new(att.generation, &spec(), &msgs(40..80))).await {
        Err(Error::ForeignData { queue, detail }) => {
            assert_eq!(queue, q.as_str());
            assert!(detail.contains(":in"), "{detail}");
        }
        other => panic!("expected ForeignData, got {other:?}"),
    }
    let len: usize = redis::cmd("LLEN").arg(&stray).query_async(&mut raw).await.unwrap();
    assert!(len >= 1, "the leftover is where it was");
    let _: () = redis::cmd("DEL").arg(&stray).query_async(&mut raw).await.unwrap();
    assert_eq!(s.stat(&q).await.unwrap().count, 40, "nothing of the refused push was written");
    let all = s.take(&q, 100, AMO).await.unwrap().entries;
    assert_eq!(payloads(&all), (0..40).map(|i| format!("m{i}")).collect::<Vec<_>>());
    // Once it is gone, large pushes go on.
    push(&s, &q, att.generation, &spec(), &msgs(40..80)).await;
    assert_eq!(s.stat(&q).await.unwrap().count, 40);
    common::stop(&s).await;
}

/// Pages of 2: a reliable take of 9 moves two page segments inside Redis and the rest through
/// Lua, in order; released entries of different segments come back first, in id order; and
/// settling, flushing or closing leaves no batch key behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_takes_span_small_pages_in_order_and_settled_batches_leave_no_keys() {
    let Some(srv) = common::server("reliable_takes_span_small_pages").await else {
        return;
    };
    let s = common::store_with(common::builder([srv.url()]).page_size(2)).await;
    let q = queue("small-pages");
    let att = s.attach(&q, &spec()).await.unwrap();
    push(&s, &q, att.generation, &spec(), &msgs(0..12)).await;
    // Start inside a page, so that the first segment is part of one.
    let first = s.take(&q, 1, RELIABLE).await.unwrap().entries;
    assert_eq!(payloads(&first), ["m0"]);
    let t = s.take(&q, 9, RELIABLE).await.unwrap().entries;
    assert_eq!(payloads(&t), (1..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (2, 10));
    let mut raw = common::raw(&srv).await;
    let pending = batch_keys(&mut raw, &q).await;
    let ttl: i64 = redis::cmd("PTTL").arg(&pending[0]).query_async(&mut raw).await.unwrap();
    assert!(ttl > 0, "pending batches expire with the queue");
    let released = [Settle::of(&t[7], Settlement::Release), Settle::of(&t[0], Settlement::Release)];
    assert_eq!(s.settle(&q, &released).await.unwrap(), [Settled::Done, Settled::Done]);
    let both: Vec<Entry> = t.iter().chain(&first).cloned().collect();
    let out = s.settle(&q, &settle_all(&both, Settlement::Ack)).await.unwrap();
    assert_eq!(out.iter().filter(|o| **o == Settled::Done).count(), 8, "{out:?}");
    let again = s.take(&q, 10, RELIABLE).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m1", "m8", "m10", "m11"]);
    assert_eq!(again.iter().map(|e| e.deliveries).collect::<Vec<_>>(), [2, 2, 1, 1]);
    let out = s.settle(&q, &settle_all(&again, Settlement::Ack)).await.unwrap();
    assert!(out.iter().all(|r| *r == Settled::Done));
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    assert_eq!(batch_keys(&mut raw, &q).await, Vec::<String>::new());
    // An extended entry keeps its batch (and its `e:` key) until it is settled too.
    push(&s, &q, att.generation, &spec(), &msgs(0..3)).await;
    let t = s.take(&q, 3, RELIABLE).await.unwrap().entries;
    let ext = Settle::of(&t[1], Settlement::Extend(Duration::from_secs(60)));
    assert_eq!(s.settle(&q, &[ext]).await.unwrap(), [Settled::Done]);
    s.settle(&q, &settle_all(&t, Settlement::Ack)).await.unwrap();
    assert_eq!(batch_keys(&mut raw, &q).await, Vec::<String>::new());
    for suffix in ["x", "z", "r"] {
        assert_eq!(keys(&mut raw, &q, suffix).await, Vec::<String>::new(), "{suffix} is empty");
    }
    // Flushing or closing a queue with pending batches removes them too.
    push(&s, &q, att.generation, &spec(), &msgs(0..3)).await;
    let t = s.take(&q, 3, RELIABLE).await.unwrap().entries;
    s.settle(&q, &[Settle::of(&t[1], Settlement::Ack)]).await.unwrap();
    assert!(!batch_keys(&mut raw, &q).await.is_empty());
    s.flush(&q).await.unwrap();
    assert_eq!(batch_keys(&mut raw, &q).await, Vec::<String>::new());
    push(&s, &q, att.generation, &spec(), &msgs(0..3)).await;
    s.take(&q, 3, RELIABLE).await.unwrap();
    s.close(&q, None).await.unwrap();
    assert_eq!(batch_keys(&mut raw, &q).await, Vec::<String>::new());
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
    push(&s, &q, att.generation, &spec(), &msgs(0..2)).await;
    let mut raw = common::raw(&srv).await;
    let page = format!("busmq:{{{}}}:p:0", q.as_str());
    let _: () = redis::cmd("RPUSH")
        .arg(page)
        .arg("7 not a busmq header")
        .query_async(&mut raw)
        .await
        .unwrap();
    let t = s.take(&q, 10, RELIABLE).await.unwrap();
    assert_eq!(payloads(&t.entries), ["m0", "m1"]);
    assert_eq!(t.foreign.len(), 1, "{:?}", t.foreign);
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending, stat.quarantined), (0, 2, 1));
    let out = s.settle(&q, &settle_all(&t.entries, Settlement::Ack)).await.unwrap();
    assert!(out.iter().all(|r| *r == Settled::Done));
    assert_eq!(batch_keys(&mut raw, &q).await, Vec::<String>::new());
    common::stop(&s).await;
}

/// All keys of a queue share its expiry: an expired queue leaves nothing but its tombstone, and
/// the next incarnation starts clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_queue_leaves_only_its_tombstone() {
    let Some(srv) = common::server("an_expired_queue_leaves_only_its_tombstone").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("lease");
    let sp = QueueSpec { ttl: Duration::from_millis(600), ..spec() };
    let att = s.attach(&q, &sp).await.unwrap();
    push(&s, &q, att.generation, &sp, &msgs(0..20)).await;
    let t = s.take(&q, 3, RELIABLE).await.unwrap().entries;
    s.settle(&q, &[Settle::of(&t[0], Settlement::Extend(Duration::from_secs(60)))]).await.unwrap();
    s.detach(&q, att.generation).await.unwrap();
    let mut raw = common::raw(&srv).await;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let left = keys(&mut raw, &q, "*").await;
        if left.iter().all(|k| k.ends_with(":t")) {
            assert!(left.len() <= 1, "only the tombstone may remain: {left:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still there: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!s.stat(&q).await.unwrap().exists);
    common::stop(&s).await;
}
