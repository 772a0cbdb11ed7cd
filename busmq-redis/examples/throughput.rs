//! Push/take throughput of busmq against raw list commands over the same kind of
//! connection: `LPUSH` of 100 values then `LPOP key 100`, versus busmq's push of a 100-entry
//! batch then take of up to 100, with several concurrent workers sharing one multiplexed
//! connection (so requests pipeline).
//!
//! Run: `cargo run --release -p busmq-redis --example throughput [messages per config]`
#![allow(clippy::print_stdout)]

use busmq_core::store::{ClientId, ConsumerId, NewEntry, QueueSpec, TakeMode};
use busmq_core::{QueueName, Store};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 100;

async fn raw(url: &str, workers: usize, rounds: usize, payload: &[u8]) -> f64 {
    let client = redis::Client::open(url).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut conn = conn.clone();
        let values: Vec<Vec<u8>> = vec![payload.to_vec(); BATCH];
        tasks.push(tokio::spawn(async move {
            let key = format!("raw:{w}");
            for _ in 0..rounds {
                redis::cmd("LPUSH")
                    .arg(&key)
                    .arg(&values)
                    .query_async::<i64>(&mut conn)
                    .await
                    .unwrap();
                let got: Vec<Vec<u8>> =
                    redis::cmd("LPOP").arg(&key).arg(BATCH).query_async(&mut conn).await.unwrap();
                assert_eq!(got.len(), BATCH);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (workers * rounds * BATCH) as f64 / started.elapsed().as_secs_f64()
}

async fn busmq(store: &Arc<RedisStore>, workers: usize, rounds: usize, payload: &[u8]) -> f64 {
    let spec = QueueSpec::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = Arc::clone(store);
        let entries: Vec<NewEntry> = (0..BATCH).map(|_| NewEntry::new(payload.to_vec())).collect();
        tasks.push(tokio::spawn(async move {
            let q =
                QueueName::new(format!("tp-{w}-{}", busmq_core::support::random_u64())).unwrap();
            let att = store.attach(&q, &spec).await.unwrap();
            let consumer = ConsumerId::new(&ClientId::random(), w as u64);
            for _ in 0..rounds {
                store.push(&q, att.generation, &spec, &entries).await.unwrap();
                let t =
                    store.take(&q, &consumer, BATCH as u32, TakeMode::AtMostOnce).await.unwrap();
                assert_eq!(t.entries.len(), BATCH);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (workers * rounds * BATCH) as f64 / started.elapsed().as_secs_f64()
}

async fn reliable(store: &Arc<RedisStore>, workers: usize, rounds: usize, payload: &[u8]) -> f64 {
    use busmq_core::store::Settle;
    use std::time::Duration;
    let spec = QueueSpec::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = Arc::clone(store);
        let entries: Vec<NewEntry> = (0..BATCH).map(|_| NewEntry::new(payload.to_vec())).collect();
        tasks.push(tokio::spawn(async move {
            let q =
                QueueName::new(format!("rl-{w}-{}", busmq_core::support::random_u64())).unwrap();
            let att = store.attach(&q, &spec).await.unwrap();
            let consumer = ConsumerId::new(&ClientId::random(), w as u64);
            let mode =
                TakeMode::Reliable { visibility: Duration::from_secs(30), max_deliveries: 5 };
            for _ in 0..rounds {
                store.push(&q, att.generation, &spec, &entries).await.unwrap();
                let t = store.take(&q, &consumer, BATCH as u32, mode).await.unwrap();
                let acks: Vec<Settle> = t
                    .entries
                    .iter()
                    .map(|e| Settle::Ack { id: e.id, delivery: e.deliveries })
                    .collect();
                store.settle(&q, &acks).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (workers * rounds * BATCH) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(400_000);
    let server = RedisServer::start().await.expect("redis-server");
    let store = Arc::new(RedisStore::open(server.url()).unwrap());
    store.connect().await.unwrap();
    let payload = vec![b'x'; 100];
    println!("100-byte messages, batches of {BATCH}, {total} messages per measurement");
    for workers in [1, 4, 16] {
        let rounds = total / workers / BATCH;
        let r = raw(&server.url(), workers, rounds, &payload).await;
        let b = busmq(&store, workers, rounds, &payload).await;
        let l = reliable(&store, workers, rounds, &payload).await;
        println!(
            "{workers:>2} workers: raw LPUSH+LPOP {r:>9.0} msg/s | busmq push+take {b:>9.0} msg/s ({:.2}x) | reliable push+take+ack {l:>9.0} msg/s ({:.2}x)",
            b / r,
            l / r
        );
    }
    if std::env::var_os("SHOW_COMMANDSTATS").is_some() {
        let client = redis::Client::open(server.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let info: String =
            redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
        println!("{info}");
    }
    store.disconnect().await.unwrap();
}
