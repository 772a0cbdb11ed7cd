//! Store contract: at-most-once messages: push ids and batches, take order, maxsize (SPEC Q6,
//! Q8-Q10); restores are in `restore.rs`.

use super::fixtures::{
    AMO, SEC, connected, entries, exists, filled, gone, ids, maxsize, names, numbered, payloads,
    push, queue, reliable, spec, spec_ttl, try_push,
};
use crate::backend::Backend;
use busmq_core::Error;
use busmq_core::store::{DeadLetter, Entry, NewEntry, Taken};
use bytes::Bytes;
use std::sync::Arc;

/// Q6, Q9, Q10: a batch gets consecutive ids, later pushes larger ones; takes come out in push
/// order, whole or in pieces, with no delivery count; a take never waits.
pub async fn store_a_batch_gets_consecutive_ids_and_takes_come_out_in_push_order(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("order");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    let first = try_push(&*store, &q, generation, &spec(), &numbered(0..20)).await.unwrap();
    let second = try_push(&*store, &q, generation, &spec(), &numbered(20..45)).await.unwrap();
    assert!(second > first + 19, "ids keep increasing after a batch: {first} then {second}");
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.last_id), (45, Some(second + 24)));
    let mut all: Vec<Entry> = Vec::new();
    loop {
        let taken = store.take(&q, 7, AMO).await.unwrap();
        assert!(taken.dead.is_empty() && taken.foreign.is_empty());
        if taken.entries.is_empty() {
            break;
        }
        all.extend(taken.entries);
    }
    assert_eq!(payloads(&all), names(0..45));
    let expected: Vec<u64> = (first..first + 20).chain(second..second + 25).collect();
    assert_eq!(ids(&all), expected);
    assert!(all.iter().all(|e| e.deliveries == 0 && e.dead.is_none()));
    assert_eq!(store.stat(&q).await.unwrap().count, 0);
    assert!(store.take(&q, 10, AMO).await.unwrap().entries.is_empty(), "take never waits");
}

/// Q10: a take of nothing, or from a queue that does not exist, is empty in either mode and
/// creates nothing.
pub async fn store_take_of_zero_or_from_a_missing_queue_is_empty(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("zero");
    filled(&*store, &q, &spec(), &["a"]).await;
    assert!(store.take(&q, 0, AMO).await.unwrap().entries.is_empty());
    assert_eq!(store.stat(&q).await.unwrap().count, 1);
    let missing = queue("missing");
    assert_eq!(store.take(&missing, 5, AMO).await.unwrap(), Taken::default());
    assert_eq!(store.take(&missing, 5, reliable(5 * SEC, 3)).await.unwrap(), Taken::default());
    assert!(!exists(&*store, &missing).await, "a take creates nothing");
}

/// Q10: stores over the same data share queues, and each message goes to one taker only.
pub async fn store_two_stores_share_a_queue_and_each_message_goes_to_one_taker(
    backend: &dyn Backend,
) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("shared");
    filled(&*a, &q, &spec(), &["1", "2", "3", "4"]).await;
    let (from_a, from_b) = futures::join!(a.take(&q, 2, AMO), b.take(&q, 2, AMO));
    let mut got = payloads(&from_a.unwrap().entries);
    got.extend(payloads(&from_b.unwrap().entries));
    got.sort();
    assert_eq!(got, ["1", "2", "3", "4"]);
    assert_eq!(a.stat(&q).await.unwrap().count, 0);
}

/// Q2, Q6: a push to a queue that vanished (expired) creates it again from the pusher's spec,
/// with a new, larger generation.
pub async fn store_a_push_to_a_vanished_queue_creates_it_from_the_callers_spec(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("vanished");
    let old = store.attach(&q, &spec_ttl(SEC)).await.unwrap().generation;
    gone(&*store, &q).await;
    let pushers = maxsize(50);
    push(&*store, &q, old, &pushers, &["x"]).await;
    let stat = store.stat(&q).await.unwrap();
    assert!(stat.exists);
    assert!(stat.generation.unwrap() > old);
    assert_eq!((stat.count, stat.spec), (1, Some(pushers)));
}

/// Q6: a push needs at least one entry.
pub async fn store_an_empty_push_is_an_invalid_option(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("empty");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    let err = try_push(&*store, &q, generation, &spec(), &[]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "entries", .. }), "{err}");
}

/// Q8, Q9: a batch that would overflow the stored `maxsize` is refused whole with `QueueFull`,
/// writing nothing (no entry, no id), whatever spec the pusher passes; pending (reliable)
/// messages do not count against the limit.
pub async fn store_a_batch_that_would_overflow_maxsize_is_refused_whole(backend: &dyn Backend) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("full");
    let generation = filled(&*a, &q, &maxsize(3), &["1", "2"]).await;
    let before = a.stat(&q).await.unwrap();
    let err = try_push(&*b, &q, generation, &spec(), &entries(&["3", "4"])).await.unwrap_err();
    assert!(matches!(&err, Error::QueueFull { queue, maxsize: 3 } if queue == q.as_str()), "{err}");
    let after = a.stat(&q).await.unwrap();
    assert_eq!((after.count, after.last_id), (before.count, before.last_id), "nothing written");
    push(&*b, &q, generation, &spec(), &["3"]).await;
    let err = try_push(&*b, &q, generation, &spec(), &entries(&["4"])).await.unwrap_err();
    assert!(matches!(err, Error::QueueFull { .. }), "{err}");
    a.take(&q, 1, reliable(60 * SEC, 5)).await.unwrap();
    push(&*b, &q, generation, &spec(), &["4"]).await;
    assert_eq!(a.stat(&q).await.unwrap().count, 3);
}

/// Q8: a batch too big for the `maxsize` of the queue it would create creates nothing.
pub async fn store_a_batch_too_big_for_a_new_queue_creates_nothing(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("full-new");
    let err = try_push(&*store, &q, 1, &maxsize(1), &entries(&["1", "2"])).await.unwrap_err();
    assert!(matches!(err, Error::QueueFull { maxsize: 1, .. }), "{err}");
    assert!(!exists(&*store, &q).await);
}

/// Q6: what a push stores comes back unchanged: any bytes as payload, and the dead-letter
/// information of entries pushed to a dead-letter queue.
pub async fn store_payloads_and_dead_letter_information_survive_storage(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("dlq");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    let info = Arc::new(DeadLetter {
        queue: "jobs".into(),
        id: 42,
        deliveries: 5,
        reason: "rejected: bad:input\n\"quoted\"".into(),
    });
    let dead = NewEntry { dead: Some(info), ..NewEntry::new(&b"\x00\xffbinary:\r\n"[..]) };
    let plain = NewEntry::new(Bytes::from((0..=255u8).collect::<Vec<_>>()));
    let batch = [dead.clone(), plain.clone()];
    try_push(&*store, &q, generation, &spec(), &batch).await.unwrap();
    let taken = store.take(&q, 2, AMO).await.unwrap().entries;
    assert_eq!((&taken[0].payload, &taken[0].dead), (&dead.payload, &dead.dead));
    assert_eq!((&taken[1].payload, &taken[1].dead), (&plain.payload, &None));
}
