//! Memory and replay cost: Redis `used_memory` per queued 100-byte message (busmq queue
//! against a raw list of the same values), and the server-side cost of a replay read of 100
//! entries at position 0 against position 1,000,000 (by index and by id).
//!
//! Run: `cargo run --release -p busmq-redis --example footprint [messages]`
#![allow(clippy::print_stdout)]

use busmq_core::store::{NewEntry, Position, QueueSpec};
use busmq_core::{QueueName, Store};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use redis::aio::MultiplexedConnection;
use std::time::Instant;

async fn used_memory(conn: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let total: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_100_000);
    let server = RedisServer::start().await.expect("redis-server");
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let store = RedisStore::open(server.url()).unwrap();
    store.connect().await.unwrap();
    let payload = vec![b'x'; 100];

    let before = used_memory(&mut raw).await;
    let values: Vec<Vec<u8>> = vec![payload.clone(); 1000];
    for _ in 0..total / 1000 {
        redis::cmd("RPUSH").arg("raw").arg(&values).query_async::<i64>(&mut raw).await.unwrap();
    }
    let raw_bytes = used_memory(&mut raw).await - before;
    let _: () = redis::cmd("DEL").arg("raw").query_async(&mut raw).await.unwrap();

    let spec = QueueSpec::default();
    let q = QueueName::new("footprint").unwrap();
    let before = used_memory(&mut raw).await;
    let att = store.attach(&q, &spec).await.unwrap();
    let entries: Vec<NewEntry> = (0..1000).map(|_| NewEntry::new(payload.clone())).collect();
    for _ in 0..total / 1000 {
        store.push(&q, att.generation, &spec, &entries).await.unwrap();
    }
    let busmq_bytes = used_memory(&mut raw).await - before;
    let n = (total / 1000 * 1000) as f64;
    println!(
        "used_memory per 100-byte message: raw list {:.1} B, busmq queue {:.1} B ({:.2}x)",
        raw_bytes as f64 / n,
        busmq_bytes as f64 / n,
        busmq_bytes as f64 / raw_bytes as f64
    );

    // Replay cost by position: client-side round trip and server-side script time.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .query_async(&mut raw)
        .await
        .unwrap();
    let deep = total.saturating_sub(100_000).min(1_000_000);
    let id_at = |pos: u64| {
        let store = store.clone();
        let q = q.clone();
        async move { store.read(&q, Position::Index(pos), 1).await.unwrap().entries[0].id }
    };
    let deep_id = id_at(deep).await;
    let first_id = id_at(0).await;
    for (name, from) in [
        ("index 0".to_string(), Position::Index(0)),
        (format!("index {deep}"), Position::Index(deep)),
        ("from id (position 0)".to_string(), Position::FromId(first_id)),
        (format!("from id (position {deep})"), Position::FromId(deep_id)),
    ] {
        let rounds = 300;
        let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut raw).await.unwrap();
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut raw).await.unwrap();
        let started = Instant::now();
        for _ in 0..rounds {
            let b = store.read(&q, from, 100).await.unwrap();
            assert_eq!(b.entries.len(), 100);
        }
        let client_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        let log: Vec<redis::Value> =
            redis::cmd("SLOWLOG").arg("GET").arg(-1).query_async(&mut raw).await.unwrap();
        let server: Vec<i64> = log
            .iter()
            .filter_map(|e| match e {
                redis::Value::Array(f) => match (f.get(2), f.get(3)) {
                    (Some(redis::Value::Int(us)), Some(redis::Value::Array(args)))
                        if matches!(args.first(), Some(redis::Value::BulkString(c)) if c == b"EVALSHA") =>
                    {
                        Some(*us)
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        let server_us = server.iter().sum::<i64>() as f64 / server.len().max(1) as f64;
        println!(
            "read 100 at {name:<28} round trip {client_us:>7.1} us, server {server_us:>6.1} us"
        );
        if std::env::var_os("SHOW_COMMANDSTATS").is_some() {
            let info: String =
                redis::cmd("INFO").arg("commandstats").query_async(&mut raw).await.unwrap();
            for line in info.lines().filter(|l| l.starts_with("cmdstat_l")) {
                println!("    {line}");
            }
        }
    }
    store.disconnect().await.unwrap();
}
