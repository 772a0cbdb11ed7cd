//! Placement over several plain instances: spread, independence from URL order, finding
//! queues after an instance is added (without probing every instance every time), and an
//! owner that is down.

mod common;

use busmq_core::store::{NewEntry, PushBatch, Session, StoreState, TakeMode, Topics};
use busmq_core::{Error, QueueName, Store, TopicName};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use bytes::Bytes;
use common::{queue, spec};
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

async fn meta_exists(server: &RedisServer, q: &QueueName) -> bool {
    let mut raw = common::raw(server).await;
    redis::cmd("EXISTS")
        .arg(format!("busmq:{{{}}}:m", q.as_str()))
        .query_async::<i64>(&mut raw)
        .await
        .unwrap()
        == 1
}

async fn exists_calls(server: &RedisServer) -> u64 {
    let mut raw = common::raw(server).await;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut raw).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_exists:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn by_identity<'a>(
    servers: &'a [RedisServer],
    store: &RedisStore,
) -> HashMap<String, &'a RedisServer> {
    store.instances().into_iter().zip(servers.iter()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_spread_and_url_order_does_not_matter() {
    let Some(srv) = common::servers("queues_spread_and_url_order_does_not_matter", 3).await else {
        return;
    };
    let urls: Vec<String> = srv.iter().map(|s| s.url()).collect();
    let a = common::store_with(common::builder(urls.clone())).await;
    let reversed: Vec<String> = urls.iter().rev().cloned().collect();
    let b = common::store_with(common::builder(reversed)).await;
    let servers = by_identity(&srv, &a);
    let mut per_instance: HashMap<String, usize> = HashMap::new();
    for i in 0..30 {
        let q = queue(&format!("spread{i}"));
        assert_eq!(a.owner(&q), b.owner(&q));
        let att = a.attach(&q, &spec()).await.unwrap();
        a.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new(format!("x{i}"))]))
            .await
            .unwrap();
        assert_eq!(b.stat(&q).await.unwrap().count, 1, "the other store finds it");
        let owner = a.owner(&q);
        for (id, server) in &servers {
            assert_eq!(meta_exists(server, &q).await, *id == owner, "{q:?} lives only on {owner}");
        }
        *per_instance.entry(owner).or_default() += 1;
    }
    assert_eq!(per_instance.len(), 3, "every instance holds some queues: {per_instance:?}");
    common::stop(&a).await;
    common::stop(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_an_instance_keeps_finding_old_queues() {
    let Some(mut srv) = common::servers("adding_an_instance_keeps_finding_old_queues", 2).await
    else {
        return;
    };
    let old = common::store_with(common::builder(srv.iter().map(|s| s.url()))).await;
    let mut queues = Vec::new();
    for i in 0..30 {
        let q = queue(&format!("old{i}"));
        let att = old.attach(&q, &spec()).await.unwrap();
        old.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new(format!("p{i}"))]))
            .await
            .unwrap();
        queues.push(q);
    }
    srv.push(RedisServer::start().await.expect("third server"));
    let new = common::store_with(common::builder(srv.iter().map(|s| s.url()))).await;
    let servers = by_identity(&srv, &new);
    let third = new.instances()[2].clone();
    let moved: Vec<&QueueName> = queues.iter().filter(|q| new.owner(q) == third).collect();
    assert!(!moved.is_empty(), "some names now belong to the new instance");
    for (i, q) in queues.iter().enumerate() {
        assert!(new.stat(q).await.unwrap().exists, "{q:?} is still found");
        let t = new.take(q, 10, TakeMode::AtMostOnce).await.unwrap();
        assert_eq!(t.entries.len(), 1, "{q:?}");
        assert_eq!(&t.entries[0].payload[..], format!("p{i}").as_bytes());
        assert!(!meta_exists(servers[&third], q).await || old.owner(q) == third);
    }
    // Once located, a queue costs no more lookups.
    let before: Vec<u64> = futures::future::join_all(srv.iter().map(exists_calls)).await;
    for q in &queues {
        new.stat(q).await.unwrap();
        new.attach(q, &spec()).await.unwrap();
    }
    let after: Vec<u64> = futures::future::join_all(srv.iter().map(exists_calls)).await;
    assert_eq!(before, after, "no EXISTS probes for queues already located");
    // New queues go to their current owner, including the new instance.
    for i in 0..20 {
        let q = queue(&format!("new{i}"));
        new.attach(&q, &spec()).await.unwrap();
        assert!(meta_exists(servers[&new.owner(&q)], &q).await);
    }
    // When a moved queue is closed, its name belongs to the new owner from then on.
    let q = moved[0];
    assert!(new.close(q, None).await.unwrap());
    let att = new.attach(q, &spec()).await.unwrap();
    assert!(!att.existed);
    assert!(meta_exists(servers[&third], q).await, "recreated on its current owner");
    // An old client (which does not know the third instance) still reaches old queues.
    assert!(old.stat(&queues[1]).await.unwrap().exists || moved.contains(&&queues[1]));
    common::stop(&old).await;
    common::stop(&new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_is_down_fails_its_queues_fast_and_the_others_work() {
    let Some(mut srv) = common::servers("an_owner_that_is_down_fails_its_queues_fast", 3).await
    else {
        return;
    };
    let s = common::store_with(
        common::builder(srv.iter().map(|s| s.url())).response_timeout(Duration::from_secs(2)),
    )
    .await;
    let mut events = s.events();
    let victim = s.instances()[1].clone();
    let mut mine = None;
    let mut other = None;
    for i in 0..200 {
        let q = queue(&format!("own{i}"));
        if s.owner(&q) == victim && mine.is_none() {
            mine = Some(q);
        } else if s.owner(&q) != victim && other.is_none() {
            other = Some(q);
        }
    }
    let (mine, other) = (mine.unwrap(), other.unwrap());
    srv[1].kill();
    let state = common::next_state(&mut events).await;
    assert_eq!(state, StoreState::Degraded { down: vec![victim.clone()] });
    let started = std::time::Instant::now();
    match s.attach(&mine, &spec()).await {
        Err(Error::Offline { target }) => assert!(target.contains(&victim), "{target}"),
        other => panic!("expected Offline, got {other:?}"),
    }
    assert!(started.elapsed() < common::DEADLINE);
    match s.watch(&mine).await {
        Err(e) => assert!(e.is_retryable(), "{e}"),
        Ok(_) => panic!("watching a queue on a down instance must fail"),
    }
    let att = s.attach(&other, &spec()).await.unwrap();
    s.push(&other, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("ok")])).await.unwrap();
    // No split brain: the queue was not created anywhere else.
    for (i, server) in srv.iter().enumerate() {
        if i != 1 {
            assert!(!meta_exists(server, &mine).await);
        }
    }
    srv[1].restart().await.unwrap();
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    s.attach(&mine, &spec()).await.unwrap();
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_spread_and_reach_subscribers_on_other_stores() {
    let Some(srv) = common::servers("topics_are_spread", 3).await else {
        return;
    };
    let urls: Vec<String> = srv.iter().map(|s| s.url()).collect();
    let a = common::store_with(common::builder(urls.clone())).await;
    let b = common::store_with(common::builder(urls.iter().rev().cloned())).await;
    let mut owners = std::collections::HashSet::new();
    let mut subs = Vec::new();
    for i in 0..12 {
        let t =
            TopicName::new(format!("topic-{i}-{:x}", busmq_core::support::random_u64())).unwrap();
        assert_eq!(a.topic_owner(&t), b.topic_owner(&t));
        owners.insert(a.topic_owner(&t));
        subs.push((t.clone(), b.subscribe(&t).await.unwrap()));
    }
    assert!(owners.len() > 1, "topics are not all on one instance");
    for (t, _) in &subs {
        assert_eq!(a.publish(t, Bytes::from(t.as_str().to_string())).await.unwrap(), 1);
    }
    for (t, sub) in &mut subs {
        let got = tokio::time::timeout(common::DEADLINE, sub.next()).await.unwrap().unwrap();
        assert_eq!(&got[..], t.as_str().as_bytes());
    }
    common::stop(&a).await;
    common::stop(&b).await;
}
