//! Network partitions between a bus and its Redis, made with the fault-injecting proxy of
//! busmq-testkit: a cut (connections closed, new ones refused), a blackhole (nothing gets
//! through, nothing is closed) and dropped connections. After each, delivery resumes by itself;
//! messages pushed by another client during the partition arrive once it heals.
//!
//! As over real TCP, a request sent into a blackhole is executed when the partition heals,
//! after its caller gave up on it: a consumer's take can thus claim messages whose reply nobody
//! reads. In reliable mode they come back after the visibility timeout (short here); nothing is
//! lost, but those messages are late by up to that timeout.

mod common;

use busmq_core::{Bus, BusEvent, BusState, ConsumeOptions, ReliableOptions};
use busmq_testkit::proxy::FaultProxy;
use futures::{Stream, StreamExt};
use std::time::Duration;

async fn bus(url: String) -> Bus {
    let store = common::builder([url])
        .response_timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let bus = Bus::new(store);
    assert_eq!(bus.connect().await.unwrap(), BusState::Online);
    bus
}

async fn next_state(events: &mut (impl Stream<Item = BusEvent> + Unpin)) -> BusState {
    let wait = async {
        loop {
            match events.next().await {
                Some(BusEvent::Online) => return BusState::Online,
                Some(BusEvent::Offline) => return BusState::Offline,
                Some(BusEvent::Degraded { down }) => return BusState::Degraded { down },
                Some(_) => continue,
                None => panic!("the event stream ended"),
            }
        }
    };
    tokio::time::timeout(common::DEADLINE, wait).await.expect("a state event")
}

async fn expect_values<S>(stream: &mut S, want: &[u64], reliable: bool)
where
    S: Stream<Item = busmq_core::Result<busmq_core::Delivery<u64>>> + Unpin,
{
    let mut got = Vec::new();
    let wait = async {
        while got.len() < want.len() {
            let d = stream.next().await.expect("the consumer runs").expect("decodes");
            got.push(*d.body());
            if reliable {
                d.ack().await.expect("ack");
            }
        }
    };
    if tokio::time::timeout(common::DEADLINE, wait).await.is_err() {
        panic!("delivery stalled: got {got:?}, want {want:?}");
    }
    assert_eq!(got, want);
}

/// Receives (and acknowledges) until every value of `want` arrived, in any order and possibly
/// more than once (a take lost in the partition is redelivered).
async fn expect_set<S>(stream: &mut S, want: &[u64])
where
    S: Stream<Item = busmq_core::Result<busmq_core::Delivery<u64>>> + Unpin,
{
    let mut missing: Vec<u64> = want.to_vec();
    let wait = async {
        while !missing.is_empty() {
            let d = stream.next().await.expect("the consumer runs").expect("decodes");
            missing.retain(|v| v != d.body());
            let _ = d.ack().await;
        }
    };
    if tokio::time::timeout(common::DEADLINE, wait).await.is_err() {
        panic!("delivery stalled: {missing:?} of {want:?} never arrived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_after_cut_blackhole_and_dropped_connections() {
    let Some(srv) = common::server("delivery_resumes_after_partitions").await else {
        return;
    };
    let proxy = FaultProxy::start(srv.port()).await.unwrap();
    let consumer_bus = bus(proxy.url(None)).await;
    let producer_bus = bus(srv.url()).await;
    let mut events = consumer_bus.events();

    let name = common::queue("partition").to_string();
    let inbox = consumer_bus.queue(&name).unwrap();
    inbox.attach().await.unwrap();
    let reliable = ConsumeOptions::new().reliable(ReliableOptions {
        visibility_timeout: Duration::from_secs(2),
        ..ReliableOptions::default()
    });
    let mut incoming = inbox.consume_with::<u64>(reliable).await.unwrap();
    let outbox = producer_bus.queue(&name).unwrap();
    outbox.attach().await.unwrap();

    outbox.push(&0u64).await.unwrap();
    expect_values(&mut incoming, &[0], true).await;

    let mut next = 1u64;
    for (fault, label) in [
        (FaultProxy::cut as fn(&FaultProxy), "cut"),
        (FaultProxy::blackhole, "blackhole"),
        (FaultProxy::drop_connections, "dropped connections"),
    ] {
        fault(&proxy);
        if label != "dropped connections" {
            assert_eq!(next_state(&mut events).await, BusState::Offline, "{label}");
            // Pushed by another client while this one is cut off.
            let during: Vec<u64> = (next..next + 3).collect();
            for v in &during {
                outbox.push(v).await.unwrap();
            }
            proxy.restore();
            assert_eq!(next_state(&mut events).await, BusState::Online, "{label}");
            expect_set(&mut incoming, &during).await;
            next += 3;
        } else {
            // A blip: whether it is seen as Offline depends on timing; delivery must go on.
            outbox.push(&next).await.unwrap();
            expect_values(&mut incoming, &[next], true).await;
            next += 1;
        }
    }
    consumer_bus.disconnect().await.unwrap();
    producer_bus.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_below_the_timeouts_only_slows_things_down() {
    let Some(srv) = common::server("latency_below_the_timeouts").await else {
        return;
    };
    let proxy = FaultProxy::start(srv.port()).await.unwrap();
    let bus = bus(proxy.url(None)).await;
    let mut events = bus.events();
    proxy.set_latency(Duration::from_millis(100));
    let queue = bus.queue(common::queue("slow")).unwrap();
    queue.attach().await.unwrap();
    let mut incoming = queue.consume::<u64>().await.unwrap();
    for i in 0..5u64 {
        queue.push(&i).await.unwrap();
    }
    expect_values(&mut incoming, &[0, 1, 2, 3, 4], false).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), next_state(&mut events)).await;
    assert!(quiet.is_err(), "no state change under latency: {quiet:?}");
    bus.disconnect().await.unwrap();
}

/// A consumer stopped while its store is unreachable gives its buffered messages back with a
/// restore that times out; the request was sent, so it is executed when the partition heals.
/// Core must not retry it (that put the messages back twice, and at-most-once delivered them
/// twice, SPEC Q10): only calls that certainly did not run are retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stopped_during_a_partition_gives_its_buffer_back_once() {
    let Some(srv) = common::server("a_consumer_stopped_during_a_partition").await else {
        return;
    };
    let proxy = FaultProxy::start(srv.port()).await.unwrap();
    let store = common::builder([proxy.url(None)])
        .response_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .ping_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let consumer_bus = Bus::new(store);
    consumer_bus.connect().await.unwrap();
    let producer_bus = bus(srv.url()).await;
    let name = common::queue("giveback").to_string();
    let outbox = producer_bus.queue(&name).unwrap();
    outbox.attach().await.unwrap();
    for i in 1..=40u64 {
        outbox.push(&i).await.unwrap();
    }
    let inbox = consumer_bus.queue(&name).unwrap();
    inbox.attach().await.unwrap();
    let mut first = inbox.consume_with::<u64>(ConsumeOptions::new().prefetch(32)).await.unwrap();
    expect_values(&mut first, &[1], false).await;

    proxy.blackhole();
    let stopping = tokio::spawn(async move {
        first.stop().await;
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.restore();
    tokio::time::timeout(common::DEADLINE, stopping).await.unwrap().unwrap();

    let mut rest = loop {
        match inbox.consume_with::<u64>(ConsumeOptions::new()).await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let mut seen = vec![1u64];
    while let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(3), rest.next()).await {
        seen.push(*d.body());
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "at-most-once delivered twice: {seen:?}");
    consumer_bus.disconnect().await.unwrap();
    producer_bus.disconnect().await.unwrap();
}

/// SPEC Q13 with a real partition: a reliable ack sent while Redis is unreachable fails
/// (`Offline`), and the delivery is not pinned by the consumer's periodic extensions: once the
/// short partition heals the message comes back after its visibility timeout (2 s here), not
/// only when the consumer stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ack_during_a_partition_is_redelivered_after_the_visibility_timeout() {
    let Some(srv) = common::server("a_failed_ack_during_a_partition").await else {
        return;
    };
    let proxy = FaultProxy::start(srv.port()).await.unwrap();
    let store = common::builder([proxy.url(None)])
        .response_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .ping_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let consumer_bus = Bus::new(store);
    consumer_bus.connect().await.unwrap();
    let mut events = consumer_bus.events();
    let producer_bus = bus(srv.url()).await;
    let name = common::queue("failed-ack").to_string();
    let outbox = producer_bus.queue(&name).unwrap();
    outbox.attach().await.unwrap();
    let inbox = consumer_bus.queue(&name).unwrap();
    inbox.attach().await.unwrap();
    let visibility = Duration::from_secs(2);
    let reliable = ConsumeOptions::new()
        .reliable(ReliableOptions { visibility_timeout: visibility, ..ReliableOptions::default() });
    let mut incoming = inbox.consume_with::<u64>(reliable).await.unwrap();
    let id = outbox.push(&7u64).await.unwrap();
    let first = tokio::time::timeout(common::DEADLINE, incoming.next()).await.unwrap().unwrap();
    let first = first.unwrap();
    assert_eq!((first.id(), first.deliveries()), (id, 1));

    proxy.cut();
    assert_eq!(next_state(&mut events).await, BusState::Offline);
    let failed = first.ack().await;
    assert!(failed.as_ref().is_err_and(|e| e.is_retryable()), "{failed:?}");
    // Healed well within the visibility timeout: what would keep the message away now is the
    // consumer extending a delivery whose ack failed.
    proxy.restore();
    assert_eq!(next_state(&mut events).await, BusState::Online);
    let again = tokio::time::timeout(visibility * 5, incoming.next())
        .await
        .expect("the message comes back after its visibility timeout")
        .unwrap()
        .unwrap();
    assert_eq!((again.id(), again.deliveries(), *again.body()), (id, 2, 7));
    again.ack().await.unwrap();
    consumer_bus.disconnect().await.unwrap();
    producer_bus.disconnect().await.unwrap();
}
