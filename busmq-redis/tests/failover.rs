//! Killing, freezing and restarting redis-server: state events once per transition, calls
//! that fail fast during the outage, scripts that work again, watches that reset, and
//! subscriptions that come back without duplicates.

mod common;

use busmq_core::store::{
    NewEntry, Notice, Position, PushBatch, Session, StoreState, TakeMode, Topics,
};
use busmq_core::{Error, Store, TopicName};
use busmq_testkit::redis::RedisServer;
use bytes::Bytes;
use common::{queue, spec};
use futures::StreamExt;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_emits_offline_then_online_once_and_scripts_work_again() {
    let Some(mut srv) = common::server("restart_emits_offline_then_online_once").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut events = s.events();
    let q = queue("restart");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("before")])).await.unwrap();

    srv.kill();
    assert_eq!(common::next_state(&mut events).await, StoreState::Offline);
    let started = std::time::Instant::now();
    match s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("lost")])).await {
        Err(e @ (Error::Offline { .. } | Error::Timeout { .. })) => assert!(e.is_retryable()),
        other => panic!("expected Offline, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "calls fail fast while down");
    assert!(common::quiet_states(&mut events, QUIET).await.is_empty(), "Offline only once");

    srv.restart().await.unwrap();
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    assert!(common::quiet_states(&mut events, QUIET).await.is_empty(), "Online only once");
    assert_eq!(*s.state().borrow(), StoreState::Online);

    // The restarted server lost everything (no persistence) and never saw the scripts.
    let att = s.attach(&q, &spec()).await.unwrap();
    assert!(!att.existed);
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("after")])).await.unwrap();
    let t = s.take(&q, 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(&t.entries[0].payload[..], b"after");
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart_with_persistence() {
    let Some(_) = common::server("data_survives_a_restart_with_persistence").await else {
        return;
    };
    // `always`: with `everysec`, Redis may answer a write before putting it in the AOF while a
    // background fsync runs (it postpones the write up to 2 s), and the SIGKILL below lost the
    // push once on a busy disk. What busmq promises rests on what the AOF holds.
    let builder = RedisServer::builder().config("appendonly yes").config("appendfsync always");
    let mut srv = builder.start().await.unwrap();
    let s = common::store(&[&srv]).await;
    let mut events = s.events();
    let q = queue("persist");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("kept")])).await.unwrap();
    srv.restart().await.unwrap();
    assert_eq!(common::next_state(&mut events).await, StoreState::Offline);
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    let t = s.take(&q, 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(&t.entries[0].payload[..], b"kept");
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_lists_the_instances_that_are_down() {
    let Some(mut srv) = common::servers("degraded_lists_the_instances_that_are_down", 3).await
    else {
        return;
    };
    let s = common::store_with(common::builder(srv.iter().map(|s| s.url()))).await;
    let ids = s.instances();
    let mut events = s.events();
    srv[0].kill();
    assert_eq!(
        common::next_state(&mut events).await,
        StoreState::Degraded { down: vec![ids[0].clone()] }
    );
    srv[2].kill();
    assert_eq!(
        common::next_state(&mut events).await,
        StoreState::Degraded { down: vec![ids[0].clone(), ids[2].clone()] }
    );
    srv[1].kill();
    assert_eq!(common::next_state(&mut events).await, StoreState::Offline);
    for server in srv.iter_mut() {
        server.restart().await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.last() != Some(&StoreState::Online) {
        seen.push(common::next_state(&mut events).await);
    }
    assert!(seen.len() <= 3, "one event per transition: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "no repeated state: {seen:?}");
    assert!(common::quiet_states(&mut events, QUIET).await.is_empty());
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_reset_after_a_reconnect_and_keep_working() {
    let Some(mut srv) = common::server("watches_reset_after_a_reconnect").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let other = common::store(&[&srv]).await;
    let mut events = s.events();
    let q = queue("reset");
    s.attach(&q, &spec()).await.unwrap();
    let mut watch = s.watch(&q).await.unwrap();
    srv.kill();
    srv.restart().await.unwrap();
    common::eventually("the store to come back", || async {
        (*s.state().borrow() == StoreState::Online).then_some(())
    })
    .await;
    let _ = common::quiet_states(&mut events, Duration::from_millis(10)).await;
    let n = tokio::time::timeout(common::DEADLINE, watch.next()).await.unwrap();
    assert_eq!(n, Some(Notice::Reset));
    // Pushes publish only while someone waits for a notice: a read that comes back short,
    // as a consumer's before it waits (see Store::watch).
    common::eventually("a short read after the restart", || async {
        s.read(&q, Position::Start, 100).await.ok().map(drop)
    })
    .await;
    // The other store may still be reconnecting; retry its push until it is back.
    let att = common::eventually("a push after the restart", || async {
        let att = other.attach(&q, &spec()).await.ok()?;
        other
            .push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("x")]))
            .await
            .ok()?;
        Some(att)
    })
    .await;
    let _ = att;
    let n = tokio::time::timeout(common::DEADLINE, async {
        loop {
            match watch.next().await {
                Some(Notice::Reset) => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(n, Some(Notice::Available));
    common::stop(&s).await;
    common::stop(&other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_restart_without_duplicates() {
    let Some(mut srv) = common::server("subscriptions_survive_a_restart").await else {
        return;
    };
    let a = common::store(&[&srv]).await;
    let b = common::store(&[&srv]).await;
    let topic = TopicName::new(format!("news-{:x}", busmq_core::support::random_u64())).unwrap();
    let mut s1 = a.subscribe(&topic).await.unwrap();
    let mut s2 = a.subscribe(&topic).await.unwrap();
    let mut s3 = b.subscribe(&topic).await.unwrap();
    b.publish(&topic, Bytes::from_static(b"m0")).await.unwrap();
    for (i, stream) in [&mut s1, &mut s2, &mut s3].into_iter().enumerate() {
        let first = tokio::time::timeout(common::DEADLINE, stream.next()).await.unwrap().unwrap();
        assert_eq!(&first[..], b"m0", "stream {i} works before the restart");
    }
    srv.kill();
    srv.restart().await.unwrap();
    for store in [&a, &b] {
        common::eventually("both stores back online", || async {
            (*store.state().borrow() == StoreState::Online).then_some(())
        })
        .await;
    }
    // The subscriptions are re-established with the reconnection; publish probes until both
    // stores hear them, then count the real messages.
    common::eventually("subscriptions back on the new connection", || async {
        let n = b.publish(&topic, Bytes::from_static(b"probe")).await.ok()?;
        (n == 2).then_some(())
    })
    .await;
    for i in 1..=20 {
        b.publish(&topic, Bytes::from(format!("m{i}"))).await.unwrap();
    }
    for (i, stream) in [&mut s1, &mut s2, &mut s3].into_iter().enumerate() {
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(QUIET, stream.next()).await {
            if &m[..] != b"probe" {
                got.push(String::from_utf8(m.to_vec()).unwrap());
            }
        }
        let want: Vec<String> = (1..=20).map(|i| format!("m{i}")).collect();
        assert_eq!(got, want, "stream {i}: every message exactly once, in order");
    }
    common::stop(&a).await;
    common::stop(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_flushed_on_the_server_are_loaded_again() {
    let Some(srv) = common::server("scripts_flushed_on_the_server").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    let q = queue("noscript");
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("x")])).await.unwrap();
    assert_eq!(s.stat(&q).await.unwrap().count, 1);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_instance_times_out_instead_of_hanging() {
    let Some(srv) = common::server("a_frozen_instance_times_out").await else {
        return;
    };
    let s = common::store_with(
        common::builder([srv.url()])
            .response_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(500)),
    )
    .await;
    let mut events = s.events();
    let q = queue("frozen");
    s.attach(&q, &spec()).await.unwrap();
    srv.pause().unwrap();
    let r = tokio::time::timeout(common::DEADLINE, s.stat(&q)).await;
    if !matches!(r, Ok(Err(Error::Timeout { .. } | Error::Offline { .. }))) {
        srv.resume().unwrap();
        panic!("expected a Timeout within the deadline, got {r:?}");
    }
    assert_eq!(common::next_state(&mut events).await, StoreState::Offline);
    srv.resume().unwrap();
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    assert!(s.stat(&q).await.unwrap().exists);
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_while_the_server_is_down_then_coming_online() {
    let Some(mut srv) = common::server("connecting_while_the_server_is_down").await else {
        return;
    };
    srv.kill();
    let s = common::builder([srv.url()]).build().unwrap();
    let mut events = s.events();
    assert_eq!(s.connect().await.unwrap(), StoreState::Offline);
    assert_eq!(s.connect().await.unwrap(), StoreState::Offline, "connect again is a no-op");
    srv.restart().await.unwrap();
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    s.disconnect().await.unwrap();
    assert_eq!(common::next_state(&mut events).await, StoreState::Offline);
    s.disconnect().await.unwrap();
    assert_eq!(s.connect().await.unwrap(), StoreState::Online, "connect after disconnect");
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    common::stop(&s).await;
}
