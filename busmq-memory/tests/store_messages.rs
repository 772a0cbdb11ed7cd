//! Store tests for at-most-once messages: push ids and batches, take order, maxsize, restore.

mod common;

use busmq_core::store::{Entry, QueueSpec, TakeMode};
use busmq_core::{Error, Store};
use busmq_memory::Memory;
use common::*;
use tokio::time::advance;

#[tokio::test]
async fn a_batch_gets_consecutive_ids_and_takes_come_out_in_push_order() {
    let store = store().await;
    let queue = q("order");
    let generation = store.attach(&queue, &spec()).await.unwrap().generation;
    let first = store.push(&queue, generation, &spec(), &entries(&["a", "b", "c"])).await.unwrap();
    let next = store.push(&queue, generation, &spec(), &entries(&["d"])).await.unwrap();
    assert!(next > first + 2, "ids keep increasing after a batch");
    let taken = store.take(&queue, &consumer(), 3, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["a", "b", "c"]);
    assert_eq!(ids(&taken.entries), [first, first + 1, first + 2]);
    assert_eq!(deliveries(&taken.entries), [0, 0, 0]);
    assert!(taken.dead.is_empty());
    let rest = store.take(&queue, &consumer(), 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&rest.entries), ["d"]);
    let none = store.take(&queue, &consumer(), 10, TakeMode::AtMostOnce).await.unwrap();
    assert!(none.entries.is_empty(), "take never waits");
    assert_eq!(store.stat(&queue).await.unwrap().count, 0);
}

#[tokio::test]
async fn take_of_zero_or_from_a_missing_queue_is_empty() {
    let store = store().await;
    let queue = q("zero");
    filled(&store, &queue, &spec(), &["a"]).await;
    assert!(
        store.take(&queue, &consumer(), 0, TakeMode::AtMostOnce).await.unwrap().entries.is_empty()
    );
    let missing = store.take(&q("nope"), &consumer(), 5, reliable(SEC, 3)).await.unwrap();
    assert_eq!(missing, Default::default());
    assert!(!store.stat(&q("nope")).await.unwrap().exists, "take creates nothing");
}

#[tokio::test]
async fn two_stores_of_one_memory_share_queues_and_each_message_goes_to_one_taker() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("shared");
    filled(&a, &queue, &spec(), &["1", "2", "3", "4"]).await;
    let from_b = b.take(&queue, &consumer(), 2, TakeMode::AtMostOnce).await.unwrap();
    let from_a = a.take(&queue, &consumer(), 5, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&from_b.entries), ["1", "2"]);
    assert_eq!(payloads(&from_a.entries), ["3", "4"]);
}

#[tokio::test(start_paused = true)]
async fn a_push_to_a_vanished_queue_creates_it_from_the_callers_spec() {
    let store = store().await;
    let queue = q("vanished");
    let spec = spec_ttl(SEC);
    let old = store.attach(&queue, &spec).await.unwrap().generation;
    advance(SEC).await;
    store.push(&queue, old, &spec, &entries(&["x"])).await.unwrap();
    let stat = store.stat(&queue).await.unwrap();
    assert!(stat.exists);
    assert!(stat.generation.unwrap() > old);
    assert_eq!((stat.count, stat.spec), (1, Some(spec)));
}

#[tokio::test]
async fn an_empty_push_is_an_invalid_option() {
    let store = store().await;
    let err = store.push(&q("empty"), 1, &spec(), &[]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "entries", .. }), "{err}");
}

#[tokio::test]
async fn a_batch_that_would_overflow_maxsize_is_refused_whole() {
    let memory = Memory::new();
    let (a, b) = (connected(&memory).await, connected(&memory).await);
    let queue = q("full");
    let limited = QueueSpec { maxsize: Some(3), ..spec() };
    let generation = filled(&a, &queue, &limited, &["1", "2"]).await;
    let before = a.stat(&queue).await.unwrap();
    // The stored limit binds every client, whatever spec it passes.
    let err = b.push(&queue, generation, &spec(), &entries(&["3", "4"])).await.unwrap_err();
    assert!(matches!(&err, Error::QueueFull { queue, maxsize: 3 } if queue == "full"), "{err}");
    let after = a.stat(&queue).await.unwrap();
    assert_eq!(after, before, "nothing of the refused batch was written, not even an id");
    b.push(&queue, generation, &spec(), &entries(&["3"])).await.unwrap();
    let err = b.push(&queue, generation, &spec(), &entries(&["4"])).await.unwrap_err();
    assert!(matches!(err, Error::QueueFull { .. }));
    // Pending (reliable) messages do not count against maxsize.
    a.take(&queue, &consumer(), 1, reliable(SEC, 5)).await.unwrap();
    b.push(&queue, generation, &spec(), &entries(&["4"])).await.unwrap();
}

#[tokio::test]
async fn a_batch_too_big_for_a_new_queue_creates_nothing() {
    let store = store().await;
    let queue = q("full-new");
    let limited = QueueSpec { maxsize: Some(1), ..spec() };
    let err = store.push(&queue, 1, &limited, &entries(&["1", "2"])).await.unwrap_err();
    assert!(matches!(err, Error::QueueFull { maxsize: 1, .. }), "{err}");
    assert!(!store.stat(&queue).await.unwrap().exists);
}

#[tokio::test]
async fn restore_puts_entries_back_at_the_head_in_order_ignoring_maxsize() {
    let store = store().await;
    let queue = q("restore");
    let limited = QueueSpec { maxsize: Some(4), ..spec() };
    let generation = filled(&store, &queue, &limited, &["1", "2", "3", "4"]).await;
    let taken = store.take(&queue, &consumer(), 2, TakeMode::AtMostOnce).await.unwrap();
    store.push(&queue, generation, &limited, &entries(&["5", "6"])).await.unwrap();
    store.restore(&queue, &limited, &taken.entries).await.unwrap();
    assert_eq!(store.stat(&queue).await.unwrap().count, 6, "restore ignores maxsize");
    let all = store.take(&queue, &consumer(), 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&all.entries), ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(all.entries[..2], taken.entries[..], "restored entries keep id and payload");
}

#[tokio::test]
async fn restores_from_several_consumers_keep_the_original_order() {
    let store = store().await;
    let queue = q("restore-many");
    filled(&store, &queue, &spec(), &["1", "2", "3", "4", "5"]).await;
    let first = store.take(&queue, &consumer(), 2, TakeMode::AtMostOnce).await.unwrap();
    let second = store.take(&queue, &consumer(), 2, TakeMode::AtMostOnce).await.unwrap();
    store.restore(&queue, &spec(), &second.entries).await.unwrap();
    store.restore(&queue, &spec(), &first.entries).await.unwrap();
    let all = store.take(&queue, &consumer(), 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&all.entries), ["1", "2", "3", "4", "5"]);
}

#[tokio::test(start_paused = true)]
async fn restore_recreates_a_vanished_queue_but_not_a_closed_one() {
    let store = store().await;
    let queue = q("restore-gone");
    let spec = spec_ttl(SEC);
    filled(&store, &queue, &spec, &["a", "b"]).await;
    let taken = store.take(&queue, &consumer(), 2, TakeMode::AtMostOnce).await.unwrap();
    advance(SEC).await;
    assert!(!store.stat(&queue).await.unwrap().exists);
    store.restore(&queue, &spec, &taken.entries).await.unwrap();
    let stat = store.stat(&queue).await.unwrap();
    assert!(stat.exists);
    assert_eq!(stat.count, 2);

    let taken = store.take(&queue, &consumer(), 2, TakeMode::AtMostOnce).await.unwrap();
    store.close(&queue, None).await.unwrap();
    let err = store.restore(&queue, &spec, &taken.entries).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    assert!(!store.stat(&queue).await.unwrap().exists);
    store.restore(&queue, &spec, &[] as &[Entry]).await.unwrap();

    // A later incarnation that merely expired is recreated again, tombstone or not.
    store.attach(&queue, &spec).await.unwrap();
    advance(SEC).await;
    store.restore(&queue, &spec, &taken.entries).await.unwrap();
    assert_eq!(store.stat(&queue).await.unwrap().count, 2);
}

#[tokio::test]
async fn payloads_are_shared_not_copied() {
    let store = store().await;
    let queue = q("zero-copy");
    let payload = bytes::Bytes::from(vec![7u8; 1024]);
    let generation = store.attach(&queue, &spec()).await.unwrap().generation;
    let entry = busmq_core::store::NewEntry::new(payload.clone());
    store.push(&queue, generation, &spec(), &[entry]).await.unwrap();
    let taken = store.take(&queue, &consumer(), 1, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(taken.entries[0].payload.as_ptr(), payload.as_ptr());
}
