//! Message headers in the Redis entry encoding (SPEC P6): a message without headers is stored
//! byte for byte as before headers existed, headers go into the entry's attrs, and attrs whose
//! headers busmq would not have written are foreign data (SPEC E3), moved aside like any other
//! foreign entry on every take path and stepped over by reads.

mod common;

use busmq_core::store::{NewEntry, Position, PushBatch, TakeMode};
use busmq_core::{Headers, Store};
use common::{queue, spec};
use redis::aio::MultiplexedConnection;
use std::time::Duration;

async fn page(raw: &mut MultiplexedConnection, q: &str) -> Vec<Vec<u8>> {
    redis::cmd("LRANGE")
        .arg(format!("busmq:{{{q}}}:p:0"))
        .arg(0)
        .arg(-1)
        .query_async(raw)
        .await
        .unwrap()
}

/// An entry as busmq writes it, with `attrs` as given.
fn entry(id: u64, attrs: &str, payload: &str) -> Vec<u8> {
    format!("{id}:0:{}:{attrs}{payload}", attrs.len()).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_cost_nothing_where_absent_and_live_in_the_attrs_otherwise() {
    let Some(srv) = common::server("headers_cost_nothing_where_absent").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("headers-encoding");
    let generation = s.attach(&q, &spec()).await.unwrap().generation;
    let headers = Headers::new().with("tenant", "acme").with("n", "1");
    let batch = [NewEntry::new("plain"), NewEntry::new("with").with_headers(headers)];
    let first = s.push(&q, &PushBatch::new(generation, &spec(), &batch)).await.unwrap();
    let stored = page(&mut raw, q.as_str()).await;
    assert_eq!(stored[0], entry(first, "", "plain"), "exactly the pre-headers encoding");
    assert_eq!(stored[1], entry(first + 1, r#"{"h":{"tenant":"acme","n":"1"}}"#, "with"));
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_header_attrs_are_foreign_data_on_every_path() {
    let Some(srv) = common::server("malformed_header_attrs_are_foreign_data").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let bad = [
        entry(5, r#"{"h":{"":"empty key"}}"#, "x"),
        entry(6, r#"{"h":{"k":7}}"#, "x"),
        entry(7, r#"{"h":{"k":"1","k":"2"}}"#, "x"),
    ];
    let modes = [
        TakeMode::AtMostOnce,
        TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 5 },
    ];
    for mode in modes {
        let q = queue("headers-foreign");
        let generation = s.attach(&q, &spec()).await.unwrap().generation;
        let good =
            |body: &'static str| [NewEntry::new(body).with_headers(Headers::new().with("k", body))];
        s.push(&q, &PushBatch::new(generation, &spec(), &good("a"))).await.unwrap();
        let _: () = redis::cmd("RPUSH")
            .arg(format!("busmq:{{{}}}:p:0", q.as_str()))
            .arg(&bad[..])
            .query_async(&mut raw)
            .await
            .unwrap();
        s.push(&q, &PushBatch::new(generation, &spec(), &good("b"))).await.unwrap();
        let read = s.read(&q, Position::Start, 10).await.unwrap();
        assert_eq!((read.entries.len(), read.foreign.len()), (2, 3), "a read steps over them");
        let taken = s.take(&q, 10, mode).await.unwrap();
        let headers: Vec<_> = taken.entries.iter().map(|e| e.headers.as_deref().cloned()).collect();
        let want = ["a", "b"].map(|v| Some(Headers::new().with("k", v)));
        assert_eq!(headers, want, "{mode:?}");
        assert_eq!(taken.foreign.len(), 3, "{mode:?}: {:?}", taken.foreign);
        assert!(
            taken.foreign.iter().all(|d| d.contains("busmq attributes")),
            "{:?}",
            taken.foreign
        );
        assert_eq!(s.stat(&q).await.unwrap().quarantined, 3, "{mode:?}: moved aside");
    }
    common::stop(&s).await;
}
