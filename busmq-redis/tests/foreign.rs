//! Data that busmq did not write (SPEC E3): a wrong key type or a foreign entry is a typed
//! error for that queue only; other queues keep working.

mod common;

use busmq_core::store::{ClientId, ConsumerId, NewEntry, Position, TakeMode};
use busmq_core::{Error, QueueName, Store};
use busmq_redis::RedisStore;
use common::{queue, spec};

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

async fn still_works(s: &RedisStore) {
    let q = queue("healthy");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &[NewEntry::new("fine")]).await.unwrap();
    let c = ConsumerId::new(&ClientId::random(), 1);
    assert_eq!(s.take(&q, &c, 5, TakeMode::AtMostOnce).await.unwrap().entries.len(), 1);
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
    assert_foreign(s.push(&q, 1, &spec(), &[NewEntry::new("x")]).await, &q);
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
    assert_foreign(s.push(&q, att.generation, &spec(), &[NewEntry::new("x")]).await, &q);
    still_works(&s).await;
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_busmq_did_not_write_is_foreign_data_and_nothing_is_lost() {
    let Some(srv) = common::server("an_entry_busmq_did_not_write").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("foreign-entry");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, att.generation, &spec(), &[NewEntry::new("a"), NewEntry::new("b")]).await.unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(format!("busmq:{{{}}}:p:0", q.as_str()))
        .arg("hello from redis-cli")
        .query_async(&mut raw)
        .await
        .unwrap();
    let c = ConsumerId::new(&ClientId::random(), 1);
    assert_foreign(s.take(&q, &c, 10, TakeMode::AtMostOnce).await, &q);
    assert_foreign(s.read(&q, Position::Start, 10).await, &q);
    // The failed take removed nothing: the good entries before the foreign one are intact.
    let t = s.take(&q, &c, 2, TakeMode::AtMostOnce).await.unwrap();
    let got: Vec<&[u8]> = t.entries.iter().map(|e| &e.payload[..]).collect();
    assert_eq!(got, [&b"a"[..], b"b"]);
    still_works(&s).await;
    common::stop(&s).await;
}
