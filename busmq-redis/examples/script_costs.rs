//! Server-side cost of each busmq script call (from SLOWLOG with a zero threshold), for a
//! loop of 100-entry pushes, takes (at-most-once and reliable) and acknowledgements, next to
//! the raw list commands they replace.
//!
//! Run: `cargo run --release -p busmq-redis --example script_costs [rounds]`
#![allow(clippy::print_stdout)]

use busmq_core::store::{ClientId, ConsumerId, NewEntry, QueueSpec, Settle, TakeMode};
use busmq_core::{QueueName, Store};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use redis::Value;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let server = RedisServer::builder()
        .config("slowlog-log-slower-than 0")
        .config("slowlog-max-len 1000000")
        .start()
        .await
        .expect("redis-server");
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let store = RedisStore::open(server.url()).unwrap();
    store.connect().await.unwrap();
    let spec = QueueSpec::default();
    let payload = vec![b'x'; 100];
    let entries: Vec<NewEntry> = (0..100).map(|_| NewEntry::new(payload.clone())).collect();
    let values: Vec<Vec<u8>> = vec![payload.clone(); 100];
    let q = QueueName::new("costs").unwrap();
    let att = store.attach(&q, &spec).await.unwrap();
    let consumer = ConsumerId::new(&ClientId::random(), 1);
    let mode = TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 5 };
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut raw).await.unwrap();
    for _ in 0..rounds {
        redis::cmd("LPUSH").arg("raw").arg(&values).query_async::<i64>(&mut raw).await.unwrap();
        redis::cmd("LPOP").arg("raw").arg(100).query_async::<Vec<Vec<u8>>>(&mut raw).await.unwrap();
        store.push(&q, att.generation, &spec, &entries).await.unwrap();
        store.take(&q, &consumer, 100, TakeMode::AtMostOnce).await.unwrap();
        store.push(&q, att.generation, &spec, &entries).await.unwrap();
        let t = store.take(&q, &consumer, 100, mode).await.unwrap();
        let acks: Vec<Settle> =
            t.entries.iter().map(|e| Settle::Ack { id: e.id, delivery: e.deliveries }).collect();
        store.settle(&q, &acks).await.unwrap();
    }
    let log: Vec<Value> =
        redis::cmd("SLOWLOG").arg("GET").arg(-1).query_async(&mut raw).await.unwrap();
    let mut sums: HashMap<String, (u64, u64)> = HashMap::new();
    for entry in log {
        let Value::Array(fields) = entry else {
            continue;
        };
        let (Some(Value::Int(us)), Some(Value::Array(args))) = (fields.get(2), fields.get(3))
        else {
            continue;
        };
        let text: Vec<String> = args
            .iter()
            .map(|a| match a {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            })
            .collect();
        let name = match text.first().map(String::as_str) {
            Some("EVALSHA") => {
                // EVALSHA sha 6 <six keys> ARGV...: ARGV[1] is at 9, ARGV[2] at 10.
                let arg = |i: usize| text.get(i).map(String::as_str).unwrap_or("");
                let kind = if arg(9).starts_with("busmq:") {
                    "settle (100 acks)"
                } else if arg(10) == "a" {
                    "take (at most once)"
                } else if arg(10) == "r" {
                    "take (reliable)"
                } else {
                    "push (100 entries)"
                };
                kind.to_string()
            }
            Some("LPUSH") => "raw LPUSH 100".to_string(),
            Some("LPOP") => "raw LPOP 100".to_string(),
            _ => continue,
        };
        let e = sums.entry(name).or_default();
        e.0 += 1;
        e.1 += *us as u64;
    }
    let mut rows: Vec<_> = sums.into_iter().collect();
    rows.sort();
    for (name, (n, us)) in rows {
        println!(
            "{name:<24} {n:>6} calls  {:>7.1} us per call (server side)",
            us as f64 / n as f64
        );
    }
    if std::env::var_os("SHOW_COMMANDSTATS").is_some() {
        let info: String =
            redis::cmd("INFO").arg("commandstats").query_async(&mut raw).await.unwrap();
        println!("{info}");
    }
    store.disconnect().await.unwrap();
}
