//! Store contract: the optional listing of queues ([`Inspect`], offered by `Store::inspect`)
//! names every live queue and no closed or expired one, page by page; and what `stat` says
//! about a queue's consumers. Other cases run on the same data at the same time, so the cases
//! check only for their own (uniquely named) queues, never for an exact set.

use super::fixtures::{SEC, connected, filled, gone, queue, spec, spec_ttl};
use crate::backend::Backend;
use busmq_core::store::{ClientId, ConsumerId, ConsumerKind, ConsumerOp, Inspect};
use busmq_core::{Error, QueueName, Store};
use std::collections::BTreeSet;
use std::time::Duration;

/// Every name of a whole walk with `count` per step, and how many pages it took.
async fn walk(inspect: &dyn Inspect, count: u32) -> (BTreeSet<String>, usize) {
    let (mut names, mut pages, mut cursor) = (BTreeSet::new(), 0, None::<String>);
    loop {
        let page = inspect.list_queues(cursor.as_deref(), count).await.expect("list_queues");
        pages += 1;
        names.extend(page.queues.iter().map(|q| q.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (names, pages),
        }
    }
}

fn inspect(store: &dyn Store) -> &dyn Inspect {
    store.inspect().expect("this backend lists its queues (Store::inspect)")
}

/// A listing names every queue that exists, names containing the characters a backend must
/// encode (`{`, `}`, `%`) included, and no queue that was closed, that expired, or that was
/// never created.
pub async fn store_listing_names_live_queues_and_no_closed_or_expired_one(backend: &dyn Backend) {
    let store = connected(backend).await;
    let live = [queue("list-live"), queue("list-{odd}%-name")];
    for q in &live {
        filled(&*store, q, &spec(), &["a"]).await;
    }
    let empty = queue("list-empty");
    filled(&*store, &empty, &spec(), &[]).await;
    let closed = queue("list-closed");
    filled(&*store, &closed, &spec(), &["a"]).await;
    store.close(&closed, None).await.unwrap();
    let expired = queue("list-expired");
    let generation = filled(&*store, &expired, &spec_ttl(SEC), &["a"]).await;
    store.detach(&expired, generation).await.unwrap();
    gone(&*store, &expired).await;
    let never = queue("list-never");

    let (names, _) = walk(inspect(&*store), 500).await;
    for q in live.iter().chain([&empty]) {
        assert!(names.contains(q.as_str()), "{q} exists and is listed");
    }
    for q in [&closed, &expired, &never] {
        assert!(!names.contains(q.as_str()), "{q} does not exist and is not listed");
    }
}

/// A walk in small steps goes on from each page's cursor until the last page and finds every
/// queue; a cursor the store did not give is `InvalidOption("cursor")`; listing needs a
/// connection like every store call.
pub async fn store_listing_pages_through_cursors(backend: &dyn Backend) {
    let store = connected(backend).await;
    let mine: Vec<QueueName> = (0..12).map(|i| queue(&format!("list-page{i}"))).collect();
    for q in &mine {
        filled(&*store, q, &spec(), &[]).await;
    }
    let (names, pages) = walk(inspect(&*store), 5).await;
    for q in &mine {
        assert!(names.contains(q.as_str()), "{q} is on some page");
    }
    assert!(pages > 1, "12 queues in steps of 5 take more than one page");
    let err = inspect(&*store).list_queues(Some("no such cursor"), 5).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "cursor", .. }), "{err}");

    let offline = backend.store().await;
    let err = inspect(&*offline).list_queues(None, 5).await.unwrap_err();
    assert!(matches!(err, Error::NotConnected), "{err}");
}

/// Q15 (what `stat` tells an operator): `consumers` counts registrations whose lease has not
/// lapsed, of another store too; unregistering or a lapsed lease takes one off.
pub async fn store_stat_counts_consumers_whose_lease_holds(backend: &dyn Backend) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("stat-consumers");
    filled(&*a, &q, &spec(), &[]).await;
    assert_eq!(a.stat(&q).await.unwrap().consumers, 0);
    let client = ClientId::random();
    let register = |seq, lease| ConsumerOp::Register {
        id: ConsumerId::new(&client, seq),
        kind: ConsumerKind::Removing,
        lease,
    };
    a.consumers(&q, register(1, 60 * SEC)).await.unwrap();
    b.consumers(&q, register(2, 60 * SEC)).await.unwrap();
    b.consumers(&q, register(3, SEC)).await.unwrap();
    assert_eq!(b.stat(&q).await.unwrap().consumers, 3);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.stat(&q).await.unwrap().consumers, 2, "the lapsed lease is not counted");
    let one = ConsumerOp::Unregister { id: ConsumerId::new(&client, 1) };
    a.consumers(&q, one).await.unwrap();
    assert_eq!(a.stat(&q).await.unwrap().consumers, 1);
}
