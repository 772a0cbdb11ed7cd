//! Store tests for replay reads: every `Position`, batch limits, `last_id`, and retention by
//! count and by age (on push, read and take).

mod common;

use busmq_core::Store;
use busmq_core::store::{Position, QueueSpec, Retention, TakeMode};
use common::*;
use std::time::Duration;
use tokio::time::advance;

#[tokio::test]
async fn reads_start_where_the_position_says_and_remove_nothing() {
    let store = store().await;
    let queue = q("replay");
    filled(&store, &queue, &spec(), &["a", "b", "c", "d", "e"]).await;
    let all = store.read(&queue, Position::Start, 100).await.unwrap();
    assert_eq!(payloads(&all.entries), ["a", "b", "c", "d", "e"]);
    assert_eq!(deliveries(&all.entries), [0; 5]);
    let id = ids(&all.entries);
    assert_eq!(all.last_id, Some(id[4]));

    let read = |from, max| {
        let store = &store;
        let queue = &queue;
        async move { payloads(&store.read(queue, from, max).await.unwrap().entries) }
    };
    assert_eq!(read(Position::Start, 2).await, ["a", "b"]);
    assert_eq!(read(Position::Index(0), 1).await, ["a"]);
    assert_eq!(read(Position::Index(3), 10).await, ["d", "e"]);
    assert!(read(Position::Index(5), 10).await.is_empty());
    assert!(read(Position::Index(u64::MAX), 10).await.is_empty());
    assert_eq!(read(Position::FromId(id[2]), 10).await, ["c", "d", "e"]);
    assert_eq!(read(Position::FromId(0), 1).await, ["a"]);
    assert_eq!(read(Position::AfterId(id[2]), 10).await, ["d", "e"]);
    assert!(read(Position::AfterId(id[4]), 10).await.is_empty());
    assert!(read(Position::Start, 0).await.is_empty());

    let end = store.read(&queue, Position::End, 10).await.unwrap();
    assert!(end.entries.is_empty());
    assert_eq!(end.last_id, Some(id[4]), "End gives the id to continue after");
    assert_eq!(store.stat(&queue).await.unwrap().count, 5, "reads remove nothing");
}

#[tokio::test]
async fn a_cursor_continuing_after_the_last_id_sees_only_new_messages() {
    let store = store().await;
    let queue = q("cursor");
    let generation = filled(&store, &queue, &spec(), &["old"]).await;
    let end = store.read(&queue, Position::End, 10).await.unwrap();
    store.push(&queue, generation, &spec(), &entries(&["new1", "new2"])).await.unwrap();
    let after = Position::AfterId(end.last_id.unwrap());
    let batch = store.read(&queue, after, 1).await.unwrap();
    assert_eq!(payloads(&batch.entries), ["new1"]);
    let next = Position::AfterId(batch.entries[0].id);
    assert_eq!(payloads(&store.read(&queue, next, 10).await.unwrap().entries), ["new2"]);
}

#[tokio::test]
async fn reading_a_missing_or_empty_queue_gives_nothing() {
    let store = store().await;
    let missing = store.read(&q("missing"), Position::Start, 10).await.unwrap();
    assert_eq!(missing, Default::default());
    let queue = q("empty");
    store.attach(&queue, &spec()).await.unwrap();
    assert_eq!(store.read(&queue, Position::End, 10).await.unwrap(), Default::default());
}

#[tokio::test]
async fn retention_by_count_drops_the_oldest_on_push() {
    let store = store().await;
    let queue = q("max-len");
    let spec = QueueSpec {
        retention: Retention { max_len: Some(3), max_age: None },
        ..QueueSpec::default()
    };
    let generation = filled(&store, &queue, &spec, &["1", "2"]).await;
    let first = store.read(&queue, Position::Start, 1).await.unwrap().entries[0].id;
    store.push(&queue, generation, &spec, &entries(&["3", "4", "5"])).await.unwrap();
    assert_eq!(store.stat(&queue).await.unwrap().count, 3);
    let all = store.read(&queue, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&all.entries), ["3", "4", "5"]);
    // A cursor behind the trimmed messages skips them silently.
    let behind = store.read(&queue, Position::FromId(first), 10).await.unwrap();
    assert_eq!(payloads(&behind.entries), ["3", "4", "5"]);
    assert_eq!(
        payloads(&store.read(&queue, Position::Index(1), 10).await.unwrap().entries),
        ["4", "5"]
    );
}

#[tokio::test(start_paused = true)]
async fn retention_by_age_never_returns_older_messages() {
    let store = store().await;
    let queue = q("max-age");
    let spec = QueueSpec {
        ttl: Duration::from_secs(3600),
        retention: Retention { max_len: None, max_age: Some(10 * SEC) },
        ..QueueSpec::default()
    };
    let generation = filled(&store, &queue, &spec, &["old1", "old2"]).await;
    advance(6 * SEC).await;
    store.push(&queue, generation, &spec, &entries(&["young"])).await.unwrap();
    advance(4 * SEC).await;
    assert_eq!(store.stat(&queue).await.unwrap().count, 3, "exactly max_age old is kept");
    advance(Duration::from_millis(1)).await;
    let read = store.read(&queue, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["young"]);
    assert_eq!(store.stat(&queue).await.unwrap().count, 1);
    advance(6 * SEC).await;
    let read = store.read(&queue, Position::Index(0), 10).await.unwrap();
    assert!(read.entries.is_empty());
    assert_eq!(read.last_id, None);
}

#[tokio::test(start_paused = true)]
async fn take_never_returns_a_message_older_than_max_age() {
    let store = store().await;
    let queue = q("max-age-take");
    let spec = QueueSpec {
        retention: Retention { max_len: None, max_age: Some(5 * SEC) },
        ..QueueSpec::default()
    };
    let generation = filled(&store, &queue, &spec, &["stale"]).await;
    advance(5 * SEC + Duration::from_millis(1)).await;
    store.push(&queue, generation, &spec, &entries(&["fresh"])).await.unwrap();
    let taken = store.take(&queue, &consumer(), 10, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["fresh"]);
}

#[tokio::test]
async fn reading_deep_into_a_long_queue_is_direct() {
    let store = store().await;
    let queue = q("deep");
    let generation = store.attach(&queue, &spec()).await.unwrap().generation;
    let batch: Vec<_> =
        (0..10_000).map(|i| busmq_core::store::NewEntry::new(i.to_string())).collect();
    let first = store.push(&queue, generation, &spec(), &batch).await.unwrap();
    let at = store.read(&queue, Position::Index(9_998), 5).await.unwrap();
    assert_eq!(payloads(&at.entries), ["9998", "9999"]);
    let from = store.read(&queue, Position::FromId(first + 5_000), 1).await.unwrap();
    assert_eq!(payloads(&from.entries), ["5000"]);
}
