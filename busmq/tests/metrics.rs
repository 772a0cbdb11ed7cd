//! The metrics scraped as Prometheus would (issue 13 item 2, SPEC O2): the exporter of
//! `examples/prometheus.rs` serves `/metrics` on a free port, a bus on the memory store and one
//! on a real redis-server push, consume, acknowledge, nack, dead-letter and fail a push, and
//! two scrapes over HTTP show the counters present and moving. A recorder is process-global,
//! so both stores run in this one test.

use busmq::memory::Memory;
use busmq::redis::RedisStore;
use busmq::{
    AttachOptions, Bus, ConsumeOptions, Consumer, Delivery, Error, Queue, ReliableOptions,
};
use busmq_testkit::redis::{RedisServer, require_or_skip};
use futures::StreamExt;
use metrics_exporter_prometheus::PrometheusBuilder;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(30);

/// Installs the exporter on a free loopback port and returns its address.
fn install_exporter() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = probe.local_addr().expect("its address");
    drop(probe);
    PrometheusBuilder::new().with_http_listener(addr).install().expect("the exporter starts");
    addr
}

/// `GET /metrics` over a plain TCP connection (HTTP/1.0: the body is not chunked).
async fn scrape(addr: SocketAddr) -> String {
    let fetch = async {
        loop {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(mut conn) => {
                    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
                    let mut response = String::new();
                    conn.read_to_string(&mut response).await?;
                    return Ok::<_, std::io::Error>(response);
                }
                // The listener starts in the background.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let response = tokio::time::timeout(DEADLINE, fetch).await.expect("a scrape").expect("read");
    assert!(response.starts_with("HTTP/1.") && response.contains(" 200 "), "{response}");
    response
}

/// The value of the series `name` whose labels include every one of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches =
            metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(text, name, labels).unwrap_or_else(|| panic!("no {name} with {labels:?} in:\n{text}"))
}

async fn next(consumer: &mut Consumer<u32>) -> Delivery<u32> {
    let delivery = tokio::time::timeout(DEADLINE, consumer.next()).await.expect("in time");
    delivery.expect("a delivery").expect("it decodes")
}

/// One round of work on `queue`: 5 pushes; the first delivery is nacked (it comes back),
/// the next new one rejected (dead-lettered), the nacked one held when it comes back (in
/// flight), the others acknowledged. Returns the held delivery.
async fn round(queue: &Queue, consumer: &mut Consumer<u32>) -> Delivery<u32> {
    for n in 0..5 {
        queue.push(&n).await.expect("push");
    }
    let (mut nacked, mut rejected, mut held, mut done) = (false, false, None, 0);
    while done < 5 {
        let delivery = next(consumer).await;
        if !nacked {
            nacked = true;
            delivery.nack().await.expect("nack");
            continue;
        }
        done += 1;
        if delivery.deliveries() >= 2 && held.is_none() {
            held = Some(delivery);
        } else if !rejected {
            rejected = true;
            delivery.reject("refused by the test").await.expect("reject");
        } else {
            delivery.ack().await.expect("ack");
        }
    }
    held.expect("the nacked message came back")
}

/// Runs two rounds on `bus` with a scrape after each, and checks what moved. `backend` is
/// the label the store's series carry.
async fn scenario(bus: Bus, backend: &str, addr: SocketAddr) {
    bus.connect().await.expect("connect");
    let name = format!("metrics-{backend}-{:08x}", busmq::support::random_u64() as u32);
    let queue = bus.queue(&name).expect("queue");
    queue.attach().await.expect("attach");
    let options = ConsumeOptions::new().reliable(ReliableOptions::default()).prefetch(1);
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    let full = bus.queue(format!("{name}-full")).expect("queue");
    full.attach_with(AttachOptions::new().maxsize(1)).await.expect("attach");
    full.push(&1).await.expect("room for one");
    let refused = full.push(&2).await.expect_err("full");
    assert!(matches!(refused, Error::QueueFull { .. }), "{refused:?}");

    let held = round(&queue, &mut consumer).await;
    // The depth sampler runs every 50 ms.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = scrape(addr).await;
    held.ack().await.expect("ack");
    let held = round(&queue, &mut consumer).await;
    let second = scrape(addr).await;
    held.ack().await.expect("ack");

    let q = [("queue", name.as_str()), ("backend", backend)];
    let reliable = [("queue", name.as_str()), ("backend", backend), ("mode", "reliable")];
    for (metric, labels) in [
        ("busmq_pushed_total", &q[..]),
        ("busmq_delivered_total", &reliable[..]),
        ("busmq_acked_total", &reliable[..]),
        ("busmq_nacked_total", &reliable[..]),
        ("busmq_redelivered_total", &reliable[..]),
        ("busmq_push_duration_seconds_count", &q[..]),
        ("busmq_end_to_end_seconds_count", &reliable[..]),
    ] {
        let (before, after) = (counter(&first, metric, labels), counter(&second, metric, labels));
        assert!(before > 0.0 && after > before, "{metric} {labels:?}: {before} then {after}");
    }
    let dead = [("queue", name.as_str()), ("backend", backend), ("reason", "rejected")];
    let (before, after) = (
        counter(&first, "busmq_dead_lettered_total", &dead),
        counter(&second, "busmq_dead_lettered_total", &dead),
    );
    assert!(before >= 1.0 && after > before, "dead letters: {before} then {after}");
    assert_eq!(counter(&first, "busmq_pushed_total", &q), 5.0);
    assert_eq!(counter(&second, "busmq_pushed_total", &q), 10.0);

    let full_name = format!("{name}-full");
    let errors = [("queue", full_name.as_str()), ("backend", backend), ("kind", "queue_full")];
    assert_eq!(counter(&second, "busmq_errors_total", &errors), 1.0);
    assert_eq!(counter(&second, "busmq_consumers", &reliable), 1.0);
    assert_eq!(counter(&second, "busmq_in_flight", &reliable), 1.0, "one delivery held");
    let depth = [("queue", full_name.as_str()), ("backend", backend)];
    assert_eq!(counter(&second, "busmq_queue_depth", &depth), 1.0);

    consumer.stop().await;
    bus.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_scraped_over_http_and_move_on_memory_and_redis() {
    let addr = install_exporter();
    let sampled = |bus: busmq::BusBuilder| bus.depth_sampling(Duration::from_millis(50));
    let memory = sampled(Bus::builder(Memory::new().store())).build().expect("bus");
    scenario(memory, "memory", addr).await;

    if require_or_skip("counters_are_scraped_over_http_and_move_on_redis").is_none() {
        return;
    }
    let server = RedisServer::start().await.expect("redis-server starts");
    let store = RedisStore::open(server.url()).expect("store");
    let redis = sampled(Bus::builder(store)).build().expect("bus");
    scenario(redis, "redis", addr).await;
    let text = scrape(addr).await;
    assert!(text.contains("# HELP busmq_pushed_total"), "metrics are described:\n{text}");
}
