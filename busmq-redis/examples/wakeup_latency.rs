//! Measures how fast a waiting consumer learns of a new message: busmq's pub/sub notice
//! (push script publishes, the watcher wakes and takes) against a blocking pop (BLPOP) on a
//! dedicated pooled connection, and a raw PUBLISH for reference.
//!
//! Run: `cargo run --release -p busmq-redis --example wakeup_latency [rounds]`
//! (starts its own redis-server through busmq-testkit's harness).
#![allow(clippy::print_stdout)]

use bb8_redis::bb8;
use busmq_core::store::{ClientId, ConsumerId, NewEntry, QueueSpec, TakeMode};
use busmq_core::{QueueName, Store};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use futures::StreamExt;
use redis::AsyncConnectionConfig;
use std::time::{Duration, Instant};

/// Connections for blocking commands: built WITHOUT the redis crate's default 500 ms response
/// timeout, so a BLPOP that blocks longer is not abandoned by the client while the server
/// still holds it (and later hands it a message nobody receives).
#[derive(Debug, Clone)]
struct Blocking(redis::Client);

impl bb8::ManageConnection for Blocking {
    type Connection = redis::aio::MultiplexedConnection;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        self.0.get_multiplexed_async_connection_with_config(&config).await
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        redis::cmd("PING").query_async::<()>(conn).await
    }

    fn has_broken(&self, _: &mut Self::Connection) -> bool {
        false
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name:<44} p50 {:>7.1} us   p90 {:>7.1} us   p99 {:>7.1} us",
        pick(0.5).as_secs_f64() * 1e6,
        pick(0.9).as_secs_f64() * 1e6,
        pick(0.99).as_secs_f64() * 1e6
    );
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let client = redis::Client::open(url.clone()).unwrap();
    let mut pusher = client.get_multiplexed_async_connection().await.unwrap();

    // 1. Raw PUBLISH -> subscriber.
    let (mut sink, mut stream) = client.get_async_pubsub().await.unwrap().split();
    sink.subscribe("lat").await.unwrap();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t0 = Instant::now();
        redis::cmd("PUBLISH").arg("lat").arg("x").query_async::<i64>(&mut pusher).await.unwrap();
        stream.next().await.unwrap();
        samples.push(t0.elapsed());
    }
    report("raw PUBLISH -> message", samples);

    // 2. BLPOP on a pooled dedicated connection, woken by RPUSH.
    let pool = bb8::Pool::builder().max_size(2).build(Blocking(client.clone())).await.unwrap();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let pool = pool.clone();
        let waiter = tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            // Server-side block (2 s) shorter than any client deadline (none here).
            let v: Option<(String, String)> =
                redis::cmd("BLPOP").arg("latq").arg(2).query_async(&mut *conn).await.unwrap();
            (Instant::now(), v)
        });
        tokio::time::sleep(Duration::from_micros(300)).await;
        let t0 = Instant::now();
        redis::cmd("RPUSH").arg("latq").arg("x").query_async::<i64>(&mut pusher).await.unwrap();
        let (t1, v) = waiter.await.unwrap();
        assert!(v.is_some());
        samples.push(t1 - t0);
    }
    report("RPUSH -> BLPOP returns the message", samples);

    // 3. busmq: push (script + PUBLISH) -> watch notice -> take (one more round trip).
    let a = RedisStore::open(url.clone()).unwrap();
    let b = RedisStore::open(url).unwrap();
    a.connect().await.unwrap();
    b.connect().await.unwrap();
    let q = QueueName::new("latency").unwrap();
    let spec = QueueSpec::default();
    let att = a.attach(&q, &spec).await.unwrap();
    let mut watch = a.watch(&q).await.unwrap();
    let consumer = ConsumerId::new(&ClientId::random(), 1);
    let entry = [NewEntry::new("x")];
    let mut notice = Vec::with_capacity(rounds);
    let mut taken = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t0 = Instant::now();
        b.push(&q, att.generation, &spec, &entry).await.unwrap();
        watch.next().await.unwrap();
        notice.push(t0.elapsed());
        let t = a.take(&q, &consumer, 100, TakeMode::AtMostOnce).await.unwrap();
        assert_eq!(t.entries.len(), 1);
        taken.push(t0.elapsed());
    }
    report("busmq push -> watch notice", notice);
    report("busmq push -> notice -> take returns it", taken);
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}
