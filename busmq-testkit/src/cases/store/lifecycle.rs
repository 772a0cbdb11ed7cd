//! Store contract: the life of a queue, from attach through renewals, detach and expiry to
//! close and its tombstone, and the generations and ids that tell incarnations apart (SPEC Q1-Q4,
//! Q6).

use super::fixtures::{
    AMO, SEC, connected, entries, exists, filled, gone, push, queue, spec, spec_ttl, try_push,
};
use crate::backend::Backend;
use busmq_core::Error;
use busmq_core::store::{Metadata, MetadataOp, Position, QueueSpec, Renewal, Retention};
use std::time::Duration;

/// Q1: the first attacher creates the queue with its spec; later attachers find it and adopt
/// the stored spec whatever they ask for, in the same generation.
pub async fn store_attach_creates_once_and_later_attachers_adopt_the_stored_spec(
    backend: &dyn Backend,
) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("attach");
    let first = QueueSpec {
        ttl: 7 * SEC,
        maxsize: Some(3),
        retention: Retention { max_len: Some(100), max_age: Some(60 * SEC) },
    };
    assert!(!exists(&*a, &q).await);
    let created = a.attach(&q, &first).await.unwrap();
    assert!(!created.existed);
    assert_eq!(created.spec, first);
    let adopted = b.attach(&q, &spec_ttl(60 * SEC)).await.unwrap();
    assert!(adopted.existed);
    assert_eq!(adopted.spec, first, "the later attacher adopts the creator's spec");
    assert_eq!(adopted.generation, created.generation);
    let stat = a.stat(&q).await.unwrap();
    assert!(stat.exists);
    assert_eq!((stat.spec, stat.generation), (Some(first), Some(created.generation)));
    assert_eq!((stat.count, stat.pending, stat.last_id), (0, 0, None));
}

/// Q1: a queue is never created with a ttl of zero (it would expire at once).
pub async fn store_attach_with_a_zero_ttl_is_an_invalid_option(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("zero-ttl");
    let err = store.attach(&q, &spec_ttl(Duration::ZERO)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "ttl", .. }), "{err}");
    assert!(!exists(&*store, &q).await, "nothing was created");
}

/// Q1: creation is atomic: of concurrent first attachers (over several stores) exactly one
/// sees `existed == false`, and all attach to one incarnation.
pub async fn store_concurrent_first_attachers_see_exactly_one_creator(backend: &dyn Backend) {
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(connected(backend).await);
    }
    for round in 0..4 {
        let q = queue("race");
        let sp = spec();
        let attaches = (0..8).map(|i| stores[i % stores.len()].attach(&q, &sp));
        let attached: Vec<_> = futures::future::join_all(attaches).await;
        let attached: Vec<_> = attached.into_iter().map(Result::unwrap).collect();
        let created = attached.iter().filter(|a| !a.existed).count();
        assert_eq!(created, 1, "round {round}: {attached:?}");
        assert!(attached.iter().all(|a| a.generation == attached[0].generation), "round {round}");
    }
}

/// Q2: renewals keep an attached queue alive well past its ttl; after the detach it expires
/// `ttl` later, with its messages.
pub async fn store_renewals_keep_a_queue_alive_and_it_expires_after_the_detach(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("leases");
    let sp = spec_ttl(2 * SEC);
    let generation = filled(&*store, &q, &sp, &["a", "b"]).await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(store.renew(&q, generation, &sp).await.unwrap(), Renewal::Alive);
    }
    assert_eq!(store.stat(&q).await.unwrap().count, 2, "alive past its ttl");
    store.detach(&q, generation).await.unwrap();
    assert!(exists(&*store, &q).await, "still there right after the detach");
    gone(&*store, &q).await;
}

/// Q2: a client that attached and never renewed counts as gone after its ttl; an expired queue
/// then looks exactly like one that never existed (stat, take, read, metadata).
pub async fn store_an_expired_queue_looks_like_one_that_never_existed(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("expired");
    let sp = spec_ttl(SEC);
    filled(&*store, &q, &sp, &["a", "b"]).await;
    store.metadata(&q, MetadataOp::Set(vec![("k".into(), "v".into())])).await.unwrap();
    gone(&*store, &q).await;
    let never = store.stat(&queue("never")).await.unwrap();
    assert!(!never.exists);
    assert_eq!(store.stat(&q).await.unwrap(), never);
    assert!(store.take(&q, 10, AMO).await.unwrap().entries.is_empty());
    assert!(store.read(&q, Position::Start, 10).await.unwrap().entries.is_empty());
    assert_eq!(store.metadata(&q, MetadataOp::GetAll).await.unwrap(), Metadata::All(vec![]));
}

/// Q2: renewing an incarnation that vanished (expired) recreates the queue from the caller's
/// spec with a new, larger generation; if another client created a new incarnation meanwhile,
/// the renewal adopts that one and its spec.
pub async fn store_renew_recreates_a_vanished_incarnation_or_adopts_the_current_one(
    backend: &dyn Backend,
) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("renew");
    let sp = spec_ttl(2 * SEC);
    let old = a.attach(&q, &sp).await.unwrap().generation;
    gone(&*a, &q).await;
    let renewed = a.renew(&q, old, &sp).await.unwrap();
    let Renewal::Recreated { generation: new, spec: got } = renewed else {
        panic!("expected Recreated, got {renewed:?}");
    };
    assert!(new > old);
    assert_eq!(got, sp);
    assert_eq!(a.stat(&q).await.unwrap().generation, Some(new));

    gone(&*a, &q).await;
    let other = b.attach(&q, &spec_ttl(9 * SEC)).await.unwrap();
    assert!(!other.existed);
    let adopted = a.renew(&q, new, &sp).await.unwrap();
    assert_eq!(adopted, Renewal::Recreated { generation: other.generation, spec: other.spec });
}

/// Q3: a detach ends only its own incarnation's attachment: a detach with another generation
/// does not push the expiry back, and a detach of a missing queue creates nothing.
pub async fn store_detach_of_another_generation_changes_nothing(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("detach");
    let sp = spec_ttl(2 * SEC);
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Had it counted, the queue would live until 3.5 s; it expires at 2 s.
    store.detach(&q, generation + 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!exists(&*store, &q).await, "the stale detach kept the queue alive");
    let missing = queue("detach-missing");
    store.detach(&missing, 1).await.unwrap();
    assert!(!exists(&*store, &missing).await);
}

/// Q6, Q4: ids and generations never go backwards, whether the queue was closed or expired
/// before it was created again; a batch's ids are consecutive.
pub async fn store_ids_and_generations_never_go_backwards_across_close_and_expiry(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("ids");
    let sp = spec_ttl(2 * SEC);
    let (mut last, mut last_generation) = (0, 0);
    for round in 0..4 {
        let attachment = store.attach(&q, &sp).await.unwrap();
        assert!(!attachment.existed, "round {round}");
        assert!(attachment.generation > last_generation, "round {round}");
        last_generation = attachment.generation;
        let first = push(&*store, &q, attachment.generation, &sp, &["a", "b", "c"]).await;
        assert!(first > last, "round {round}: {first} after {last}");
        assert_eq!(store.stat(&q).await.unwrap().last_id, Some(first + 2), "consecutive ids");
        last = first + 2;
        if round % 2 == 0 {
            store.close(&q, Some(attachment.generation)).await.unwrap();
        } else {
            store.detach(&q, attachment.generation).await.unwrap();
            gone(&*store, &q).await;
        }
    }
}

/// Q4: close destroys the queue now and leaves a tombstone: the closed generation's pushes fail
/// with `Closed` and write nothing, its renewals say `Closed` and create nothing; an attach
/// afterwards creates a new, larger generation that works normally.
pub async fn store_close_leaves_a_tombstone_that_refuses_the_closed_generation(
    backend: &dyn Backend,
) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("tomb");
    let sp = spec();
    let old = filled(&*a, &q, &sp, &["a"]).await;
    assert!(b.close(&q, None).await.unwrap(), "it existed");
    assert!(!exists(&*a, &q).await);
    assert!(!b.close(&q, None).await.unwrap(), "it is gone now");
    let err = try_push(&*a, &q, old, &sp, &entries(&["late"])).await.unwrap_err();
    assert!(matches!(&err, Error::Closed { queue } if queue == q.as_str()), "{err}");
    assert!(!exists(&*a, &q).await, "the refused push wrote nothing");
    assert_eq!(a.renew(&q, old, &sp).await.unwrap(), Renewal::Closed);
    assert!(!exists(&*a, &q).await, "the refused renewal created nothing");

    let new = b.attach(&q, &sp).await.unwrap();
    assert!(!new.existed);
    assert!(new.generation > old);
    push(&*b, &q, new.generation, &sp, &["fresh"]).await;
    assert_eq!(b.stat(&q).await.unwrap().count, 1);
    assert!(try_push(&*a, &q, old, &sp, &entries(&["late"])).await.is_err());
    assert_eq!(b.stat(&q).await.unwrap().count, 1);
}

/// Q4: the tombstone lasts at least twice the ttl (and at least 10 s): a closed generation is
/// still refused well after its ttl passed twice.
pub async fn store_a_tombstone_outlives_twice_the_ttl(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("tomb-long");
    let sp = spec_ttl(SEC);
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    store.close(&q, Some(generation)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = try_push(&*store, &q, generation, &sp, &entries(&["x"])).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    assert_eq!(store.renew(&q, generation, &sp).await.unwrap(), Renewal::Closed);
}

/// Q4: closing a generation of a queue that is already gone (or never existed) says it did not
/// exist, and still tombstones that generation.
pub async fn store_close_of_a_gone_queue_still_tombstones_its_generation(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("tomb-gone");
    assert!(!store.close(&q, Some(42)).await.unwrap());
    let err = try_push(&*store, &q, 42, &spec(), &entries(&["x"])).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    assert_eq!(store.renew(&q, 42, &spec()).await.unwrap(), Renewal::Closed);
    assert!(!exists(&*store, &q).await);
}

/// Q4: a close naming an older generation still destroys the current incarnation and
/// tombstones the generation it names.
pub async fn store_close_with_an_older_generation_destroys_the_current_incarnation(
    backend: &dyn Backend,
) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("tomb-stale");
    let sp = spec_ttl(SEC);
    let old = a.attach(&q, &sp).await.unwrap().generation;
    gone(&*a, &q).await;
    let current = filled(&*b, &q, &spec(), &["x"]).await;
    assert!(current > old);
    assert!(a.close(&q, Some(old)).await.unwrap(), "the current incarnation existed");
    assert!(!exists(&*b, &q).await);
    let err = try_push(&*a, &q, old, &sp, &entries(&["x"])).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
}
