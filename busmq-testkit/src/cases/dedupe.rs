//! Producer dedupe cases (SPEC P10), through the queue handle: a push with a dedupe key seen
//! within its window returns the first push's id and writes nothing, also when the pushes are
//! concurrent (they are never coalesced into one store call); keys expire with their window;
//! invalid keys and windows are refused before anything is written (SPEC E1).

use crate::backend::Backend;
use crate::support::{bus, next, unique};
use busmq_core::{Error, Headers, PushOptions};
use std::time::Duration;

/// P10: the repeated push answers with the first id, the count stays 1, and the message
/// arrives once with the first push's body and headers.
pub async fn dedupe_push_returns_the_first_id_and_writes_nothing(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("dedupe")).unwrap();
    q.attach().await.unwrap();
    let options = || PushOptions::new().dedupe("order-1");
    let headers = Headers::new().with("n", "1");
    let first = q.push_with(&"first", options().headers(headers.clone())).await.unwrap();
    let again = q.push_with(&"again", options()).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(q.count().await.unwrap(), 1);
    let other = q.push_with(&"other", PushOptions::new().dedupe("order-2")).await.unwrap();
    assert!(other > first);
    let mut consumer = q.consume::<String>().await.unwrap();
    let d = next(&mut consumer, "the keyed message").await.unwrap();
    assert_eq!((d.id(), d.body().as_str()), (first, "first"));
    assert_eq!(d.headers(), &headers);
    let d = next(&mut consumer, "the other key's message").await.unwrap();
    assert_eq!(d.body(), "other");
}

/// P10, Q6: keyed pushes issued together (which plain pushes would share a store call) are
/// written once per key and resolve to that key's id, between unkeyed pushes kept in order.
pub async fn concurrent_keyed_pushes_write_once(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("dedupe-concurrent")).unwrap();
    q.attach().await.unwrap();
    let keyed = |body: &str, key: &str| q.push_with(&body, PushOptions::new().dedupe(key));
    let pushes = vec![
        q.push(&"p1"),
        keyed("a", "k"),
        keyed("a", "k"),
        q.push(&"p2"),
        keyed("b", "j"),
        keyed("a", "k"),
    ];
    let ids: Vec<u64> = futures::future::try_join_all(pushes).await.unwrap();
    assert_eq!((ids[1], ids[5]), (ids[2], ids[2]), "one id for key k: {ids:?}");
    assert!(ids[0] < ids[1] && ids[1] < ids[3] && ids[3] < ids[4], "in order: {ids:?}");
    assert_eq!(q.count().await.unwrap(), 4);
    let mut consumer = q.consume::<String>().await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        bodies.push(next(&mut consumer, "a message").await.unwrap().into_body());
    }
    assert_eq!(bodies, ["p1", "a", "p2", "b"]);
}

/// P10: a key is remembered for its window only.
pub async fn dedupe_key_expires_after_its_window(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("dedupe-window")).unwrap();
    q.attach().await.unwrap();
    let options = || PushOptions::new().dedupe("k").dedupe_window(Duration::from_millis(300));
    let first = q.push_with(&"a", options()).await.unwrap();
    assert_eq!(q.push_with(&"a", options()).await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = q.push_with(&"a", options()).await.unwrap();
    assert!(second > first, "the window ended: written again");
    assert_eq!(q.count().await.unwrap(), 2);
}

/// P10, E1: an empty or oversize key and a zero window are `InvalidOption`; nothing is
/// written.
pub async fn invalid_dedupe_options_are_refused_and_nothing_is_written(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("dedupe-invalid")).unwrap();
    q.attach().await.unwrap();
    for options in [
        PushOptions::new().dedupe(""),
        PushOptions::new().dedupe("x".repeat(1025)),
        PushOptions::new().dedupe("k").dedupe_window(Duration::ZERO),
    ] {
        let refused = q.push_with(&"m", options).await;
        assert!(matches!(refused, Err(Error::InvalidOption { .. })), "{refused:?}");
    }
    assert_eq!(q.count().await.unwrap(), 0);
}
