//! The notice lease against a real redis-server (see lua/lib.lua): a push publishes its notice
//! only while a consumer that waits for notices took or read short, so a consumer blocked in
//! `BLMPOP` (every channel message, every paced at-most-once queue) costs no `PUBLISH`, while
//! reliable and replay consumers, which wait for notices, still get one for every push.

mod common;

use busmq_core::Store;
use busmq_core::store::{NewEntry, Position, PushBatch, Receipt, TakeMode};
use common::{queue, spec};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How many `PUBLISH` calls the server has run (INFO commandstats, scripts included).
async fn publishes(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn one(text: &str) -> Vec<NewEntry> {
    vec![NewEntry::new(text.to_string())]
}

/// Returns once a client of the server is blocked (the consumer's `BLMPOP`), or after 2 s.
async fn until_blocked(conn: &mut redis::aio::MultiplexedConnection) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let info: String = redis::cmd("INFO").arg("clients").query_async(conn).await.unwrap();
        let blocked = info
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if blocked > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Pushes to a queue nobody waits on, and pushes that wake a consumer blocked in `BLMPOP`,
/// publish nothing; after a reliable take or a replay read came back short, every push does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_publish_only_while_a_consumer_waits_for_notices() {
    let Some(srv) = common::server("notice_lease").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut conn = common::raw(&srv).await;
    let sp = spec();

    // Nobody waits: a watch alone (every attached handle has one) asks for nothing.
    let q = queue("lease_idle");
    let att = s.attach(&q, &sp).await.unwrap();
    let _watch = s.watch(&q).await.unwrap();
    let before = publishes(&mut conn).await;
    for i in 0..5 {
        s.push(&q, &PushBatch::new(att.generation, &sp, &one(&format!("m{i}")))).await.unwrap();
    }
    assert_eq!(publishes(&mut conn).await - before, 0, "no waiter, no notice");

    // An at-most-once consumer blocked in BLMPOP gets its message without a notice.
    let q = queue("lease_blocked");
    let att = s.attach(&q, &sp).await.unwrap();
    let blocking = s.blocking().expect("a single fixed instance can block");
    let cancel = Notify::new();
    let mut resume = Receipt::none();
    let before = publishes(&mut conn).await;
    for i in 0..5 {
        let waiting = blocking.take_wait(&q, 10, Duration::from_secs(5), &cancel, &resume);
        let pushing = async {
            until_blocked(&mut conn).await;
            let batch = one(&format!("b{i}"));
            s.push(&q, &PushBatch::new(att.generation, &sp, &batch)).await.unwrap()
        };
        let (taken, _) = tokio::join!(waiting, pushing);
        let taken = taken.unwrap();
        assert_eq!(taken.entries.len(), 1, "round {i}: {taken:?}");
        resume = taken.resume;
    }
    assert_eq!(publishes(&mut conn).await - before, 0, "a blocked pop needs no notice");

    // A reliable take that came back short: the next pushes are told.
    let q = queue("lease_reliable");
    let att = s.attach(&q, &sp).await.unwrap();
    let reliable = TakeMode::Reliable { visibility: Duration::from_secs(30), max_deliveries: 5 };
    assert!(s.take(&q, 10, reliable).await.unwrap().entries.is_empty());
    let before = publishes(&mut conn).await;
    for i in 0..3 {
        s.push(&q, &PushBatch::new(att.generation, &sp, &one(&format!("r{i}")))).await.unwrap();
    }
    assert_eq!(publishes(&mut conn).await - before, 3, "a waiting reliable consumer hears each");

    // So is a replay reader at the end of its queue.
    let q = queue("lease_replay");
    let att = s.attach(&q, &sp).await.unwrap();
    assert!(s.read(&q, Position::Start, 10).await.unwrap().entries.is_empty());
    let before = publishes(&mut conn).await;
    s.push(&q, &PushBatch::new(att.generation, &sp, &one("p"))).await.unwrap();
    assert_eq!(publishes(&mut conn).await - before, 1, "a replay reader at the end hears it");
    common::stop(&s).await;
}
