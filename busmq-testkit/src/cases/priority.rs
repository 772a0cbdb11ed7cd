//! Priority cases (SPEC P12): higher levels are taken first and push order holds within a
//! level; each delivery tells the level and ordering key it was pushed with, also when pushes
//! of different levels were written together or the message was scheduled; invalid levels and
//! keys, and either on a queue with retention, are refused and write nothing.

use crate::backend::Backend;
use crate::support::{bus, next, take, unique};
use busmq_core::{
    AttachOptions, ConsumeOptions, Error, Position, PushOptions, Queue, ReliableOptions, When,
};
use std::time::Duration;

async fn attached(b: &busmq_core::Bus, label: &str) -> Queue {
    let q = b.queue(unique(label)).unwrap();
    q.attach().await.unwrap();
    q
}

fn level(n: u8) -> PushOptions {
    PushOptions::new().priority(n)
}

/// P12: at most once and reliably, higher levels come first, push order within a level, and
/// each delivery tells its level.
pub async fn priorities_are_taken_highest_first_and_in_push_order_within_a_level(
    backend: &dyn Backend,
) {
    let b = bus(backend).await;
    let pushed = [("a", 0), ("b", 9), ("c", 5), ("d", 9), ("e", 0), ("f", 5), ("g", 1)];
    let want = ["b", "d", "c", "f", "g", "a", "e"];
    for reliable in [false, true] {
        let q = attached(&b, "priority").await;
        for (body, n) in pushed {
            q.push_with(&body, level(n)).await.unwrap();
        }
        let options = match reliable {
            true => ConsumeOptions::new().reliable(ReliableOptions::default()),
            false => ConsumeOptions::new(),
        };
        let mut consumer = q.consume_with::<String>(options).await.unwrap();
        let got = take(&mut consumer, want.len(), "prioritized messages").await;
        let got: Vec<_> = got.into_iter().map(|d| d.unwrap()).collect();
        let bodies: Vec<&str> = got.iter().map(|d| d.body().as_str()).collect();
        assert_eq!(bodies, want, "reliable: {reliable}");
        let levels: Vec<u8> = got.iter().map(|d| d.priority()).collect();
        assert_eq!(levels, [9, 9, 5, 5, 1, 0, 0]);
        for d in got {
            assert_eq!(d.ordering_key(), None);
            d.ack().await.unwrap();
        }
    }
}

/// P12, P11, Q6: pushes made together are written with their own level and key each (the
/// producer writes pushes of any levels and keys in one store call, each entry carrying its
/// own), and ids keep push order.
pub async fn concurrent_pushes_keep_their_own_level_and_key(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "priority-coalesce").await;
    let route = |i: u8| (i % 3 * 4, (i % 4 == 0).then(|| format!("key{}", i % 8)));
    let pushes: Vec<_> = (0u8..24)
        .map(|i| {
            let (n, key) = route(i);
            let options = key.into_iter().fold(level(n), PushOptions::ordering_key);
            q.push_raw_with(vec![i], options)
        })
        .collect();
    let ids: Vec<u64> = futures::future::try_join_all(pushes).await.unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in push order: {ids:?}");
    let read = q.peek(Position::Start, 100).await.unwrap();
    assert_eq!(read.entries.len(), 24, "every message is ready, waiting ones included");
    for entry in &read.entries {
        let i = entry.payload[0];
        let (n, key) = route(i);
        assert_eq!((entry.priority, entry.ordering_key.as_deref()), (n, key.as_deref()), "{i}");
    }
}

/// P8, P12, P11: a message scheduled with a level and a key comes due with them.
pub async fn a_scheduled_message_comes_due_with_its_level_and_key(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "priority-scheduled").await;
    let options = level(7).ordering_key("k");
    q.schedule_with(&"later", When::After(Duration::from_millis(300)), options).await.unwrap();
    q.push(&"now").await.unwrap();
    let reliable = ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut consumer = q.consume_with::<String>(reliable).await.unwrap();
    let now = next(&mut consumer, "the pushed message").await.unwrap();
    assert_eq!((now.body().as_str(), now.priority(), now.ordering_key()), ("now", 0, None));
    now.ack().await.unwrap();
    let later = next(&mut consumer, "the scheduled message").await.unwrap();
    assert_eq!(later.body(), "later");
    assert_eq!((later.priority(), later.ordering_key()), (7, Some("k")));
    later.ack().await.unwrap();
}

fn refused<T: std::fmt::Debug>(result: busmq_core::Result<T>) -> &'static str {
    match result {
        Err(Error::InvalidOption { option, .. }) => option,
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}

/// P12, P11, E1: a level above 9, an empty, oversize or NUL-holding key are `InvalidOption`
/// naming the option, for pushes and schedules, and nothing is written; with a dedupe key
/// they are fine.
pub async fn invalid_priorities_and_ordering_keys_are_refused_and_nothing_is_written(
    backend: &dyn Backend,
) {
    let b = bus(backend).await;
    let q = attached(&b, "priority-invalid").await;
    assert_eq!(refused(q.push_with(&"x", level(10)).await), "priority");
    let keyed = |k: String| PushOptions::new().ordering_key(k);
    assert_eq!(refused(q.push_with(&"x", keyed(String::new())).await), "ordering_key");
    assert_eq!(refused(q.push_with(&"x", keyed("k".repeat(1025))).await), "ordering_key");
    assert_eq!(refused(q.push_with(&"x", keyed("a\0b".into())).await), "ordering_key");
    let soon = When::After(Duration::from_millis(10));
    assert_eq!(refused(q.schedule_with(&"x", soon, level(200)).await), "priority");
    assert_eq!(refused(q.schedule_with(&"x", soon, keyed(String::new())).await), "ordering_key");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.delayed, stat.last_id), (0, 0, None), "nothing written");
    let both = level(9).ordering_key("k".repeat(1024)).dedupe("d");
    let id = q.push_with(&"x", both.clone()).await.unwrap();
    assert_eq!(q.push_with(&"x", both).await.unwrap(), id, "dedupe still answers");
}

/// P12, P11, Q14: a queue with retention (replay) refuses levels and keys, for pushes and
/// schedules; plain pushes are fine.
pub async fn a_queue_with_retention_refuses_priorities_and_ordering_keys(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("priority-retained")).unwrap();
    q.attach_with(AttachOptions::new().retain_count(10)).await.unwrap();
    assert_eq!(refused(q.push_with(&"x", level(1)).await), "priority");
    let keyed = PushOptions::new().ordering_key("k");
    assert_eq!(refused(q.push_with(&"x", keyed.clone()).await), "ordering_key");
    let soon = When::After(Duration::from_millis(10));
    assert_eq!(refused(q.schedule_with(&"x", soon, keyed).await), "ordering_key");
    q.push_with(&"plain", level(0)).await.unwrap();
    assert_eq!(q.stat().await.unwrap().count, 1);
}
