//! Store contract: delayed messages (SPEC P8). A scheduled entry is not counted, taken or read
//! until due; takes, reads and stats promote the due ones with fresh ids in due order (ties in
//! schedule order) and report when the next one is due; cancel withdraws a waiting entry once;
//! a closed generation is refused; the schedule expires, closes and flushes with the queue.

use super::fixtures::{AMO, connected, entries, ids, payloads, queue, reliable, spec, spec_ttl};
use crate::backend::Backend;
use busmq_core::Error;
use busmq_core::store::{NewEntry, Position, QueueSpec, ScheduleBatch, Scheduled, Store};
use busmq_core::{QueueName, Result};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

async fn schedule(
    store: &dyn Store,
    q: &QueueName,
    generation: u64,
    spec: &QueueSpec,
    payload: &str,
    delay: Duration,
) -> Result<Scheduled> {
    let entry = NewEntry::new(payload.to_string());
    store.schedule(q, &ScheduleBatch::new(generation, spec, &entry, delay)).await
}

async fn push(store: &dyn Store, q: &QueueName, generation: u64, payload: &str) -> u64 {
    let sp = spec();
    let batch = entries(&[payload]);
    store.push(q, &busmq_core::store::PushBatch::new(generation, &sp, &batch)).await.unwrap()
}

/// P8: nothing is visible before due; takes report the earliest due time; due entries are
/// promoted in due order (ties in schedule order) with ids above everything pushed before,
/// and appear to reads after the entries already there.
pub async fn store_scheduled_entries_are_promoted_in_due_order_with_fresh_ids(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-delayed"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    schedule(&*store, &q, generation, &sp, "late", 600 * MS).await.unwrap();
    schedule(&*store, &q, generation, &sp, "a", 300 * MS).await.unwrap();
    schedule(&*store, &q, generation, &sp, "b", 300 * MS).await.unwrap();
    let first = push(&*store, &q, generation, "p").await;
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.delayed), (1, 3));
    let read = store.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["p"], "not readable before due");
    assert!(read.next_due.is_some_and(|d| d <= 300 * MS), "{:?}", read.next_due);
    let taken = store.take(&q, 10, AMO).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["p"], "not taken before due");
    assert!(taken.next_due.is_some_and(|d| d <= 300 * MS), "{:?}", taken.next_due);

    tokio::time::sleep(400 * MS).await;
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.delayed), (2, 1), "a stat promotes too");
    assert!(stat.next_due.is_some_and(|d| d <= 300 * MS), "{:?}", stat.next_due);
    let read = store.read(&q, Position::AfterId(first), 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["a", "b"], "a reader past p sees them after it");
    let taken = store.take(&q, 10, AMO).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["a", "b"]);
    let got = ids(&taken.entries);
    assert!(got[0] > first && got[1] == got[0] + 1, "fresh ids in due order: {got:?}");

    tokio::time::sleep(300 * MS).await;
    let taken = store.take(&q, 10, reliable(Duration::from_secs(30), 5)).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["late"], "a reliable take promotes too");
    assert!(taken.entries[0].id > got[1]);
    assert_eq!(taken.next_due, None, "nothing waits any more");
    assert_eq!(store.stat(&q).await.unwrap().delayed, 0);
}

/// P8: cancel withdraws a waiting entry once; not an entry that came due, nor one of another
/// incarnation.
pub async fn store_cancel_withdraws_only_waiting_entries(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-delayed-cancel"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let long = schedule(&*store, &q, generation, &sp, "long", 60_000 * MS).await.unwrap();
    let short = schedule(&*store, &q, generation, &sp, "short", 100 * MS).await.unwrap();
    let twin = schedule(&*store, &q, generation, &sp, "twin", 60_000 * MS).await.unwrap();
    assert!(store.cancel(&q, &long).await.unwrap());
    assert!(!store.cancel(&q, &long).await.unwrap(), "once");
    tokio::time::sleep(300 * MS).await;
    assert!(!store.cancel(&q, &short).await.unwrap(), "due: not waiting any more");
    let taken = store.take(&q, 10, AMO).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["short"]);
    assert_eq!(store.stat(&q).await.unwrap().delayed, 1, "the twin still waits");
    let other = Scheduled::new(twin.generation() + 1, twin.seq(), twin.due());
    assert!(!store.cancel(&q, &other).await.unwrap(), "another incarnation's handle");
    assert!(store.cancel(&q, &twin).await.unwrap());
}

/// P8, Q4, Q5, Q2: a closed generation cannot schedule; flush and close drop the schedule; the
/// schedule expires with the queue; a delay over the limit is refused.
pub async fn store_schedule_follows_the_queue_lifecycle(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-delayed-life"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let far = busmq_core::MAX_DELAY + MS;
    let refused = schedule(&*store, &q, generation, &sp, "x", far).await;
    assert!(matches!(refused, Err(Error::InvalidOption { option: "delay", .. })), "{refused:?}");
    schedule(&*store, &q, generation, &sp, "x", 100 * MS).await.unwrap();
    store.flush(&q).await.unwrap();
    tokio::time::sleep(200 * MS).await;
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.delayed), (0, 0), "flushed");
    schedule(&*store, &q, generation, &sp, "y", 100 * MS).await.unwrap();
    assert!(store.close(&q, Some(generation)).await.unwrap());
    let closed = schedule(&*store, &q, generation, &sp, "z", 100 * MS).await;
    assert!(matches!(closed, Err(Error::Closed { .. })), "{closed:?}");
    let fresh = store.attach(&q, &sp).await.unwrap().generation;
    tokio::time::sleep(200 * MS).await;
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.delayed), (0, 0), "closed with the queue");

    let (e, short) = (queue("store-delayed-expiry"), spec_ttl(Duration::from_secs(1)));
    let generation = store.attach(&e, &short).await.unwrap().generation;
    schedule(&*store, &e, generation, &short, "w", 60_000 * MS).await.unwrap();
    store.detach(&e, generation).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stat = store.stat(&e).await.unwrap();
    assert!(!stat.exists && stat.delayed == 0, "expired with its queue: {stat:?}");
    let _ = fresh;
}
