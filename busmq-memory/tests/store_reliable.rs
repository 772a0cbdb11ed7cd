//! Store tests for reliable delivery: pending entries, visibility expiry and redelivery order,
//! settle (ack, release, return, extend), stale settlements and dead-letter claims.

mod common;

use busmq_core::Store;
use busmq_core::store::{Settle, Settled, TakeMode};
use common::*;
use std::time::Duration;
use tokio::time::advance;

const VISIBILITY: Duration = Duration::from_secs(10);

fn mode() -> TakeMode {
    reliable(VISIBILITY, 5)
}

#[tokio::test]
async fn reliable_takes_hold_entries_pending_until_acked() {
    let store = store().await;
    let queue = q("pending");
    filled(&store, &queue, &spec(), &["a", "b"]).await;
    let taken = store.take(&queue, &consumer(), 1, mode()).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["a"]);
    assert_eq!(deliveries(&taken.entries), [1], "the first reliable delivery counts 1");
    let stat = store.stat(&queue).await.unwrap();
    assert_eq!((stat.count, stat.pending), (1, 1));
    let id = taken.entries[0].id;
    let outcomes = store.settle(&queue, &[Settle::Ack { id, delivery: 1 }]).await.unwrap();
    assert_eq!(outcomes, [Settled::Done]);
    assert_eq!(store.stat(&queue).await.unwrap().pending, 0);
    let again = store.settle(&queue, &[Settle::Ack { id, delivery: 1 }]).await.unwrap();
    assert_eq!(again, [Settled::Stale]);
}

#[tokio::test(start_paused = true)]
async fn expired_visibility_redelivers_before_newer_messages_in_the_original_order() {
    let store = store().await;
    let queue = q("redeliver");
    let generation = filled(&store, &queue, &spec(), &["a", "b", "c"]).await;
    let first = store.take(&queue, &consumer(), 3, mode()).await.unwrap();
    store.push(&queue, generation, &spec(), &entries(&["d"])).await.unwrap();
    // Ack the middle one; the others time out.
    let b = Settle::Ack { id: first.entries[1].id, delivery: 1 };
    store.settle(&queue, &[b]).await.unwrap();
    advance(VISIBILITY - Duration::from_millis(1)).await;
    let early = store.take(&queue, &consumer(), 10, mode()).await.unwrap();
    assert_eq!(payloads(&early.entries), ["d"], "nothing redelivered before the deadline");
    advance(Duration::from_millis(1)).await;
    let again = store.take(&queue, &consumer(), 10, mode()).await.unwrap();
    assert_eq!(payloads(&again.entries), ["a", "c"]);
    assert_eq!(deliveries(&again.entries), [2, 2]);
    // The late ack of the first delivery is stale and changes nothing.
    let late = Settle::Ack { id: first.entries[0].id, delivery: 1 };
    assert_eq!(store.settle(&queue, &[late]).await.unwrap(), [Settled::Stale]);
    assert_eq!(store.stat(&queue).await.unwrap().pending, 3);
}

#[tokio::test]
async fn release_returns_entries_to_the_head_in_id_order_keeping_the_count() {
    let store = store().await;
    let queue = q("release");
    filled(&store, &queue, &spec(), &["3", "4", "5", "6"]).await;
    let taken = store.take(&queue, &consumer(), 2, mode()).await.unwrap();
    let mut watch = store.watch(&queue).await.unwrap();
    let ops = [
        Settle::Release { id: taken.entries[1].id, delivery: 1 },
        Settle::Release { id: taken.entries[0].id, delivery: 1 },
    ];
    assert_eq!(store.settle(&queue, &ops).await.unwrap(), [Settled::Done, Settled::Done]);
    use futures::{FutureExt, StreamExt};
    assert!(watch.next().now_or_never().is_some(), "a release wakes watchers");
    let again = store.take(&queue, &consumer(), 10, mode()).await.unwrap();
    assert_eq!(payloads(&again.entries), ["3", "4", "5", "6"]);
    assert_eq!(deliveries(&again.entries), [2, 2, 1, 1]);
}

#[tokio::test]
async fn return_gives_the_delivery_back() {
    let store = store().await;
    let queue = q("return");
    filled(&store, &queue, &spec(), &["a"]).await;
    let taken = store.take(&queue, &consumer(), 1, mode()).await.unwrap();
    let op = Settle::Return { id: taken.entries[0].id, delivery: 1 };
    assert_eq!(store.settle(&queue, std::slice::from_ref(&op)).await.unwrap(), [Settled::Done]);
    assert_eq!(store.settle(&queue, &[op]).await.unwrap(), [Settled::Stale]);
    let again = store.take(&queue, &consumer(), 1, mode()).await.unwrap();
    assert_eq!(deliveries(&again.entries), [1], "a returned delivery does not count");
}

#[tokio::test(start_paused = true)]
async fn extend_pushes_the_visibility_deadline() {
    let store = store().await;
    let queue = q("extend");
    filled(&store, &queue, &spec(), &["a"]).await;
    let taken = store.take(&queue, &consumer(), 1, mode()).await.unwrap();
    let id = taken.entries[0].id;
    advance(VISIBILITY / 2).await;
    let extend = Settle::Extend { id, delivery: 1, by: VISIBILITY };
    assert_eq!(store.settle(&queue, &[extend]).await.unwrap(), [Settled::Done]);
    advance(VISIBILITY - Duration::from_millis(1)).await;
    assert!(store.take(&queue, &consumer(), 1, mode()).await.unwrap().entries.is_empty());
    advance(Duration::from_millis(1)).await;
    let again = store.take(&queue, &consumer(), 1, mode()).await.unwrap();
    assert_eq!((ids(&again.entries), deliveries(&again.entries)), (vec![id], vec![2]));
}

#[tokio::test]
async fn settlements_apply_in_order_and_wrong_delivery_numbers_are_stale() {
    let store = store().await;
    let queue = q("settle-order");
    filled(&store, &queue, &spec(), &["a", "b"]).await;
    let taken = store.take(&queue, &consumer(), 2, mode()).await.unwrap();
    let (a, b) = (taken.entries[0].id, taken.entries[1].id);
    let ops = [
        Settle::Ack { id: a, delivery: 2 },
        Settle::Ack { id: a, delivery: 1 },
        Settle::Release { id: a, delivery: 1 },
        Settle::Extend { id: b, delivery: 1, by: SEC },
        Settle::Ack { id: b, delivery: 1 },
        Settle::Ack { id: 12345, delivery: 1 },
    ];
    let outcomes = store.settle(&queue, &ops).await.unwrap();
    use Settled::*;
    assert_eq!(outcomes, [Stale, Done, Stale, Done, Done, Stale]);
    let missing = store.settle(&q("missing"), &ops[..2]).await.unwrap();
    assert_eq!(missing, [Stale, Stale]);
}

#[tokio::test(start_paused = true)]
async fn entries_past_max_deliveries_are_claimed_as_dead_not_delivered() {
    let store = store().await;
    let queue = q("dead");
    filled(&store, &queue, &spec(), &["poison", "fine"]).await;
    let mode = reliable(VISIBILITY, 2);
    for delivery in 1..=2 {
        let taken = store.take(&queue, &consumer(), 1, mode).await.unwrap();
        assert_eq!(payloads(&taken.entries), ["poison"]);
        assert_eq!(deliveries(&taken.entries), [delivery]);
        let release = Settle::Release { id: taken.entries[0].id, delivery };
        store.settle(&queue, &[release]).await.unwrap();
    }
    let taken = store.take(&queue, &consumer(), 2, mode).await.unwrap();
    assert_eq!(payloads(&taken.dead), ["poison"]);
    assert_eq!(deliveries(&taken.dead), [3], "claimed with the incremented count");
    assert_eq!(payloads(&taken.entries), ["fine"]);
    assert_eq!(store.stat(&queue).await.unwrap().pending, 2, "the dead claim is pending");

    // A claimer that dies is replaced: the claim is offered again after its visibility.
    advance(VISIBILITY).await;
    let again = store.take(&queue, &consumer(), 1, mode).await.unwrap();
    assert!(again.entries.is_empty());
    assert_eq!((payloads(&again.dead), deliveries(&again.dead)), (vec!["poison".into()], vec![4]));
    let ack = Settle::Ack { id: again.dead[0].id, delivery: 4 };
    assert_eq!(store.settle(&queue, &[ack]).await.unwrap(), [Settled::Done]);
}

#[tokio::test]
async fn closing_a_queue_makes_its_pending_settlements_stale() {
    let store = store().await;
    let queue = q("closed-pending");
    filled(&store, &queue, &spec(), &["a"]).await;
    let taken = store.take(&queue, &consumer(), 1, mode()).await.unwrap();
    store.close(&queue, None).await.unwrap();
    store.attach(&queue, &spec()).await.unwrap();
    let ack = Settle::Ack { id: taken.entries[0].id, delivery: 1 };
    assert_eq!(store.settle(&queue, &[ack]).await.unwrap(), [Settled::Stale]);
}
