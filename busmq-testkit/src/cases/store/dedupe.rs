//! Store contract: producer dedupe (SPEC P10). A push whose dedupe key was written within its
//! window in the same incarnation writes nothing and returns that push's first id; keys are
//! per queue, expire with their window, are checked after the tombstone and before maxsize,
//! and are forgotten with the incarnation.

use super::fixtures::{AMO, connected, entries, maxsize, payloads, queue, spec};
use crate::backend::Backend;
use busmq_core::store::{Dedupe, PushBatch, QueueSpec, Store};
use busmq_core::{Error, QueueName, Result};
use std::time::Duration;

/// Pushes `payload` with dedupe `key` and `window`.
async fn keyed(
    store: &dyn Store,
    q: &QueueName,
    generation: u64,
    spec: &QueueSpec,
    payload: &str,
    key: &str,
    window: Duration,
) -> Result<u64> {
    let batch = entries(&[payload]);
    let mut push = PushBatch::new(generation, spec, &batch);
    push.dedupe = Some(Dedupe { key, window });
    store.push(q, &push).await
}

const WINDOW: Duration = Duration::from_secs(60);

/// P10: a second push with the same key returns the first id and writes nothing, also after
/// the first message was taken (the key remembers the push); other keys, unkeyed pushes and
/// the same key on another queue are written as usual.
pub async fn store_dedupe_returns_the_first_id_and_writes_nothing(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, other, sp) = (queue("dedupe"), queue("dedupe-other"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let first = keyed(&*store, &q, generation, &sp, "a", "k1", WINDOW).await.unwrap();
    let again = keyed(&*store, &q, generation, &sp, "a'", "k1", WINDOW).await.unwrap();
    assert_eq!(again, first, "the repeated push answers with the first id");
    assert_eq!(store.stat(&q).await.unwrap().count, 1, "and writes nothing");
    let second = keyed(&*store, &q, generation, &sp, "b", "k2", WINDOW).await.unwrap();
    assert!(second > first);
    let plain = store.push(&q, &PushBatch::new(generation, &sp, &entries(&["c"]))).await.unwrap();
    assert!(plain > second);
    let taken = store.take(&q, 10, AMO).await.unwrap().entries;
    assert_eq!(payloads(&taken), ["a", "b", "c"]);
    let later = keyed(&*store, &q, generation, &sp, "a''", "k1", WINDOW).await.unwrap();
    assert_eq!(later, first, "taken or not, the key still answers within its window");
    assert_eq!(store.stat(&q).await.unwrap().count, 0);

    let other_gen = store.attach(&other, &sp).await.unwrap().generation;
    let there = keyed(&*store, &other, other_gen, &sp, "a", "k1", WINDOW).await.unwrap();
    assert_ne!(there, first, "keys are per queue");
    assert_eq!(store.stat(&other).await.unwrap().count, 1);
}

/// P10: after its window a key is forgotten and the same key writes again.
pub async fn store_dedupe_key_expires_after_its_window(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("dedupe-window"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let window = Duration::from_millis(300);
    let first = keyed(&*store, &q, generation, &sp, "a", "k", window).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = keyed(&*store, &q, generation, &sp, "b", "k", window).await.unwrap();
    assert!(second > first, "a key past its window is forgotten");
    let again = keyed(&*store, &q, generation, &sp, "c", "k", window).await.unwrap();
    assert_eq!(again, second, "and remembered again from the new push");
    let taken = store.take(&q, 10, AMO).await.unwrap().entries;
    assert_eq!(payloads(&taken), ["a", "b"]);
}

/// P10, Q8, Q4: a repeated push into a full queue is answered, not refused (the message is
/// stored already); a push of a closed generation is `Closed` whatever its key; a new
/// incarnation has forgotten the old one's keys.
pub async fn store_dedupe_comes_before_maxsize_and_after_the_tombstone(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("dedupe-full"), maxsize(1));
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let first = keyed(&*store, &q, generation, &sp, "a", "k", WINDOW).await.unwrap();
    let again = keyed(&*store, &q, generation, &sp, "a", "k", WINDOW).await;
    assert_eq!(again.unwrap(), first, "a repeat is not refused as full");
    let full = keyed(&*store, &q, generation, &sp, "b", "k2", WINDOW).await;
    assert!(matches!(full, Err(Error::QueueFull { .. })), "{full:?}");

    assert!(store.close(&q, Some(generation)).await.unwrap());
    let closed = keyed(&*store, &q, generation, &sp, "a", "k", WINDOW).await;
    assert!(matches!(closed, Err(Error::Closed { .. })), "{closed:?}");
    let fresh = store.attach(&q, &sp).await.unwrap().generation;
    let new = keyed(&*store, &q, fresh, &sp, "a", "k", WINDOW).await.unwrap();
    assert_ne!(new, first, "a new incarnation forgot the old one's keys");
    assert_eq!(store.stat(&q).await.unwrap().count, 1);
}
