//! Store contract: the optional blocking take ([`BlockingTake`]), on stores that offer it:
//! it takes what is ready at once, waits for a push otherwise, gives up after its wait or on
//! cancel, and never loses what it took (SPEC Q10, E4). Stores without one pass these cases.

use super::fixtures::{AMO, SEC, connected, filled, payloads, push, queue, spec};
use crate::backend::Backend;
use crate::support::{DEADLINE, within};
use busmq_core::QueueName;
use busmq_core::store::{BlockingTake, Receipt, Taken};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Takes with waits of `wait` (passing each wait's resume receipt to the next, as consumers
/// do) until something is taken or the suite's deadline passes: a blocking take may return
/// empty before its wait is over.
async fn take_until_some(
    blocking: &dyn BlockingTake,
    q: &QueueName,
    max: u32,
    wait: Duration,
    cancel: &Notify,
) -> Taken {
    let mut resume = Receipt::none();
    within("a blocking take to return entries", async {
        loop {
            let taken = blocking.take_wait(q, max, wait, cancel, &resume).await.unwrap();
            if !taken.entries.is_empty() {
                return taken;
            }
            resume = taken.resume;
        }
    })
    .await
}

/// Q10: a blocking take of a queue with ready entries returns them at once (at most `max`),
/// without waiting.
pub async fn store_blocking_take_returns_at_once_when_entries_are_ready(backend: &dyn Backend) {
    let store = connected(backend).await;
    let Some(blocking) = store.blocking() else { return };
    let q = queue("wait-ready");
    filled(&*store, &q, &spec(), &["a", "b"]).await;
    let started = Instant::now();
    let (cancel, resume) = (Notify::new(), Receipt::none());
    let taken = blocking.take_wait(&q, 1, 60 * SEC, &cancel, &resume).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["a"], "max is honoured");
    assert!(started.elapsed() < 30 * SEC, "it did not wait: {:?}", started.elapsed());
    assert_eq!(store.stat(&q).await.unwrap().count, 1);
}

/// Q10: a blocking take of an empty queue is woken by a push from another store and returns
/// the pushed entries long before its wait is over.
pub async fn store_blocking_take_wakes_on_a_push(backend: &dyn Backend) {
    let (store, pusher) = (connected(backend).await, connected(backend).await);
    let Some(blocking) = store.blocking() else { return };
    let q = queue("wait-push");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    let cancel = Notify::new();
    let started = Instant::now();
    let (taken, ()) = tokio::join!(take_until_some(blocking, &q, 10, 60 * SEC, &cancel), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        push(&*pusher, &q, generation, &spec(), &["hello"]).await;
    });
    assert_eq!(payloads(&taken.entries), ["hello"]);
    assert!(started.elapsed() < 30 * SEC, "woken by the push: {:?}", started.elapsed());
    assert_eq!(store.stat(&q).await.unwrap().count, 0);
}

/// E4: a blocking take of an empty (or missing) queue gives up after its wait and returns
/// empty: it never blocks forever.
pub async fn store_blocking_take_gives_up_after_its_wait(backend: &dyn Backend) {
    let store = connected(backend).await;
    let Some(blocking) = store.blocking() else { return };
    let q = queue("wait-empty");
    store.attach(&q, &spec()).await.unwrap();
    let (cancel, resume) = (Notify::new(), Receipt::none());
    for name in [&q, &queue("wait-missing")] {
        let wait = blocking.take_wait(name, 10, SEC, &cancel, &resume);
        assert!(within("the wait to end", wait).await.unwrap().entries.is_empty());
    }
}

/// Q10, E4: a cancelled blocking take returns promptly, long before its wait is over.
pub async fn store_blocking_take_returns_promptly_on_cancel(backend: &dyn Backend) {
    let store = connected(backend).await;
    let Some(blocking) = store.blocking() else { return };
    let q = queue("wait-cancel");
    store.attach(&q, &spec()).await.unwrap();
    let (cancel, resume) = (Notify::new(), Receipt::none());
    let started = Instant::now();
    let (taken, ()) =
        tokio::join!(blocking.take_wait(&q, 10, 2 * DEADLINE, &cancel, &resume), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cancel.notify_one();
        });
    assert!(taken.unwrap().entries.is_empty());
    assert!(started.elapsed() < DEADLINE, "the cancel ended the wait: {:?}", started.elapsed());
}

/// Q10, Q12: a blocking take cancelled while pushes race with it still returns whatever it
/// took: every pushed message is either returned by a take or still in the queue.
pub async fn store_blocking_take_loses_nothing_it_took_when_cancelled(backend: &dyn Backend) {
    let (store, pusher) = (connected(backend).await, connected(backend).await);
    let Some(blocking) = store.blocking() else { return };
    let q = queue("wait-race");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    let mut got = Vec::new();
    let mut resume = Receipt::none();
    for round in 0..20u32 {
        let cancel = Notify::new();
        let delay = Duration::from_millis(u64::from(round % 5) * 5);
        let (taken, ()) =
            tokio::join!(blocking.take_wait(&q, 10, 10 * SEC, &cancel, &resume), async {
                tokio::time::sleep(delay).await;
                push(&*pusher, &q, generation, &spec(), &[&format!("m{round}")]).await;
                cancel.notify_one();
            });
        let taken = taken.unwrap();
        resume = taken.resume;
        got.extend(payloads(&taken.entries));
    }
    let rest = store.take(&q, 100, AMO).await.unwrap();
    got.extend(payloads(&rest.entries));
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "every message taken once, in order");
}
