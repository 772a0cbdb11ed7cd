//! Queue lifecycle cases: attach, leases and expiry, detach, close (SPEC Q1-Q4).

use crate::backend::Backend;
use crate::support::{bus, drain_quiet, ends, eventually, next, unique, within};
use busmq_core::store::QueueSpec;
use busmq_core::{AttachOptions, Error, QueueEvent, QueueName};
use std::time::Duration;

fn label(event: &QueueEvent) -> String {
    match event {
        QueueEvent::Attached { existed } => format!("attached({existed})"),
        QueueEvent::Consuming(on) => format!("consuming({on})"),
        QueueEvent::Error(e) => format!("error: {e}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Q1, Q3 (seed "attach/detach events", study 7.2 #5): a producer and a consumer each report
/// attaching, attached, detaching, detached: eight events in all, the second attacher seeing
/// an existing queue.
pub async fn attach_detach_events_in_order(backend: &dyn Backend) {
    let name = unique("events");
    let (pb, cb) = (bus(backend).await, bus(backend).await);
    let (p, c) = (pb.queue(&name).unwrap(), cb.queue(&name).unwrap());
    let (mut pe, mut ce) = (p.events(), c.events());
    p.attach().await.expect("producer attach");
    c.attach().await.expect("consumer attach");
    p.detach().await.expect("producer detach");
    c.detach().await.expect("consumer detach");
    let mut producer: Vec<String> = Vec::new();
    let mut consumer: Vec<String> = Vec::new();
    for _ in 0..4 {
        producer.push(label(&next(&mut pe, "producer event").await));
        consumer.push(label(&next(&mut ce, "consumer event").await));
    }
    producer.extend(drain_quiet(&mut pe).await.iter().map(label));
    consumer.extend(drain_quiet(&mut ce).await.iter().map(label));
    assert_eq!(producer, ["attaching", "attached(false)", "detaching", "detached"]);
    assert_eq!(consumer, ["attaching", "attached(true)", "detaching", "detached"]);
}

/// Q1: attach creates the queue if needed and says whether it existed.
pub async fn attach_reports_whether_queue_existed(backend: &dyn Backend) {
    let name = unique("existed");
    let b = bus(backend).await;
    let first = b.queue(&name).unwrap();
    assert!(!first.exists().await.unwrap());
    assert!(!first.attach().await.unwrap(), "the first attach creates the queue");
    assert!(first.exists().await.unwrap());
    let second = b.queue(&name).unwrap();
    assert!(second.attach().await.unwrap(), "a second handle finds it");
}

/// Q1: creation is atomic: of many concurrent first attachers exactly one creates the queue.
pub async fn concurrent_first_attach_sees_one_creator(backend: &dyn Backend) {
    let name = unique("race");
    let buses = [bus(backend).await, bus(backend).await];
    let handles: Vec<_> = (0..8).map(|i| buses[i % 2].queue(&name).unwrap()).collect();
    let results = futures::future::join_all(handles.iter().map(|q| q.attach())).await;
    let created = results.iter().filter(|r| matches!(r, Ok(false))).count();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(created, 1, "{results:?}");
}

/// Q1: the creator's ttl is stored; later attachers adopt it whatever they ask for.
pub async fn later_attacher_adopts_stored_ttl(backend: &dyn Backend) {
    let name = unique("ttl");
    let b = bus(backend).await;
    let creator = b.queue(&name).unwrap();
    creator.attach_with(AttachOptions::new().ttl(Duration::from_secs(5))).await.unwrap();
    let later = bus(backend).await.queue(&name).unwrap();
    assert!(later.attach_with(AttachOptions::new().ttl(Duration::from_secs(60))).await.unwrap());
    assert_eq!(later.ttl().await.unwrap(), Some(Duration::from_secs(5)));
    assert_eq!(creator.ttl().await.unwrap(), Some(Duration::from_secs(5)));
}

/// Q1, Q3: attaching an attached handle is `AlreadyAttached`; it can attach again after detach.
pub async fn attach_twice_is_already_attached(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("twice")).unwrap();
    q.attach().await.unwrap();
    let again = q.attach().await;
    assert!(matches!(again, Err(Error::AlreadyAttached { .. })), "{again:?}");
    assert!(again.unwrap_err().to_string().contains("is already attached"));
    q.detach().await.unwrap();
    assert!(q.attach().await.unwrap(), "re-attaching after detach works");
}

/// Q2 (seed "do not expire before ttl", study 7.2 #11): ttl 5 s; one second after everyone
/// detached the queue and its message are still there.
pub async fn queue_does_not_expire_before_ttl(backend: &dyn Backend) {
    let name = unique("keep");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach_with(AttachOptions::new().ttl(Duration::from_secs(5))).await.unwrap();
    q.push(&"kept").await.unwrap();
    q.detach().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let observer = bus(backend).await.queue(&name).unwrap();
    assert!(observer.exists().await.unwrap());
    assert_eq!(observer.count().await.unwrap(), 1);
}

/// Q2 (seed "queue should expire", study 7.2 #12): ttl 1 s; the queue and its messages are gone
/// after the last attachment ends.
pub async fn queue_expires_ttl_after_last_detach(backend: &dyn Backend) {
    let name = unique("expire");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach_with(AttachOptions::new().ttl(Duration::from_secs(1))).await.unwrap();
    q.push(&"gone").await.unwrap();
    q.detach().await.unwrap();
    assert!(q.exists().await.unwrap(), "still there right after the detach");
    eventually("the queue to expire", || async { !q.exists().await.unwrap() }).await;
    assert_eq!(q.count().await.unwrap(), 0);
    let again = b.queue(&name).unwrap();
    assert!(!again.attach().await.unwrap(), "an expired queue is created anew");
}

/// Q2: while a client stays attached its queue lives well past the ttl (leases are renewed).
pub async fn attached_queue_outlives_its_ttl(backend: &dyn Backend) {
    let name = unique("renewed");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach_with(AttachOptions::new().ttl(Duration::from_secs(1))).await.unwrap();
    q.push(&1).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(q.exists().await.unwrap());
    assert_eq!(q.count().await.unwrap(), 1);
}

/// Q2: a client that dies without detaching (it attached and never renewed) counts as gone
/// after at most its ttl.
pub async fn client_that_never_renews_counts_as_detached_after_ttl(backend: &dyn Backend) {
    let name = QueueName::new(unique("dead-client")).unwrap();
    let store = backend.store().await;
    store.connect().await.expect("connect");
    let spec = QueueSpec { ttl: Duration::from_secs(1), ..QueueSpec::default() };
    store.attach(&name, &spec).await.expect("attach");
    let observer = bus(backend).await.queue(name.as_str()).unwrap();
    assert!(observer.exists().await.unwrap());
    eventually("the lease to lapse", || async { !observer.exists().await.unwrap() }).await;
    store.disconnect().await.expect("disconnect");
}

/// Q3: detaching twice is a no-op, reported once.
pub async fn detach_twice_is_a_no_op(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("detach2")).unwrap();
    q.attach().await.unwrap();
    let mut events = q.events();
    q.detach().await.unwrap();
    q.detach().await.unwrap();
    let seen: Vec<String> = drain_quiet(&mut events).await.iter().map(label).collect();
    assert_eq!(seen, ["detaching", "detached"]);
    assert!(!q.is_attached());
}

/// Q3, Q11: detach stops consuming: the consumer stream ends and `Consuming(false)` comes before
/// `Detached`.
pub async fn detach_stops_consuming(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("detach-consuming")).unwrap();
    q.attach().await.unwrap();
    let mut events = q.events();
    let mut consumer = q.consume::<String>().await.unwrap();
    assert!(q.is_consuming().await);
    q.detach().await.unwrap();
    let rest = ends(&mut consumer, "the consumer to end").await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(!q.is_consuming().await);
    let seen: Vec<String> = drain_quiet(&mut events).await.iter().map(label).collect();
    assert_eq!(seen, ["consuming(true)", "detaching", "consuming(false)", "detached"]);
}

/// Q4: close destroys the queue and its messages now; closing a missing queue says so.
pub async fn close_destroys_queue_and_messages(backend: &dyn Backend) {
    let name = unique("close");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    q.push_all(["a", "b", "c"]).await.unwrap();
    let mut events = q.events();
    assert!(q.close().await.unwrap(), "it existed");
    assert!(!q.exists().await.unwrap());
    assert_eq!(q.count().await.unwrap(), 0);
    assert!(!q.close().await.unwrap(), "nothing left to close");
    let seen: Vec<String> = drain_quiet(&mut events).await.iter().map(label).collect();
    assert_eq!(seen.first().map(String::as_str), Some("closed"), "{seen:?}");
}

/// Q4 (fix): every other attached client is told (`Closed`), its consumer ends, and its later
/// pushes fail with `Closed` instead of silently recreating a headless queue.
pub async fn close_notifies_other_attached_clients(backend: &dyn Backend) {
    let name = unique("close-notify");
    let (a, b) = (bus(backend).await, bus(backend).await);
    let closer = a.queue(&name).unwrap();
    closer.attach().await.unwrap();
    let other = b.queue(&name).unwrap();
    other.attach().await.unwrap();
    let mut events = other.events();
    let mut consumer = other.consume::<String>().await.unwrap();
    closer.close().await.unwrap();
    within("the other client's Closed event", async {
        loop {
            if let QueueEvent::Closed = next(&mut events, "closed").await {
                return;
            }
        }
    })
    .await;
    ends(&mut consumer, "the other client's consumer to end").await;
    let push = other.push(&"late").await;
    assert!(matches!(push, Err(Error::Closed { .. })), "{push:?}");
    assert!(!closer.exists().await.unwrap(), "the late push did not recreate the queue");
}

/// Q4: a client attaching after a close gets a new, empty queue; the closed handle can attach
/// again too.
pub async fn attach_after_close_creates_a_new_queue(backend: &dyn Backend) {
    let name = unique("reopen");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    q.push(&"old").await.unwrap();
    q.close().await.unwrap();
    let fresh = bus(backend).await.queue(&name).unwrap();
    assert!(!fresh.attach().await.unwrap());
    assert_eq!(fresh.count().await.unwrap(), 0);
    fresh.push(&"new").await.unwrap();
    assert!(q.attach().await.unwrap(), "the closed handle attaches to the new queue");
    let mut consumer = q.consume::<String>().await.unwrap();
    assert_eq!(next(&mut consumer, "new message").await.unwrap().body(), "new");
}
