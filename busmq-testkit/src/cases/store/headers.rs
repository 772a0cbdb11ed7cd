//! Store contract: message headers (SPEC P6) come back unchanged from every operation that
//! hands an entry out or puts it back: takes, restores, releases, returns, expired
//! visibility, reads, and next to dead-letter information.

use super::fixtures::{
    AMO, SEC, connected, deliveries, payloads, queue, reliable, settle_all, spec, try_push,
};
use crate::backend::Backend;
use busmq_core::Headers;
use busmq_core::store::{DeadLetter, Entry, NewEntry, Position, PushBatch, Restored, Settlement};
use busmq_core::support::now_micros;
use std::sync::Arc;

/// Headers that look like every separator a store might use.
fn odd_headers(n: u32) -> Headers {
    Headers::new()
        .with("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .with("z:first", format!("{n}:1:2:{{\"json\"}}\n\u{e9}"))
        .with("a", "")
}

/// `n` entries `m0..`, the even ones with headers.
fn mixed(n: u32) -> Vec<NewEntry> {
    (0..n)
        .map(|i| {
            let entry = NewEntry::new(format!("m{i}"));
            if i % 2 == 0 { entry.with_headers(odd_headers(i)) } else { entry }
        })
        .collect()
}

/// The headers of `entries`, as plain values (`None`: none).
fn headers(entries: &[Entry]) -> Vec<Option<Headers>> {
    entries.iter().map(|e| e.headers.as_deref().cloned()).collect()
}

fn expected(n: u32) -> Vec<Option<Headers>> {
    (0..n).map(|i| (i % 2 == 0).then(|| odd_headers(i))).collect()
}

/// P6: a take returns each entry's headers as pushed and none for an entry pushed without;
/// so do restores, small and large pushes (a backend may write those differently), a push
/// whose proposed ids are refused, and reads; dead-letter information and headers live side
/// by side.
pub async fn store_headers_survive_pushes_takes_restores_and_reads(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("headers");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    try_push(&*store, &q, generation, &spec(), &mixed(4)).await.unwrap();
    let taken = store.take(&q, 10, AMO).await.unwrap().entries;
    assert_eq!(headers(&taken), expected(4));
    assert_eq!(store.restore(&q, generation, &taken).await.unwrap(), Restored::Done);
    let again = store.take(&q, 10, AMO).await.unwrap().entries;
    assert_eq!((payloads(&again), headers(&again)), (payloads(&taken), expected(4)));

    // A large batch, and ids proposed too far ahead (the store assigns its own).
    try_push(&*store, &q, generation, &spec(), &mixed(64)).await.unwrap();
    let ahead = now_micros() + 3_600_000_000;
    let (batch, sp) = (mixed(2), spec());
    let mut push = PushBatch::new(generation, &sp, &batch);
    push.after = Some(ahead);
    store.push(&q, &push).await.unwrap();
    let read = store.read(&q, Position::Start, 100).await.unwrap().entries;
    let want: Vec<Option<Headers>> = expected(64).into_iter().chain(expected(2)).collect();
    assert_eq!(headers(&read), want, "reads see the headers");
    let taken = store.take(&q, 100, AMO).await.unwrap().entries;
    assert_eq!(headers(&taken), want);

    let info =
        Arc::new(DeadLetter { queue: "jobs".into(), id: 9, deliveries: 2, reason: "r".into() });
    let dead =
        NewEntry { dead: Some(info.clone()), ..NewEntry::new("d").with_headers(odd_headers(7)) };
    try_push(&*store, &q, generation, &spec(), &[dead]).await.unwrap();
    let taken = store.take(&q, 1, AMO).await.unwrap().entries;
    assert_eq!(
        (taken[0].dead.as_ref(), headers(&taken)),
        (Some(&info), vec![Some(odd_headers(7))])
    );
}

/// P6, Q13: a reliable delivery keeps its headers when it is released, returned, comes back
/// after its visibility passed, or is claimed as dead past `max_deliveries`.
pub async fn store_headers_survive_every_reliable_return(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("headers-reliable");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    try_push(&*store, &q, generation, &spec(), &mixed(2)).await.unwrap();
    let mode = reliable(60 * SEC, 4);
    let first = store.take(&q, 10, mode).await.unwrap().entries;
    assert_eq!((deliveries(&first), headers(&first)), (vec![1, 1], expected(2)));
    store.settle(&q, &settle_all(&first, Settlement::Release)).await.unwrap();
    let second = store.take(&q, 10, mode).await.unwrap().entries;
    assert_eq!((deliveries(&second), headers(&second)), (vec![2, 2], expected(2)));
    store.settle(&q, &settle_all(&second, Settlement::Return)).await.unwrap();
    let short = reliable(SEC, 4);
    let third = store.take(&q, 10, short).await.unwrap().entries;
    assert_eq!((deliveries(&third), headers(&third)), (vec![2, 2], expected(2)));
    tokio::time::sleep(2 * SEC).await;
    let fourth = store.take(&q, 10, mode).await.unwrap().entries;
    assert_eq!((deliveries(&fourth), headers(&fourth)), (vec![3, 3], expected(2)));
    store.settle(&q, &settle_all(&fourth, Settlement::Release)).await.unwrap();
    let fifth = store.take(&q, 10, mode).await.unwrap().entries;
    assert_eq!(deliveries(&fifth), [4, 4]);
    store.settle(&q, &settle_all(&fifth, Settlement::Release)).await.unwrap();
    let past = store.take(&q, 10, mode).await.unwrap();
    assert!(past.entries.is_empty());
    assert_eq!((deliveries(&past.dead), headers(&past.dead)), (vec![5, 5], expected(2)));
    store.settle(&q, &settle_all(&past.dead, Settlement::Ack)).await.unwrap();
}
