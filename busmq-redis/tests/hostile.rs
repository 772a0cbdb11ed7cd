//! Hostile data in Redis beyond `foreign.rs`'s foreign entries (SPEC E3, S4): entry headers
//! with numbers past every integer type (a 2^60 attribute length must not allocate), truncated
//! and oversized values, a meta hash with garbage or huge counters, a corrupted pending batch,
//! and a persisted object with a field that is not JSON. Each is a typed error (or a quarantined
//! entry) for that queue or object only, within a deadline, and the other queues on the same
//! server keep working.

mod common;

use busmq_core::store::{NewEntry, ObjectOp, PushBatch, Settle, Settlement, Store, TakeMode};
use busmq_core::{Bus, Error, ObjectName};
use busmq_redis::RedisStore;
use common::{DEADLINE, queue, spec};
use redis::aio::MultiplexedConnection;
use std::time::Duration;

/// Runs a store call within [`DEADLINE`]: a hostile value must not make a call hang.
async fn soon<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, call).await.unwrap_or_else(|_| panic!("{what} hung"))
}

/// An error that names the data as not busmq's: `ForeignData` for the queue, or a
/// non-retryable store error that says the reply was unexpected.
fn assert_typed<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    match result {
        Err(Error::ForeignData { .. }) => {}
        Err(Error::Store { retryable: false, .. }) => {}
        other => panic!("{what}: expected a typed error, got {other:?}"),
    }
}

async fn still_works(s: &RedisStore) {
    let q = queue("healthy");
    let att = soon("attach", s.attach(&q, &spec())).await.unwrap();
    let batch = [NewEntry::new("fine")];
    soon("push", s.push(&q, &PushBatch::new(att.generation, &spec(), &batch))).await.unwrap();
    let taken = soon("take", s.take(&q, 5, TakeMode::AtMostOnce)).await.unwrap();
    assert_eq!(taken.entries.len(), 1);
}

async fn cmd(raw: &mut MultiplexedConnection, args: &[&[u8]]) -> redis::Value {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for arg in &args[1..] {
        c.arg(*arg);
    }
    c.query_async(raw).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_headers_past_every_integer_type_are_quarantined_without_allocating() {
    let Some(srv) = common::server("entry_headers_past_every_integer_type").await else { return };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("huge-header");
    let att = s.attach(&q, &spec()).await.unwrap();
    let hostile: Vec<Vec<u8>> = vec![
        // An attribute length of 2^60: a decoder that allocated it would abort the process.
        b"12:0:1152921504606846976:{}".to_vec(),
        format!("12:0:{}:x", u64::MAX).into_bytes(),
        format!("12:0:{}0:x", usize::MAX).into_bytes(),
        b"99999999999999999999999:0:0:x".to_vec(),
        b"12:4294967296:0:x".to_vec(),
        b"12:0:99:truncated".to_vec(),
        b"12:0:".to_vec(),
        b"".to_vec(),
    ];
    let page = format!("busmq:{{{}}}:p:0", q.as_str());
    for value in &hostile {
        cmd(&mut raw, &[b"RPUSH", page.as_bytes(), value]).await;
    }
    // A value over the default message limit (8 MiB) with a valid header: busmq would not
    // have written it, but it is a whole entry, delivered as it is.
    let mut big = b"13:0:0:".to_vec();
    big.resize(9 << 20, b'b');
    cmd(&mut raw, &[b"RPUSH", page.as_bytes(), &big]).await;
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("after")])).await.unwrap();

    let mut entries = Vec::new();
    let mut reported = Vec::new();
    for _ in 0..20 {
        let taken = soon("take", s.take(&q, 100, TakeMode::AtMostOnce)).await.unwrap();
        reported.extend(taken.foreign.clone());
        let empty = taken.entries.is_empty() && taken.foreign.is_empty();
        entries.extend(taken.entries);
        if empty {
            break;
        }
    }
    let sizes: Vec<usize> = entries.iter().map(|e| e.payload.len()).collect();
    assert_eq!(sizes, vec![(9 << 20) - 7, 5], "the big entry, then the pushed one");
    assert_eq!(reported.len(), hostile.len(), "{reported:#?}");
    still_works(&s).await;
    common::stop(&s).await;
}

/// The meta hash's counters, one at a time, as text, negative, fractional and far past any
/// queue's size (a page size of 1 with a tail of 10^15 would make a page walk endless).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_huge_counters_in_the_meta_hash_are_typed_errors_for_that_queue() {
    let Some(srv) = common::server("garbage_and_huge_counters_in_the_meta_hash").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let cases: &[&[(&str, &str)]] = &[
        &[("gen", "abc")],
        &[("tail", "-5")],
        &[("size", "0")],
        &[("size", "1.5")],
        &[("head", "1e400")],
        &[("n", "18446744073709551616")],
        &[("size", "1"), ("tail", "1000000000000000")],
        &[("size", "1"), ("head", "0"), ("tail", "1000000000000000"), ("n", "1000000000000000")],
        &[("last", "99999999999999999999999999")],
        &[("ttl", "-1")],
    ];
    for fields in cases {
        let q = queue("meta");
        let att = s.attach(&q, &spec()).await.unwrap();
        s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("x")])).await.unwrap();
        let meta = format!("busmq:{{{}}}:m", q.as_str());
        for (field, value) in *fields {
            cmd(&mut raw, &[b"HSET", meta.as_bytes(), field.as_bytes(), value.as_bytes()]).await;
        }
        let what = format!("{fields:?}");
        // Whatever each call makes of it, it answers within the deadline, with no panic; the
        // reads of a broken count are typed errors or plain answers.
        let stat = soon(&what, s.stat(&q)).await;
        let take = soon(&what, s.take(&q, 10, TakeMode::AtMostOnce)).await;
        let push = soon(
            &what,
            s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("y")])),
        )
        .await;
        for (call, result) in
            [("stat", stat.map(|_| ())), ("take", take.map(|_| ())), ("push", push.map(|_| ()))]
        {
            if let Err(error) = result {
                assert_typed(&format!("{what}: {call}"), Err::<(), _>(error));
            }
        }
        still_works(&s).await;
    }
    common::stop(&s).await;
}

/// A pending batch whose keys were overwritten: its unsettled count, its entries list and its
/// settled bitmap. Settling and the next takes answer typed errors or settle, never hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_pending_batch_is_a_typed_error_for_that_queue_only() {
    let Some(srv) = common::server("a_corrupted_pending_batch").await else { return };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let reliable = TakeMode::Reliable { visibility: Duration::from_millis(300), max_deliveries: 5 };
    for corruption in ["count", "count-huge", "entries", "bitmap", "deadlines", "zset"] {
        let q = queue("batch");
        let att = s.attach(&q, &spec()).await.unwrap();
        let batch = [NewEntry::new("a"), NewEntry::new("b")];
        s.push(&q, &PushBatch::new(att.generation, &spec(), &batch)).await.unwrap();
        let taken = s.take(&q, 10, reliable).await.unwrap();
        assert_eq!(taken.entries.len(), 2);
        let name = taken.entries[0].receipt.token().expect("a reliable receipt").to_string();
        let tag = format!("busmq:{{{}}}", q.as_str());
        let (x, b, a, e, z) = (
            format!("{tag}:x"),
            format!("{tag}:b:{name}"),
            format!("{tag}:a:{name}"),
            format!("{tag}:e:{name}"),
            format!("{tag}:z"),
        );
        match corruption {
            "count" => cmd(&mut raw, &[b"HSET", x.as_bytes(), name.as_bytes(), b"many"]).await,
            "count-huge" => {
                cmd(&mut raw, &[b"HSET", x.as_bytes(), name.as_bytes(), b"1152921504606846976"])
                    .await
            }
            "entries" => {
                cmd(&mut raw, &[b"DEL", b.as_bytes()]).await;
                cmd(&mut raw, &[b"SET", b.as_bytes(), b"not a list"]).await
            }
            "bitmap" => cmd(&mut raw, &[b"HSET", a.as_bytes(), b"f", b"v"]).await,
            "deadlines" => cmd(&mut raw, &[b"SET", e.as_bytes(), b"not a hash"]).await,
            _ => cmd(&mut raw, &[b"ZADD", z.as_bytes(), b"1", b"no-such-batch.1.1"]).await,
        };
        let settles: Vec<Settle> =
            taken.entries.iter().map(|e| Settle::of(e, Settlement::Ack)).collect();
        let what = format!("{corruption}: settle");
        if let Err(error) = soon(&what, s.settle(&q, &settles)).await {
            assert_typed(&what, Err::<(), _>(error));
        }
        // Past the visibility deadline, the next reliable take requeues expired batches.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let what = format!("{corruption}: take");
        if let Err(error) = soon(&what, s.take(&q, 10, reliable)).await {
            assert_typed(&what, Err::<(), _>(error));
        }
        if let Err(error) = soon(&what, s.stat(&q)).await {
            assert_typed(&what, Err::<(), _>(error));
        }
        still_works(&s).await;
    }
    common::stop(&s).await;
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Doc {
    name: String,
    count: u32,
}

/// A persisted object's fields hash holding a value that is not JSON, a field of the wrong
/// type, a version that is no number, and keys of the wrong type: a typed error for that
/// object; the next object works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_object_field_is_a_typed_error_for_that_object() {
    let Some(srv) = common::server("a_garbage_object_field").await else { return };
    let bus = Bus::new(common::store(&[&srv]).await);
    bus.connect().await.unwrap();
    let mut raw = common::raw(&srv).await;
    let corruptions: &[(&str, &[&[u8]])] = &[
        ("not JSON", &[b"HSET", b"{key}", b"count", b"\xff{not json"]),
        ("wrong type", &[b"HSET", b"{key}", b"count", b"\"seven\""]),
        ("huge number", &[b"HSET", b"{key}", b"count", b"1152921504606846976"]),
        ("version", &[b"SET", b"{key}:v", b"not a version"]),
        ("fields key", &[b"SET", b"{key}", b"a string"]),
        ("version key", &[b"HSET", b"{key}:v", b"f", b"v"]),
    ];
    for (what, corruption) in corruptions {
        let name = format!("obj-{}", busmq_core::support::random_u64());
        let handle = bus.persisted::<Doc>(&name).unwrap();
        soon(what, handle.save(&Doc { name: "a".into(), count: 1 })).await.unwrap();
        let key = format!("busmq:o:{{{name}}}");
        let args: Vec<Vec<u8>> = corruption
            .iter()
            .map(|a| a.to_vec())
            .map(|a| if a.starts_with(b"{key}") { [key.as_bytes(), &a[5..]].concat() } else { a })
            .collect();
        if args[0] == b"SET" || *what == "version key" {
            cmd(&mut raw, &[b"DEL", &args[1]]).await;
        }
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        cmd(&mut raw, &refs).await;
        match soon(what, handle.load()).await {
            Err(
                Error::Decode { .. }
                | Error::ForeignData { .. }
                | Error::Store { retryable: false, .. },
            ) => {}
            other => panic!("{what}: expected a typed error, got {other:?}"),
        }
        // The store call itself, for the raw reply path.
        let object = ObjectName::new(&name).unwrap();
        let _ = soon(what, bus_store_object(&srv, &object)).await;
        let other = bus.persisted::<Doc>(format!("{name}-other")).unwrap();
        soon(what, other.save(&Doc { name: "b".into(), count: 2 })).await.unwrap();
        assert_eq!(soon(what, other.load()).await.unwrap().unwrap().value.count, 2);
    }
}

async fn bus_store_object(srv: &busmq_testkit::redis::RedisServer, object: &ObjectName) {
    let s = common::store(&[srv]).await;
    if let Err(error) = s.object(object, ObjectOp::Load).await {
        assert_typed("object load", Err::<(), _>(error));
    }
    common::stop(&s).await;
}
