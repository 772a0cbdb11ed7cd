//! Dead-letter cases of reliable consumption: after `max_deliveries`, on reject, for an
//! undecodable message, and the dead-letter queue as an ordinary queue (SPEC Q13, E2).

use super::reliable::{one, reliable, reliable_with};
use crate::backend::Backend;
use crate::support::{bus, drain_quiet, eventually, next, unique};
use busmq_core::store::QueueSpec;
use busmq_core::{ConsumeOptions, Error, ReliableOptions};

/// Q13: after `max_deliveries` a message moves to `<queue>.dlq` with its count and reason; the
/// dead-letter queue is an ordinary queue whose messages can be pushed back.
pub async fn reliable_dead_letters_after_max_deliveries(backend: &dyn Backend) {
    let name = unique("poison");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"poison").await.unwrap();
    let options = ReliableOptions { max_deliveries: 2, ..ReliableOptions::default() };
    let mut consumer = q.consume_with::<String>(reliable_with(options)).await.unwrap();
    for delivery in 1..=2 {
        let d = one(&mut consumer, "a failing delivery").await;
        assert_eq!((d.id(), d.deliveries()), (id, delivery));
        d.nack().await.unwrap();
    }
    let dlq = b.queue(format!("{name}.dlq")).unwrap();
    eventually("the message to reach the dead-letter queue", || async {
        dlq.count().await.unwrap() == 1
    })
    .await;
    assert!(drain_quiet(&mut consumer).await.is_empty(), "not delivered a third time");
    dlq.attach().await.unwrap();
    let mut dead = dlq.consume::<String>().await.unwrap();
    let letter = next(&mut dead, "the dead letter").await.unwrap();
    assert_eq!(letter.body(), "poison");
    let info = letter.dead_letter().expect("dead-letter information").clone();
    assert_eq!(
        (info.queue.as_str(), info.id, info.deliveries, info.reason.as_str()),
        (name.as_str(), id, 2, "max_deliveries")
    );
    q.stop().await.unwrap();
    q.push_raw(letter.payload().clone()).await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let back = one(&mut consumer, "the replayed message").await;
    assert_eq!((back.body().as_str(), back.deliveries()), ("poison", 1));
    back.ack().await.unwrap();
    assert_eq!(q.stat().await.unwrap().pending, 0);
}

/// Q13: `reject` moves a message to the configured dead-letter queue at once, with the reason.
pub async fn reliable_reject_moves_to_the_configured_dead_letter_queue(backend: &dyn Backend) {
    let name = unique("reject");
    let dlq_name = unique("graveyard");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"bad order").await.unwrap();
    let options =
        ReliableOptions { dead_letter_queue: Some(dlq_name.clone()), ..ReliableOptions::default() };
    let mut consumer = q.consume_with::<String>(reliable_with(options)).await.unwrap();
    one(&mut consumer, "delivery").await.reject("no such product").await.unwrap();
    assert_eq!(q.stat().await.unwrap().pending, 0);
    let dlq = b.queue(&dlq_name).unwrap();
    dlq.attach().await.unwrap();
    let mut dead = dlq.consume::<String>().await.unwrap();
    let letter = next(&mut dead, "rejected").await.unwrap();
    let info = letter.dead_letter().unwrap();
    assert_eq!(
        (info.id, info.deliveries, info.reason.as_str()),
        (id, 1, "rejected: no such product")
    );
}

/// E2, Q13: in reliable mode an undecodable message is reported and not acknowledged: it comes
/// back, and ends in the dead-letter queue after `max_deliveries`.
pub async fn reliable_undecodable_message_is_not_acknowledged(backend: &dyn Backend) {
    let name = unique("undecodable");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let bad = q.push_raw(&b"{broken"[..]).await.unwrap();
    let options = ReliableOptions { max_deliveries: 3, ..ReliableOptions::default() };
    let mut consumer = q.consume_with::<String>(reliable_with(options)).await.unwrap();
    for _ in 0..3 {
        match next(&mut consumer, "the bad message").await {
            Err(Error::Decode { id, .. }) => assert_eq!(id, bad),
            other => panic!("expected a decode error, got {other:?}"),
        }
    }
    let dlq = b.queue(format!("{name}.dlq")).unwrap();
    eventually("the dead letter", || async { dlq.count().await.unwrap() == 1 }).await;
}

/// Q13: `QueueSpec` of a dead-letter queue follows its source (it is an ordinary queue).
pub async fn dead_letter_queue_is_an_ordinary_queue(backend: &dyn Backend) {
    let name = unique("dlq-ordinary");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    q.push(&"x").await.unwrap();
    let options = ReliableOptions { max_deliveries: 1, ..ReliableOptions::default() };
    let mut consumer = q.consume_with::<String>(reliable_with(options)).await.unwrap();
    one(&mut consumer, "x").await.nack().await.unwrap();
    let dlq = b.queue(format!("{name}.dlq")).unwrap();
    eventually("the dead letter", || async { dlq.count().await.unwrap() == 1 }).await;
    assert_eq!(dlq.ttl().await.unwrap(), Some(QueueSpec::default().ttl));
    dlq.attach().await.unwrap();
    let mut replay = dlq.consume_with::<String>(ConsumeOptions::new().remove(false)).await.unwrap();
    assert_eq!(next(&mut replay, "replayed dead letter").await.unwrap().body(), "x");
}
