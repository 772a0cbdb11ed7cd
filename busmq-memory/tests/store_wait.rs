//! `take_wait`: an idle at-most-once take waits inside the store for a push, gives up at its
//! deadline, and returns at once (with nothing taken lost) when cancelled.

mod common;

use busmq_core::Store;
use busmq_core::store::NewEntry;
use common::{SEC, consumer, q, spec};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[tokio::test(start_paused = true)]
async fn a_waiting_take_returns_as_soon_as_something_is_pushed() {
    let store = Arc::new(common::store().await);
    let name = q("wait-push");
    store.attach(&name, &spec()).await.unwrap();
    assert!(store.waits_natively());
    let cancel = Arc::new(Notify::new());
    let waiter = {
        let (store, name, cancel) = (store.clone(), name.clone(), cancel.clone());
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let taken = store.take_wait(&name, &consumer(), 10, 30 * SEC, &cancel).await.unwrap();
            (taken, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let generation = store.stat(&name).await.unwrap().generation.unwrap();
    store.push(&name, generation, &spec(), &[NewEntry::new("hello")]).await.unwrap();
    let (taken, waited) = waiter.await.unwrap();
    assert_eq!(taken.entries.len(), 1);
    assert_eq!(&taken.entries[0].payload[..], b"hello");
    assert!(waited < 30 * SEC, "it did not wait for the deadline: {waited:?}");
    assert_eq!(store.stat(&name).await.unwrap().count, 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_take_gives_up_at_its_deadline_and_on_cancel() {
    let store = common::store().await;
    let name = q("wait-empty");
    store.attach(&name, &spec()).await.unwrap();
    let cancel = Notify::new();
    let started = tokio::time::Instant::now();
    let taken = store.take_wait(&name, &consumer(), 10, 2 * SEC, &cancel).await.unwrap();
    assert!(taken.entries.is_empty());
    assert!(started.elapsed() >= 2 * SEC);
    cancel.notify_one();
    let started = tokio::time::Instant::now();
    let taken = store.take_wait(&name, &consumer(), 10, 30 * SEC, &cancel).await.unwrap();
    assert!(taken.entries.is_empty());
    assert!(started.elapsed() < SEC, "a cancelled wait returns at once");
}

#[tokio::test(start_paused = true)]
async fn a_waiting_take_takes_what_is_already_there_without_waiting() {
    let store = common::store().await;
    let name = q("wait-ready");
    let generation = store.attach(&name, &spec()).await.unwrap().generation;
    store
        .push(&name, generation, &spec(), &[NewEntry::new("a"), NewEntry::new("b")])
        .await
        .unwrap();
    let taken = store.take_wait(&name, &consumer(), 1, 30 * SEC, &Notify::new()).await.unwrap();
    assert_eq!(taken.entries.len(), 1, "max is honoured");
    assert_eq!(store.stat(&name).await.unwrap().count, 1);
}
