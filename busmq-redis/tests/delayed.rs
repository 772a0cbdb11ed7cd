//! Delayed messages on a real redis-server (SPEC P8): they survive a kill -9 and restart with
//! AOF like any stored message, keep their due order, and a cancelled one stays cancelled.

mod common;

use busmq_core::{Bus, When};
use busmq_testkit::redis::RedisServer;
use common::DEADLINE;
use futures::StreamExt;
use std::time::Duration;

async fn bus(url: String) -> Bus {
    let store = common::builder(vec![url]).build().expect("valid options");
    let bus = Bus::new(store);
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("online");
    bus
}

/// With AOF (fsync always), scheduled messages outlive a kill -9 and a restart: each is
/// delivered once, not before its due time, in due order; the cancelled one never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_survive_a_restart_with_persistence() {
    if common::server("delayed_messages_survive_a_restart_with_persistence").await.is_none() {
        return;
    }
    let mut server = RedisServer::builder()
        .config("appendonly yes")
        .config("appendfsync always")
        .start()
        .await
        .expect("redis-server with AOF");
    let b = bus(server.url()).await;
    let q = b.queue(common::queue("delayed-aof")).unwrap();
    q.attach().await.unwrap();
    let start = tokio::time::Instant::now();
    let base = Duration::from_secs(3);
    let mut handles = Vec::new();
    // Scheduled in reverse: due order is the opposite of schedule order.
    for i in (0..20u32).rev() {
        handles
            .push(q.schedule(&i, When::After(base + Duration::from_millis(20) * i)).await.unwrap());
    }
    // Handles were pushed for 19, 18, ..., 0: index 10 is message 9.
    assert!(q.cancel_scheduled(&handles[10]).await.unwrap());
    assert_eq!(q.stat().await.unwrap().delayed, 19);

    server.kill();
    server.restart().await.expect("restart");
    let stat =
        common::eventually("the queue after the restart", || async { q.stat().await.ok() }).await;
    assert_eq!(stat.delayed, 19, "the schedule was persisted");

    let mut consumer = q.consume::<u32>().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 19 {
        let next = tokio::time::timeout(DEADLINE, consumer.next()).await;
        let d = next.expect("deliveries").expect("stream open").expect("decodes");
        assert!(start.elapsed() >= base, "delivered {:?} after scheduling", start.elapsed());
        got.push(*d.body());
    }
    let want: Vec<u32> = (0..20).filter(|&i| i != 9).collect();
    assert_eq!(got, want, "due order, the cancelled one left out");
    let extra = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await;
    assert!(extra.is_err(), "nothing more: {extra:?}");
    assert_eq!(q.stat().await.unwrap().delayed, 0);
}

/// Hostile data (SPEC E3): a member of the delayed set that busmq did not write is
/// `ForeignData` for that queue, and nothing is lost to it: the due messages beside it are all
/// still there once it is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_delayed_member_is_foreign_data_and_loses_nothing() {
    let Some(server) = common::server("a_foreign_delayed_member_is_foreign_data").await else {
        return;
    };
    let b = bus(server.url()).await;
    let name = common::queue("delayed-foreign");
    let q = b.queue(name.clone()).unwrap();
    q.attach().await.unwrap();
    for i in 0..3u32 {
        q.schedule(&i, When::After(Duration::from_millis(1))).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let key = format!("busmq:{{{}}}:d", name.as_str());
    let mut raw = common::raw(&server).await;
    let _: () =
        redis::cmd("ZADD").arg(&key).arg(0).arg("garbage").query_async(&mut raw).await.unwrap();
    match q.count().await {
        Err(busmq_core::Error::ForeignData { queue, .. }) => assert_eq!(queue, name.as_str()),
        other => panic!("expected ForeignData, got {other:?}"),
    }
    let left: u64 = redis::cmd("ZCARD").arg(&key).query_async(&mut raw).await.unwrap();
    assert_eq!(left, 4, "nothing removed by the refused promotion");
    let _: () = redis::cmd("ZREM").arg(&key).arg("garbage").query_async(&mut raw).await.unwrap();
    let mut consumer = q.consume::<u32>().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        let next = tokio::time::timeout(DEADLINE, consumer.next()).await.expect("in time");
        got.push(next.expect("open").expect("decodes").into_body());
    }
    assert_eq!(got, [0, 1, 2]);
}

/// A message past its due time counts as delivered (as on the memory store), even when more
/// than `PROMOTE_MAX` (1,000) came due at once and the promotion inside `cancel` stopped
/// before it: cancelling it then answers false and it is still delivered. (It answered true and
/// withdrew the message; found by review.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_due_message_beyond_the_promotion_cap_cannot_be_cancelled() {
    let Some(server) = common::server("a_past_due_message_beyond_the_cap").await else {
        return;
    };
    let b = bus(server.url()).await;
    let q = b.queue(common::queue("delayed-cap")).unwrap();
    q.attach().await.unwrap();
    const N: u32 = 1_050;
    let mut last = None;
    for i in 0..N {
        last = Some(q.schedule(&i, When::After(Duration::from_millis(300))).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!q.cancel_scheduled(&last.unwrap()).await.unwrap(), "it was due: delivered");
    let stat = common::eventually("every message promoted", || async {
        let stat = q.stat().await.ok()?;
        (stat.delayed == 0).then_some(stat)
    })
    .await;
    assert_eq!(stat.count, u64::from(N), "nothing was withdrawn");
}
