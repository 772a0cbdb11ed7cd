//! End-to-end recovery through the public API (SPEC B2, B5): buses, queues, channels and topics
//! over real `redis-server` processes that are killed and restarted under them.

mod common;

use busmq_core::{Bus, BusEvent, ChannelEvent, ConsumeOptions, Error, Queue, ReliableOptions};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use common::DEADLINE;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;

/// A connected bus over `urls` with quick reconnection.
async fn bus(urls: &[String]) -> Bus {
    let store = common::builder(urls.to_vec()).build().expect("valid options");
    let bus = Bus::new(store);
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("online");
    bus
}

/// Waits for the next state event (errors are skipped).
async fn next_state(events: &mut busmq_core::EventStream<BusEvent>) -> BusEvent {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.next().await {
                Some(BusEvent::Error(_)) => continue,
                Some(state) => return state,
                None => panic!("the bus event stream ended"),
            }
        }
    });
    found.await.expect("a state event within the deadline")
}

/// Receives `n` bodies, within the deadline.
async fn receive(consumer: &mut busmq_core::Consumer<u32>, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while got.len() < n {
            got.push(consumer.next().await.expect("consumer ended").expect("decodes").into_body());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} messages arrived: {got:?}", got.len()));
    got
}

/// Pushes, retrying while the store is still coming back (a push during an outage fails with a
/// retryable error instead of hanging).
async fn push_retrying(queue: &Queue, value: u32) -> u64 {
    common::eventually("a push to succeed", || async {
        match queue.push(&value).await {
            Ok(id) => Some(id),
            Err(error) if error.is_retryable() => None,
            Err(error) => panic!("push failed for good: {error}"),
        }
    })
    .await
}

/// Issue 3 item 7: the server dies under an attached producer and a consuming consumer and comes
/// back empty (no persistence): both buses report `Offline` then `Online` once each, pushes in
/// the outage fail with a typed, retryable error, consuming resumes by itself and what was
/// pushed after the restart arrives exactly once.
#[tokio::test]
async fn producer_and_consumer_resume_after_a_redis_restart() {
    let Some(mut server) =
        common::server("producer_and_consumer_resume_after_a_redis_restart").await
    else {
        return;
    };
    let urls = vec![server.url()];
    let (pb, cb) = (bus(&urls).await, bus(&urls).await);
    let (mut p_events, mut c_events) = (pb.events(), cb.events());
    let name = common::queue("restart").to_string();
    let producer = pb.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let consumer_q = cb.queue(&name).unwrap();
    consumer_q.attach().await.unwrap();
    let mut consumer = consumer_q.consume::<u32>().await.unwrap();
    producer.push_all(0..10u32).await.unwrap();
    assert_eq!(receive(&mut consumer, 10).await, (0..10).collect::<Vec<_>>());

    server.kill();
    assert!(matches!(next_state(&mut p_events).await, BusEvent::Offline));
    assert!(matches!(next_state(&mut c_events).await, BusEvent::Offline));
    let during = producer.push(&999u32).await;
    assert!(during.as_ref().is_err_and(Error::is_retryable), "{during:?}");

    server.restart().await.expect("restart");
    assert!(matches!(next_state(&mut p_events).await, BusEvent::Online));
    assert!(matches!(next_state(&mut c_events).await, BusEvent::Online));
    push_retrying(&producer, 100).await;
    producer.push_all(101..110u32).await.unwrap();
    assert_eq!(receive(&mut consumer, 10).await, (100..110).collect::<Vec<_>>());
    let extra = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await;
    assert!(extra.is_err(), "nothing more, in particular no duplicate: {extra:?}");
    let states: Vec<String> = std::iter::from_fn(|| p_events.next().now_or_never().flatten())
        .filter(|e| !matches!(e, BusEvent::Error(_)))
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(states.is_empty(), "exactly one Offline and one Online: extra {states:?}");
}

/// With persistence (AOF, fsync always), a kill -9 and restart loses nothing that was pushed and
/// duplicates nothing: a reliable consumer gets every message once, acknowledging as it goes,
/// including those it held in its prefetch buffer across the outage.
#[tokio::test]
async fn reliable_consumer_loses_nothing_across_a_restart_with_persistence() {
    if common::server("reliable_consumer_loses_nothing_across_a_restart_with_persistence")
        .await
        .is_none()
    {
        return;
    }
    let mut server = RedisServer::builder()
        .config("appendonly yes")
        .config("appendfsync always")
        .start()
        .await
        .expect("redis-server with AOF");
    let urls = vec![server.url()];
    let (pb, cb) = (bus(&urls).await, bus(&urls).await);
    let name = common::queue("persist").to_string();
    let producer = pb.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let ids = producer.push_all(0..40u32).await.unwrap();
    let consumer_q = cb.queue(&name).unwrap();
    consumer_q.attach().await.unwrap();
    let options = ConsumeOptions::new().reliable(ReliableOptions::default()).prefetch(16);
    let mut consumer = consumer_q.consume_with::<u32>(options).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let d = tokio::time::timeout(DEADLINE, consumer.next()).await.unwrap().unwrap().unwrap();
        seen.push(d.id());
        d.ack().await.unwrap();
    }
    server.kill();
    server.restart().await.expect("restart");
    let after = common::eventually("the post-restart batch", || async {
        producer.push_all(40..50u32).await.ok()
    })
    .await;
    while seen.len() < 50 {
        let next = tokio::time::timeout(DEADLINE, consumer.next()).await;
        let d = next.expect("deliveries resume").expect("stream open").expect("decodes");
        seen.push(d.id());
        d.ack().await.unwrap();
    }
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no message was delivered twice: {seen:?}");
    let pushed: BTreeSet<u64> = ids.into_iter().chain(after).collect();
    assert_eq!(unique, pushed, "every message pushed arrived");
    assert_eq!(consumer_q.stat().await.unwrap().pending, 0);
}

/// Issue 3 item 7: with three shards, one down: queues on the other two keep working, operations
/// on the down one fail fast with `Offline` (no hang), the bus reports `Degraded` naming it, and
/// everything works again once it is back.
#[tokio::test]
async fn one_of_three_shards_down_the_others_work_and_it_recovers() {
    let Some(mut servers) = common::servers("one_of_three_shards_down", 3).await else { return };
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let b = bus(&urls).await;
    let mut events = b.events();
    let placement = RedisStore::from_urls(urls.clone()).unwrap();
    // One queue per shard, found by asking the store where names go.
    let mut by_owner: std::collections::BTreeMap<String, String> = Default::default();
    for i in 0.. {
        let name = format!("{}-{i}", common::queue("shard"));
        let owner = placement.owner(&busmq_core::QueueName::new(&name).unwrap());
        by_owner.entry(owner).or_insert(name);
        if by_owner.len() == 3 {
            break;
        }
    }
    let down = 1;
    let down_port = format!(":{}/", servers[down].port());
    let queues: Vec<(bool, Queue)> = by_owner
        .iter()
        .map(|(owner, name)| (owner.contains(&down_port), b.queue(name).unwrap()))
        .collect();
    assert_eq!(queues.iter().filter(|(on_down, _)| *on_down).count(), 1);
    for (_, q) in &queues {
        q.attach().await.unwrap();
    }

    servers[down].kill();
    match next_state(&mut events).await {
        BusEvent::Degraded { down } => assert_eq!(down.len(), 1, "{down:?}"),
        other => panic!("expected Degraded, got {other:?}"),
    }
    for (on_down, q) in &queues {
        let result = tokio::time::timeout(DEADLINE, q.push(&1u32)).await.expect("no hang");
        if *on_down {
            assert!(matches!(result, Err(Error::Offline { .. })), "{}: {result:?}", q.name());
        } else {
            result.unwrap_or_else(|e| panic!("{} is up but its queue failed: {e}", q.name()));
            let mut c = q.consume_with::<u32>(ConsumeOptions::new().max(1)).await.unwrap();
            assert_eq!(receive(&mut c, 1).await, vec![1]);
        }
    }

    servers[down].restart().await.expect("restart");
    assert!(matches!(next_state(&mut events).await, BusEvent::Online));
    for (_, q) in &queues {
        push_retrying(q, 7).await;
    }
    for (_, q) in &queues {
        let mut c = q.consume_with::<u32>(ConsumeOptions::new().max(1)).await.unwrap();
        assert_eq!(receive(&mut c, 1).await, vec![7]);
    }
}

/// Issue 4 item 6 (SPEC P1, B5): subscribers get what is published after a restart, exactly
/// once, without re-subscribing.
#[tokio::test]
async fn subscribers_receive_after_a_restart_without_duplicates() {
    let Some(mut server) = common::server("subscribers_receive_after_a_restart").await else {
        return;
    };
    let urls = vec![server.url()];
    let (a, b) = (bus(&urls).await, bus(&urls).await);
    let topic = common::queue("news").to_string();
    let mut first = a.pubsub(&topic).unwrap().subscribe::<u32>().await.unwrap();
    let mut second = b.pubsub(&topic).unwrap().subscribe::<u32>().await.unwrap();
    let publisher = b.pubsub(&topic).unwrap();
    publisher.publish(&1u32).await.unwrap();
    for s in [&mut first, &mut second] {
        assert_eq!(tokio::time::timeout(DEADLINE, s.next()).await.unwrap().unwrap().unwrap(), 1);
    }
    let mut events = a.events();
    server.kill();
    server.restart().await.expect("restart");
    common::eventually("both buses online", || async {
        (a.is_online() && b.is_online()).then_some(())
    })
    .await;
    let _ = next_state(&mut events).await;
    // The subscription is re-established in the background; publish until it is.
    let heard = tokio::time::timeout(DEADLINE, async {
        loop {
            if publisher.publish(&2u32).await.is_ok() {
                if let Ok(Some(Ok(2))) =
                    tokio::time::timeout(Duration::from_millis(200), first.next()).await
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    heard.await.expect("a subscriber hears a publish after the restart");
    let mut second_got = Vec::new();
    while let Ok(Some(Ok(v))) =
        tokio::time::timeout(Duration::from_millis(500), second.next()).await
    {
        second_got.push(v);
    }
    assert!(!second_got.is_empty(), "the second subscriber heard the publishes after the restart");
    assert!(second_got.iter().all(|v| *v == 2));
    publisher.publish(&3u32).await.unwrap();
    let mut rest = Vec::new();
    while let Ok(Some(Ok(v))) = tokio::time::timeout(Duration::from_millis(500), first.next()).await
    {
        rest.push(v);
    }
    assert_eq!(rest.iter().filter(|v| **v == 3).count(), 1, "exactly once: {rest:?}");
}

/// SPEC B5: connected channel peers keep talking after a restart, without reconnecting.
#[tokio::test]
async fn channel_peers_keep_talking_after_a_restart() {
    let Some(mut server) = common::server("channel_peers_keep_talking_after_a_restart").await
    else {
        return;
    };
    let urls = vec![server.url()];
    let (sb, cb) = (bus(&urls).await, bus(&urls).await);
    let name = common::queue("chat").to_string();
    let server_peer = sb.channel(&name).unwrap();
    let client_peer = cb.channel(&name).unwrap();
    let mut se = server_peer.listen::<String>().await.unwrap();
    let mut ce = client_peer.connect::<String>().await.unwrap();
    async fn message(events: &mut busmq_core::ChannelEvents<String>) -> String {
        tokio::time::timeout(DEADLINE, async {
            loop {
                match events.next().await.expect("channel open") {
                    ChannelEvent::Message(m) => return m.into_body(),
                    ChannelEvent::Error(e) => panic!("{e}"),
                    _ => {}
                }
            }
        })
        .await
        .expect("a message within the deadline")
    }
    client_peer.send(&"before").await.unwrap();
    assert_eq!(message(&mut se).await, "before");
    server.kill();
    server.restart().await.expect("restart");
    common::eventually("the client to send again", || async {
        client_peer.send(&"after").await.ok().map(|_| ())
    })
    .await;
    assert_eq!(message(&mut se).await, "after");
    server_peer.send(&"reply").await.unwrap();
    assert_eq!(message(&mut ce).await, "reply");
}

use futures::FutureExt;
