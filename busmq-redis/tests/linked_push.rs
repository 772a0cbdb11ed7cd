//! Linked pushes (the producer's pipelined writes, `PipelinedPush`): a push that follows
//! another is written only right after it, with exactly the ids it proposes, and otherwise
//! refused with nothing written; small pushes are never linked, and a store that waits for
//! replicas does not offer the pipelined push at all.

mod common;

use busmq_core::store::{Link, NewEntry, PushBatch, TakeMode};
use busmq_core::support::now_micros;
use busmq_core::{QueueName, Store};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use common::{queue, spec};
use std::time::Duration;

fn entries(tag: &str, n: usize) -> Vec<NewEntry> {
    (0..n).map(|i| NewEntry::new(format!("{tag}{i}"))).collect()
}

async fn linked(
    s: &RedisStore,
    q: &QueueName,
    generation: u64,
    e: &[NewEntry],
    link: Link,
) -> Option<u64> {
    let pipelined = s.pipelined().expect("a Redis store pipelines pushes");
    pipelined.push_linked(q, &PushBatch::new(generation, &spec(), e), link).await.unwrap()
}

/// The queue's payloads, in order (taken at most once).
async fn bodies(s: &RedisStore, q: &QueueName) -> Vec<String> {
    let taken = s.take(q, 100_000, TakeMode::AtMostOnce).await.unwrap();
    taken.entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect()
}

/// A server, a store on it and a queue attached there (with its generation), or `None` when
/// redis-server is missing.
async fn attached(test: &str) -> Option<(RedisServer, RedisStore, QueueName, u64)> {
    let srv = common::server(test).await?;
    let s = common::store(&[&srv]).await;
    let q = queue(test);
    let generation = s.attach(&q, &spec()).await.unwrap().generation;
    Some((srv, s, q, generation))
}

fn expected(parts: &[(&str, usize)]) -> Vec<String> {
    parts.iter().flat_map(|&(tag, n)| (0..n).map(move |i| format!("{tag}{i}"))).collect()
}

#[tokio::test]
async fn a_push_is_written_only_right_after_the_push_it_follows() {
    let Some((_srv, s, q, generation)) = attached("linked_follow").await else { return };
    let link = |mark, follows, first| Link { mark, follows, first };
    let t0 = now_micros();
    // The first of a chain is written, with the ids it proposes.
    assert_eq!(linked(&s, &q, generation, &entries("a", 40), link(11, None, t0)).await, Some(t0));
    // One following a push that was never written: refused, nothing written.
    let b = entries("b", 40);
    assert_eq!(linked(&s, &q, generation, &b, link(12, Some(99), t0 + 40)).await, None);
    // One following the last linked push: written with exactly its ids.
    let c = t0 + 1_000;
    assert_eq!(linked(&s, &q, generation, &entries("c", 40), link(13, Some(11), c)).await, Some(c));
    // A plain push in between (another producer's) leaves the link as it was.
    let p = s.push(&q, &PushBatch::new(generation, &spec(), &entries("p", 40))).await.unwrap();
    assert!(p > c + 39, "{p} after {c}");
    let d = now_micros().max(p + 40) + 1_000;
    assert_eq!(linked(&s, &q, generation, &entries("d", 40), link(14, Some(13), d)).await, Some(d));
    // Another chain's linked push takes the link: a push following 14 is refused now.
    let e = now_micros().max(d + 40) + 1_000;
    assert_eq!(linked(&s, &q, generation, &entries("e", 40), link(21, None, e)).await, Some(e));
    let late = now_micros().max(e + 40) + 1_000;
    assert_eq!(linked(&s, &q, generation, &entries("x", 40), link(15, Some(14), late)).await, None);
    // A follower whose ids are not above the queue's last is refused (its ids are exact).
    assert_eq!(linked(&s, &q, generation, &entries("y", 40), link(22, Some(21), e)).await, None);
    // So is a follower too small to be linked, even right after the push it follows.
    assert_eq!(linked(&s, &q, generation, &entries("z", 31), link(23, Some(21), late)).await, None);
    // A push without `follows` always answers, whatever its ids and size.
    let f = linked(&s, &q, generation, &entries("f", 3), link(24, None, 1)).await.expect("written");
    assert!(f > e + 39, "{f} after {e}");
    let order = [("a", 40), ("c", 40), ("p", 40), ("d", 40), ("e", 40), ("f", 3)];
    assert_eq!(bodies(&s, &q).await, expected(&order));
}

#[tokio::test]
async fn a_refused_follower_leaves_the_queue_as_it_was() {
    let Some((srv, s, q, generation)) = attached("linked_refused").await else { return };
    let t0 = now_micros();
    let first = Link { mark: 1, follows: None, first: t0 };
    assert_eq!(linked(&s, &q, generation, &entries("a", 50), first).await, Some(t0));
    let mut raw = common::raw(&srv).await;
    let prefix = format!("busmq:{{{}}}:", q.as_str());
    let before = common::snapshot(&mut raw, &prefix).await;
    let stray = Link { mark: 2, follows: Some(7), first: t0 + 50 };
    assert_eq!(linked(&s, &q, generation, &entries("b", 50), stray).await, None);
    let after = common::snapshot(&mut raw, &prefix).await;
    assert_eq!(after, before, "a refused push wrote nothing");
    // The refused batch, sent again unlinked, lands after everything before it.
    s.push(&q, &PushBatch::new(generation, &spec(), &entries("b", 50))).await.unwrap();
    assert_eq!(bodies(&s, &q).await, expected(&[("a", 50), ("b", 50)]));
}

#[tokio::test]
async fn a_store_that_waits_for_replicas_does_not_pipeline() {
    let Some(srv) = common::server("linked_replicas").await else { return };
    let plain = common::store(&[&srv]).await;
    assert!(plain.pipelined().is_some());
    let builder = common::builder([srv.url()]).replicas_ack(1, Duration::from_secs(1));
    let waiting = common::store_with(builder).await;
    assert!(waiting.pipelined().is_none(), "each of its pushes is one script call and WAIT");
}
