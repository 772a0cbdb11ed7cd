//! Data that busmq did not write (SPEC E3, S4): a wrong key type is a typed error for that queue
//! only; a foreign entry is moved aside into the queue's quarantine list `<ns>:{q}:f`, reported
//! once, and the entries after it keep flowing, in order, on every take path.

mod common;

use busmq_core::store::{
    Entry, NewEntry, Position, PushBatch, QueueSpec, Receipt, Retention, Settle, Settled,
    Settlement, TakeMode, Taken,
};
use busmq_core::{
    AttachOptions, Bus, ConsumeOptions, Error, EventStream, Queue, QueueEvent, QueueName,
    ReliableOptions, Store,
};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use common::{inject, queue, spec};
use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// "Within a few seconds": the defect held the queue for 30 s and more.
const SOON: Duration = Duration::from_secs(10);

/// Values no busmq client writes: text, binary bytes (shown escaped), and digits that only
/// look like the start of a header (the scripts' cheap check lets them through).
const GARBAGE: &[u8] = b"hello from redis-cli";
const BINARY: &[u8] = b"\xff\x00\x1bbin";
const DIGITS: &[u8] = b"12abc";

fn assert_foreign<T: std::fmt::Debug>(r: Result<T, Error>, q: &QueueName) {
    match r {
        Err(Error::ForeignData { queue, detail }) => {
            assert_eq!(queue, q.as_str());
            assert!(!detail.is_empty());
            let text = Error::ForeignData { queue, detail }.to_string();
            assert!(text.contains(q.as_str()), "{text}");
        }
        other => panic!("expected ForeignData for {q:?}, got {other:?}"),
    }
}

fn reliable(visibility: Duration) -> TakeMode {
    TakeMode::Reliable { visibility, max_deliveries: 10 }
}

fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect()
}

fn quarantine_key(q: &str) -> String {
    format!("busmq:{{{q}}}:f")
}

async fn quarantined(raw: &mut MultiplexedConnection, q: &str) -> Vec<Vec<u8>> {
    redis::cmd("LRANGE").arg(quarantine_key(q)).arg(0).arg(-1).query_async(raw).await.unwrap()
}

/// A detail names what was wrong, where the entry went (the quarantine, or nowhere for a
/// read), and its first bytes, escaped.
fn assert_detail(detail: &str, q: &str, value: &[u8], moved: bool) {
    assert!(detail.contains("busmq header"), "what was wrong: {detail}");
    assert_eq!(detail.contains(&quarantine_key(q)), moved, "where it went: {detail}");
    let shown = value[..value.len().min(32)].escape_ascii().to_string();
    assert!(detail.contains(&shown), "its first bytes ({shown}): {detail}");
}

/// Checks the details of a take against the injected values, in order.
fn assert_details(details: &[String], q: &str, values: &[&[u8]]) {
    assert_eq!(details.len(), values.len(), "one detail per foreign entry: {details:?}");
    for (d, v) in details.iter().zip(values) {
        assert_detail(d, q, v, true);
    }
}

/// [`assert_details`] for a read, which leaves the entries where they are.
fn assert_read_details(details: &[String], q: &str, values: &[&[u8]]) {
    assert_eq!(details.len(), values.len(), "one detail per foreign entry: {details:?}");
    for (d, v) in details.iter().zip(values) {
        assert_detail(d, q, v, false);
    }
}

async fn still_works(s: &RedisStore) {
    let q = queue("healthy");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("fine")])).await.unwrap();
    assert_eq!(s.take(&q, 5, TakeMode::AtMostOnce).await.unwrap().entries.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_the_wrong_type_is_foreign_data_for_that_queue_only() {
    let Some(srv) = common::server("a_key_of_the_wrong_type_is_foreign_data").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("string-meta");
    let _: () = redis::cmd("SET")
        .arg(format!("busmq:{{{}}}:m", q.as_str()))
        .arg("not a hash")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_foreign(s.attach(&q, &spec()).await, &q);
    assert_foreign(s.push(&q, &PushBatch::new(1, &spec(), &[NewEntry::new("x")])).await, &q);
    assert_foreign(s.stat(&q).await, &q);
    still_works(&s).await;

    let q = queue("hash-without-version");
    let _: () = redis::cmd("HSET")
        .arg(format!("busmq:{{{}}}:m", q.as_str()))
        .arg("owner")
        .arg("someone else")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_foreign(s.attach(&q, &spec()).await, &q);
    assert_foreign(s.read(&q, Position::Start, 10).await, &q);
    still_works(&s).await;

    let q = queue("page-is-a-set");
    let att = s.attach(&q, &spec()).await.unwrap();
    let _: () = redis::cmd("SADD")
        .arg(format!("busmq:{{{}}}:p:0", q.as_str()))
        .arg("member")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_foreign(
        s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("x")])).await,
        &q,
    );
    still_works(&s).await;
    common::stop(&s).await;
}

/// The fast at-most-once take (lend.lua, LMPOP, giveback.lua) decodes in the client: the
/// foreign entries go to the quarantine, the good ones come out in order, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_busmq_did_not_write_is_moved_aside_and_nothing_is_lost() {
    let Some(srv) = common::server("an_entry_busmq_did_not_write").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("foreign-entry");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("a"), NewEntry::new("b")]))
        .await
        .unwrap();
    inject(&mut raw, q.as_str(), 0, &[GARBAGE, BINARY, DIGITS]).await;
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("c")])).await.unwrap();
    let t = s.take(&q, 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&t.entries), ["a", "b", "c"]);
    assert_details(&t.foreign, q.as_str(), &[GARBAGE, BINARY, DIGITS]);
    assert_eq!(quarantined(&mut raw, q.as_str()).await, [GARBAGE, BINARY, DIGITS]);
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending, stat.quarantined), (0, 0, 3));
    // Reported once: the next take finds nothing.
    assert_eq!(s.take(&q, 10, TakeMode::AtMostOnce).await.unwrap(), Taken::default());
    // The quarantine lives and dies with the queue.
    let ttl: i64 =
        redis::cmd("PTTL").arg(quarantine_key(q.as_str())).query_async(&mut raw).await.unwrap();
    assert!(ttl > 0, "the quarantine expires with the queue: {ttl}");
    s.flush(&q).await.unwrap();
    assert_eq!(s.stat(&q).await.unwrap().quarantined, 0);
    inject(&mut raw, q.as_str(), 0, &[GARBAGE]).await;
    let t = s.take(&q, 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(t.foreign.len(), 1);
    s.close(&q, None).await.unwrap();
    assert!(quarantined(&mut raw, q.as_str()).await.is_empty(), "close deletes the quarantine");
    still_works(&s).await;
    common::stop(&s).await;
}

/// take.lua (here: retention by age): the cheap check in the script quarantines what does not
/// start with a digit, the client what passes it but is no busmq header. A foreign entry at the
/// head must not break the binary search of the retention either (every push and take runs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_take_moves_foreign_entries_aside_and_retention_copes_with_them() {
    let Some(srv) = common::server("the_slow_take_moves_foreign_entries_aside").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("foreign-slow");
    let sp = QueueSpec {
        retention: Retention { max_len: None, max_age: Some(Duration::from_secs(3600)) },
        ..spec()
    };
    let att = s.attach(&q, &sp).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &sp, &[NewEntry::new("a")])).await.unwrap();
    inject(&mut raw, q.as_str(), 0, &[GARBAGE]).await;
    let t = s.take(&q, 1, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&t.entries), ["a"]);
    // The foreign entry is now the first of the head page.
    s.push(&q, &PushBatch::new(att.generation, &sp, &[NewEntry::new("b")])).await.unwrap();
    assert_eq!(s.stat(&q).await.unwrap().count, 2);
    let read = s.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["b"]);
    inject(&mut raw, q.as_str(), 0, &[DIGITS]).await;
    s.push(&q, &PushBatch::new(att.generation, &sp, &[NewEntry::new("c")])).await.unwrap();
    let t = s.take(&q, 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&t.entries), ["b", "c"]);
    assert_details(&t.foreign, q.as_str(), &[GARBAGE, DIGITS]);
    assert_eq!(quarantined(&mut raw, q.as_str()).await, [GARBAGE, DIGITS]);
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.quarantined), (0, 2));
    common::stop(&s).await;
}

/// The blocking wait (BLMPOP) pops raw entries too: foreign ones go to the quarantine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_wait_moves_foreign_entries_aside() {
    let Some(srv) = common::server("the_blocking_wait_moves_foreign_entries_aside").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("foreign-wait");
    let att = s.attach(&q, &spec()).await.unwrap();
    let cancel = Notify::new();
    let blocking = s.blocking().expect("a single fixed instance can block");
    let none = Receipt::none();
    let waiting = blocking.take_wait(&q, 10, Duration::from_secs(20), &cancel, &none);
    let inject_when_blocked = async {
        until_blocked(&mut raw).await;
        inject(&mut raw.clone(), q.as_str(), 0, &[GARBAGE, DIGITS]).await;
    };
    let (t, ()) = tokio::join!(waiting, inject_when_blocked);
    let t = t.unwrap();
    assert!(t.entries.is_empty(), "{t:?}");
    assert_details(&t.foreign, q.as_str(), &[GARBAGE, DIGITS]);
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("a")])).await.unwrap();
    let t = blocking.take_wait(&q, 10, Duration::from_secs(20), &cancel, &t.resume).await.unwrap();
    assert_eq!(payloads(&t.entries), ["a"]);
    assert!(t.foreign.is_empty());
    assert_eq!(quarantined(&mut raw, q.as_str()).await, [GARBAGE, DIGITS]);
    assert_eq!(s.stat(&q).await.unwrap().quarantined, 2);
    common::stop(&s).await;
}

/// A reliable take moves pages into batches without looking at them; the client settles the
/// foreign entries of a batch as moved aside, and acks of the good ones delete the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_take_moves_foreign_entries_aside_and_settles_them() {
    let Some(srv) = common::server("a_reliable_take_moves_foreign_entries_aside").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("foreign-reliable");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("a")])).await.unwrap();
    inject(&mut raw, q.as_str(), 0, &[GARBAGE, DIGITS]).await;
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("b")])).await.unwrap();
    let mode = reliable(Duration::from_secs(60));
    let t = s.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&t.entries), ["a", "b"]);
    assert_details(&t.foreign, q.as_str(), &[GARBAGE, DIGITS]);
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending, stat.quarantined), (0, 2, 2));
    let acks: Vec<Settle> = t.entries.iter().map(|e| Settle::of(e, Settlement::Ack)).collect();
    assert_eq!(s.settle(&q, &acks).await.unwrap(), [Settled::Done, Settled::Done]);
    assert_eq!(s.stat(&q).await.unwrap().pending, 0);
    let batches: Vec<String> = redis::cmd("KEYS")
        .arg(format!("busmq:{{{}}}:[bae]:*", q.as_str()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(batches.is_empty(), "a settled batch leaves no keys: {batches:?}");
    assert_eq!(quarantined(&mut raw, q.as_str()).await, [GARBAGE, DIGITS]);
    common::stop(&s).await;
}

/// Bytes that replace an entry of a pending batch: a release of it and the requeue of an expired
/// batch (which every reliable take runs) move them aside instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_entry_in_a_pending_batch_does_not_break_later_takes() {
    let Some(srv) = common::server("a_foreign_entry_in_a_pending_batch").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("foreign-batch");
    let att = s.attach(&q, &spec()).await.unwrap();
    let three = [NewEntry::new("a"), NewEntry::new("b"), NewEntry::new("c")];
    s.push(&q, &PushBatch::new(att.generation, &spec(), &three)).await.unwrap();
    let t = s.take(&q, 10, reliable(Duration::from_millis(300))).await.unwrap();
    assert_eq!(payloads(&t.entries), ["a", "b", "c"]);
    let batches: Vec<String> = redis::cmd("KEYS")
        .arg(format!("busmq:{{{}}}:b:*", q.as_str()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(batches.len(), 1, "{batches:?}");
    for (index, value) in [(0, BINARY), (1, GARBAGE)] {
        let _: () = redis::cmd("LSET")
            .arg(&batches[0])
            .arg(index)
            .arg(value)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let release = Settle::of(&t.entries[0], Settlement::Release);
    assert_eq!(s.settle(&q, &[release]).await.unwrap(), [Settled::Done]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = s.take(&q, 10, reliable(Duration::from_secs(60))).await.unwrap();
    assert_eq!(payloads(&again.entries), ["c"]);
    assert_eq!(again.entries[0].deliveries, 2);
    assert_details(&again.foreign, q.as_str(), &[GARBAGE]);
    assert_eq!(quarantined(&mut raw, q.as_str()).await, [BINARY, GARBAGE]);
    let stat = s.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending, stat.quarantined), (0, 1, 2));
    common::stop(&s).await;
}

/// A replaying read cannot move anything aside: it steps over foreign entries (a read of one
/// still makes progress), names each once (those before the last entry it returns), and the
/// binary searches behind `FromId` / `AfterId` and retention find every id around them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaying_read_steps_over_foreign_entries() {
    let Some(srv) = common::server("a_replaying_read_steps_over_foreign_entries").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("foreign-read");
    let att = s.attach(&q, &spec()).await.unwrap();
    let first =
        s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("a")])).await.unwrap();
    inject(&mut raw, q.as_str(), 0, &[GARBAGE]).await;
    let r = s.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&r.entries), ["a"]);
    assert!(r.foreign.is_empty(), "not named before an entry after it is read: {r:?}");
    assert_eq!(r.last_id, Some(first));
    let r = s.read(&q, Position::AfterId(first), 10).await.unwrap();
    assert!(r.entries.is_empty() && r.foreign.is_empty(), "{r:?}");
    let second =
        s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("b")])).await.unwrap();
    let r = s.read(&q, Position::AfterId(first), 1).await.unwrap();
    assert_eq!(payloads(&r.entries), ["b"]);
    assert_read_details(&r.foreign, q.as_str(), &[GARBAGE]);
    let r = s.read(&q, Position::AfterId(second), 10).await.unwrap();
    assert!(r.entries.is_empty() && r.foreign.is_empty(), "{r:?}");
    let r = s.read(&q, Position::FromId(second), 10).await.unwrap();
    assert_eq!(payloads(&r.entries), ["b"]);

    // Consecutive ids on both sides of a foreign entry are the tightest case for the search
    // (it bounds positions by id differences). Such entries are written by hand into the head
    // page, which may hold any number of entries.
    let q = queue("foreign-search");
    let att = s.attach(&q, &spec()).await.unwrap();
    let a =
        s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("h0")])).await.unwrap();
    let made = |k: u64| format!("{}:0:0:h{k}", a + k).into_bytes();
    let mut values: Vec<Vec<u8>> = (1..=5).map(made).collect();
    values.push(DIGITS.to_vec());
    values.extend((6..=12).map(made));
    values.push(GARBAGE.to_vec());
    values.push(made(13));
    let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    inject(&mut raw, q.as_str(), 0, &values).await;
    let all = s.read(&q, Position::Start, 100).await.unwrap();
    let expected: Vec<String> = (0..=13).map(|k| format!("h{k}")).collect();
    assert_eq!(payloads(&all.entries), expected);
    assert_read_details(&all.foreign, q.as_str(), &[DIGITS, GARBAGE]);
    assert_eq!(all.last_id, Some(a + 13));
    for k in 0..=13 {
        let from = s.read(&q, Position::FromId(a + k), 1).await.unwrap();
        assert_eq!(payloads(&from.entries), [format!("h{k}")], "FromId(a + {k})");
        let after = s.read(&q, Position::AfterId(a + k), 1).await.unwrap();
        let next: Vec<String> = (k < 13).then(|| format!("h{}", k + 1)).into_iter().collect();
        assert_eq!(payloads(&after.entries), next, "AfterId(a + {k})");
    }
    common::stop(&s).await;
}

/// Returns once a client of the server is blocked (a `BLMPOP`), or after 5 s.
async fn until_blocked(conn: &mut MultiplexedConnection) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let info: String = redis::cmd("INFO").arg("clients").query_async(conn).await.unwrap();
        let blocked = info
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if blocked > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---- Through the public API: a consumer on the queue, its event stream and stat. ----

async fn bus(srv: &RedisServer) -> Bus {
    let store = common::builder([srv.url()]).page_size(8).build().expect("valid options");
    let bus = Bus::new(store);
    bus.connect().await.expect("connect");
    bus.wait_online(common::DEADLINE).await.expect("online");
    bus
}

/// The next `n` bodies, acknowledging reliable deliveries, within [`SOON`].
async fn receive(consumer: &mut busmq_core::Consumer<u32>, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    let all = async {
        while got.len() < n {
            let d = consumer.next().await.expect("consumer ended").expect("decodes");
            got.push(*d.body());
            d.ack().await.expect("ack");
        }
    };
    if tokio::time::timeout(SOON, all).await.is_err() {
        panic!("only {} of {n} messages arrived within {SOON:?}: {got:?}", got.len());
    }
    got
}

/// The `ForeignData` details the queue reports until it has been quiet for a second.
async fn foreign_events(events: &mut EventStream<QueueEvent>, q: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(1), events.next()).await {
        match event {
            QueueEvent::Error(Error::ForeignData { queue, detail }) => {
                assert_eq!(queue, q);
                out.push(detail);
            }
            QueueEvent::Error(other) => panic!("unexpected error event: {other}"),
            _ => {}
        }
    }
    out
}

/// Checks what a consumer left behind: one event per injected value, the quarantine, stat.
async fn check_reported(
    queue: &Queue,
    events: &mut EventStream<QueueEvent>,
    raw: &mut MultiplexedConnection,
    values: &[&[u8]],
) {
    let q = queue.name();
    assert_details(&foreign_events(events, q).await, q, values);
    let stat = queue.stat().await.unwrap();
    assert_eq!((stat.count, stat.quarantined), (0, values.len() as u64));
    assert_eq!(quarantined(raw, q).await, values);
}

/// Push 1, foreign bytes, push 2, then consume: the consumer's first take is a plain take (the
/// fast at-most-once take, or take.lua with retention by age, or a reliable claim).
async fn consume_past_foreign(name: &str, attach: AttachOptions, options: ConsumeOptions) {
    let Some(srv) = common::server(name).await else {
        return;
    };
    let bus = bus(&srv).await;
    let mut raw = common::raw(&srv).await;
    let queue = bus.queue(queue(name).as_str()).unwrap();
    queue.attach_with(attach).await.unwrap();
    let mut events = queue.events();
    queue.push(&1u32).await.unwrap();
    inject(&mut raw, queue.name(), 0, &[GARBAGE, DIGITS]).await;
    queue.push(&2u32).await.unwrap();
    let mut consumer = queue.consume_with::<u32>(options).await.unwrap();
    assert_eq!(receive(&mut consumer, 2).await, [1, 2]);
    check_reported(&queue, &mut events, &mut raw, &[GARBAGE, DIGITS]).await;
    queue.push(&3u32).await.unwrap();
    assert_eq!(receive(&mut consumer, 1).await, [3]);
    consumer.stop().await;
    bus.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_most_once_consumer_gets_past_foreign_entries() {
    consume_past_foreign("amo-past-foreign", AttachOptions::new(), ConsumeOptions::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_a_queue_with_retention_by_age_gets_past_foreign_entries() {
    let attach = AttachOptions::new().retain_for(Duration::from_secs(3600));
    consume_past_foreign("age-past-foreign", attach, ConsumeOptions::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_consumer_gets_past_foreign_entries() {
    let options = ConsumeOptions::new().reliable(ReliableOptions::default());
    consume_past_foreign("reliable-past-foreign", AttachOptions::new(), options).await;
}

/// The consumer is idle, blocked in Redis (BLMPOP), when the foreign bytes and the next push
/// arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_consumer_gets_past_foreign_entries() {
    let Some(srv) = common::server("a_waiting_consumer_gets_past_foreign_entries").await else {
        return;
    };
    let bus = bus(&srv).await;
    let mut raw = common::raw(&srv).await;
    let queue = bus.queue(queue("wait-past-foreign").as_str()).unwrap();
    queue.attach().await.unwrap();
    let mut events = queue.events();
    let mut consumer = queue.consume::<u32>().await.unwrap();
    until_blocked(&mut raw).await;
    queue.push(&1u32).await.unwrap();
    assert_eq!(receive(&mut consumer, 1).await, [1]);
    until_blocked(&mut raw).await;
    inject(&mut raw, queue.name(), 0, &[GARBAGE, DIGITS]).await;
    queue.push(&2u32).await.unwrap();
    assert_eq!(receive(&mut consumer, 1).await, [2]);
    check_reported(&queue, &mut events, &mut raw, &[GARBAGE, DIGITS]).await;
    consumer.stop().await;
    bus.disconnect().await.unwrap();
}

/// A replaying consumer reads past foreign entries and reports each once; they stay put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaying_consumer_reads_past_foreign_entries() {
    let Some(srv) = common::server("a_replaying_consumer_reads_past_foreign_entries").await else {
        return;
    };
    let bus = bus(&srv).await;
    let mut raw = common::raw(&srv).await;
    let queue = bus.queue(queue("replay-past-foreign").as_str()).unwrap();
    queue.attach().await.unwrap();
    let mut events = queue.events();
    queue.push(&1u32).await.unwrap();
    inject(&mut raw, queue.name(), 0, &[GARBAGE]).await;
    queue.push(&2u32).await.unwrap();
    let options = ConsumeOptions::new().replay(Position::Start).prefetch(1);
    let mut consumer = queue.consume_with::<u32>(options).await.unwrap();
    assert_eq!(receive(&mut consumer, 2).await, [1, 2]);
    queue.push(&3u32).await.unwrap();
    assert_eq!(receive(&mut consumer, 1).await, [3]);
    let q = queue.name();
    assert_read_details(&foreign_events(&mut events, q).await, q, &[GARBAGE]);
    assert_eq!(queue.stat().await.unwrap().quarantined, 0);
    consumer.stop().await;
    bus.disconnect().await.unwrap();
}
