//! Store contract: putting entries taken at most once back (SPEC Q12): where they go among the
//! ready entries, that each comes back once, and that nothing goes back into a generation that
//! was closed or expired meanwhile.

use super::fixtures::{
    AMO, SEC, connected, deliveries, exists, filled, gone, maxsize, names, numbered, payloads,
    push, queue, reliable, settle_all, spec, spec_ttl, try_push,
};
use crate::backend::Backend;
use crate::support::within;
use busmq_core::store::{Entry, QueueSpec, Receipt, Restored, Retention, Settlement};
use busmq_core::{QueueName, Store};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

const DONE: Restored = Restored::Done;

/// Takes everything ready, in take order.
async fn drain(store: &dyn Store, q: &QueueName) -> Vec<Entry> {
    let mut all = Vec::new();
    loop {
        let taken = store.take(q, 100, AMO).await.unwrap().entries;
        if taken.is_empty() {
            return all;
        }
        all.extend(taken);
    }
}

/// Q12: restored entries go back in id order among the ready ones, whatever the order of the
/// restores and of the entries in one restore, with their ids and payloads, ignoring `maxsize`.
pub async fn store_restore_puts_entries_back_in_id_order_among_the_ready_ones(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("restore-order");
    let limited = maxsize(10);
    let generation = store.attach(&q, &limited).await.unwrap().generation;
    try_push(&*store, &q, generation, &limited, &numbered(0..10)).await.unwrap();
    let a = store.take(&q, 2, AMO).await.unwrap().entries;
    let b = store.take(&q, 3, AMO).await.unwrap().entries;
    let c = store.take(&q, 2, AMO).await.unwrap().entries;
    try_push(&*store, &q, generation, &limited, &numbered(10..17)).await.unwrap();
    assert_eq!(store.restore(&q, generation, &b).await.unwrap(), DONE);
    assert_eq!(store.restore(&q, generation, &a).await.unwrap(), DONE);
    let c_reversed: Vec<Entry> = c.iter().rev().cloned().collect();
    assert_eq!(store.restore(&q, generation, &c_reversed).await.unwrap(), DONE);
    assert_eq!(store.stat(&q).await.unwrap().count, 17, "restore ignores maxsize");
    let all = drain(&*store, &q).await;
    assert_eq!(payloads(&all), names(0..17));
    let restored: Vec<Entry> = a.iter().chain(&b).chain(&c).cloned().collect();
    assert_eq!(all[..7], restored[..], "restored entries keep their ids and payloads");
    assert_eq!(deliveries(&all), [0; 17]);
}

/// Q12, Q13: restored entries also take their id's place among entries a reliable consumer
/// released, before and after them.
pub async fn store_restore_keeps_id_order_next_to_released_entries(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("restore-released");
    let generation = filled(&*store, &q, &spec(), &["0", "1", "2", "3", "4"]).await;
    let first = store.take(&q, 1, reliable(60 * SEC, 5)).await.unwrap().entries;
    let taken = store.take(&q, 1, AMO).await.unwrap().entries;
    let third = store.take(&q, 1, reliable(60 * SEC, 5)).await.unwrap().entries;
    let released =
        [settle_all(&first, Settlement::Release), settle_all(&third, Settlement::Release)];
    store.settle(&q, &released.concat()).await.unwrap();
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), DONE);
    let all = drain(&*store, &q).await;
    assert_eq!(payloads(&all), ["0", "1", "2", "3", "4"]);
    assert_eq!(all[1], taken[0]);
}

/// Q12, Q13: a release after a restore puts the released entry at its id's place too.
pub async fn store_release_after_restore_keeps_id_order(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("release-after-restore");
    let generation = filled(&*store, &q, &spec(), &["0", "1", "2", "3"]).await;
    let taken = store.take(&q, 1, AMO).await.unwrap().entries;
    let held = store.take(&q, 1, reliable(60 * SEC, 5)).await.unwrap().entries;
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), DONE);
    store.settle(&q, &settle_all(&held, Settlement::Release)).await.unwrap();
    assert_eq!(payloads(&drain(&*store, &q).await), ["0", "1", "2", "3"]);
}

/// Q12: an entry comes back once: restoring entries that are ready again changes nothing, and
/// restoring nothing is done without looking.
pub async fn store_restoring_an_entry_twice_puts_it_back_once(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("restore-twice");
    let generation = filled(&*store, &q, &spec(), &["a", "b", "c", "d"]).await;
    let taken = store.take(&q, 3, AMO).await.unwrap().entries;
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), DONE);
    assert_eq!(store.restore(&q, generation, &taken[1..]).await.unwrap(), DONE);
    assert_eq!(store.restore(&q, generation, &[]).await.unwrap(), DONE);
    assert_eq!(store.stat(&q).await.unwrap().count, 4);
    let all = drain(&*store, &q).await;
    assert_eq!(payloads(&all), ["a", "b", "c", "d"]);
    let missing = queue("restore-nothing");
    assert_eq!(store.restore(&missing, generation, &[]).await.unwrap(), DONE);
    assert!(!exists(&*store, &missing).await, "restoring nothing creates nothing");
}

/// Q4, Q12: nothing goes back into a generation that was closed, neither while the queue is
/// gone nor after it was created again.
pub async fn store_restore_into_a_closed_generation_is_refused_and_writes_nothing(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("restore-closed");
    let generation = filled(&*store, &q, &spec(), &["a", "b", "c"]).await;
    let taken = store.take(&q, 2, AMO).await.unwrap().entries;
    store.close(&q, Some(generation)).await.unwrap();
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), Restored::Closed);
    assert!(!exists(&*store, &q).await, "a refused restore creates nothing");
    let newer = filled(&*store, &q, &spec(), &["x"]).await;
    assert_ne!(newer, generation);
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), Restored::Closed);
    assert_eq!(payloads(&drain(&*store, &q).await), ["x"], "nothing went into the new one");
}

/// Q2, Q12: nothing goes back into a generation that expired (its messages expired with it),
/// neither while the queue is gone nor after it was created again.
pub async fn store_restore_into_an_expired_generation_is_refused_and_writes_nothing(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("restore-expired");
    let short = spec_ttl(SEC);
    let generation = filled(&*store, &q, &short, &["a", "b"]).await;
    let taken = store.take(&q, 2, AMO).await.unwrap().entries;
    gone(&*store, &q).await;
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), Restored::Gone);
    assert!(!exists(&*store, &q).await, "a refused restore creates nothing");
    let newer = filled(&*store, &q, &spec(), &["x"]).await;
    assert_ne!(newer, generation);
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), Restored::Gone);
    assert_eq!(payloads(&drain(&*store, &q).await), ["x"], "nothing went into the new one");
}

/// Q10, Q12: a taker blocked on an empty queue is woken by a restore and gets the restored
/// entries before anything pushed after it.
pub async fn store_a_restore_wakes_a_blocked_taker_with_the_restored_entries_first(
    backend: &dyn Backend,
) {
    let (store, other) = (connected(backend).await, connected(backend).await);
    let Some(blocking) = store.blocking() else { return };
    let q = queue("restore-wakes");
    let generation = filled(&*other, &q, &spec(), &["a", "b"]).await;
    let taken = other.take(&q, 2, AMO).await.unwrap().entries;
    let cancel = Notify::new();
    let started = Instant::now();
    let wait = async {
        let mut resume = Receipt::none();
        within("a blocking take to return entries", async {
            loop {
                let got = blocking.take_wait(&q, 10, 60 * SEC, &cancel, &resume).await.unwrap();
                if !got.entries.is_empty() {
                    return got.entries;
                }
                resume = got.resume;
            }
        })
        .await
    };
    let (mut got, ()) = tokio::join!(wait, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(other.restore(&q, generation, &taken).await.unwrap(), DONE);
        push(&*other, &q, generation, &spec(), &["c"]).await;
    });
    assert!(started.elapsed() < 30 * SEC, "woken by the restore: {:?}", started.elapsed());
    got.extend(drain(&*store, &q).await);
    assert_eq!(payloads(&got), ["a", "b", "c"]);
}

/// Q12, Q14: a restored entry keeps its age: once older than `max_age` it is neither counted
/// nor taken again, like every other message pushed that long ago.
pub async fn store_a_restored_entry_keeps_its_age_for_retention(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("restore-age");
    let sp = QueueSpec { retention: Retention { max_len: None, max_age: Some(2 * SEC) }, ..spec() };
    let generation = filled(&*store, &q, &sp, &["old"]).await;
    let taken = store.take(&q, 1, AMO).await.unwrap().entries;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    push(&*store, &q, generation, &sp, &["new"]).await;
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), DONE);
    assert_eq!(store.stat(&q).await.unwrap().count, 1, "the restored entry is too old");
    assert_eq!(payloads(&drain(&*store, &q).await), ["new"]);
}
