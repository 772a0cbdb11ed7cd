//! Consume cases in the default at-most-once mode: the seed's push/consume orderings, order,
//! one consumer per message, max, stop and put-back (SPEC Q10-Q12, E2).

use crate::backend::Backend;
use crate::support::{QUIET, bus, drain_quiet, ends, eventually, next, take, unique, within};
use busmq_core::{ConsumeOptions, Error, QueueEvent};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Hello {
    hello: String,
}

/// Q10 (seed, study 7.2 #6): a producer pushes and detaches; a consumer attaching later receives
/// exactly that message, identical, once.
pub async fn producer_pushes_and_leaves_then_consumer_receives(backend: &dyn Backend) {
    let name = unique("p-then-c");
    let p = bus(backend).await.queue(&name).unwrap();
    p.attach().await.unwrap();
    let message = Hello { hello: "world".into() };
    let id = p.push(&message).await.unwrap();
    p.detach().await.unwrap();
    let c = bus(backend).await.queue(&name).unwrap();
    c.attach().await.unwrap();
    let mut consumer = c.consume::<Hello>().await.unwrap();
    let got = next(&mut consumer, "the message").await.unwrap();
    assert_eq!((got.id(), got.body()), (id, &message));
    assert!(drain_quiet(&mut consumer).await.is_empty(), "exactly once");
}

/// Q10 (seed, study 7.2 #7): producer attached, consumer attached and consuming, then a push:
/// received once.
pub async fn consumer_first_then_push_receives_once(backend: &dyn Backend) {
    let name = unique("c-then-p");
    let p = bus(backend).await.queue(&name).unwrap();
    p.attach().await.unwrap();
    let c = bus(backend).await.queue(&name).unwrap();
    c.attach().await.unwrap();
    let mut consumer = c.consume::<String>().await.unwrap();
    p.push(&"ping").await.unwrap();
    assert_eq!(next(&mut consumer, "ping").await.unwrap().body(), "ping");
    assert!(drain_quiet(&mut consumer).await.is_empty());
}

/// Q10 (seed, study 7.2 #8): the consumer attaches before the producer exists; received once.
pub async fn consumer_attaches_before_producer_receives_once(backend: &dyn Backend) {
    let name = unique("c-first");
    let c = bus(backend).await.queue(&name).unwrap();
    assert!(!c.attach().await.unwrap());
    let mut consumer = c.consume::<String>().await.unwrap();
    let p = bus(backend).await.queue(&name).unwrap();
    assert!(p.attach().await.unwrap());
    p.push(&"late producer").await.unwrap();
    assert_eq!(next(&mut consumer, "message").await.unwrap().body(), "late producer");
    assert!(drain_quiet(&mut consumer).await.is_empty());
}

/// Q10 (seed, study 7.2 #9): five messages pushed before any consumer exists are all received.
pub async fn five_pushed_before_consumer_are_received(backend: &dyn Backend) {
    let name = unique("five");
    let p = bus(backend).await.queue(&name).unwrap();
    p.attach().await.unwrap();
    for i in 0..5 {
        p.push(&i).await.unwrap();
    }
    let c = bus(backend).await.queue(&name).unwrap();
    c.attach().await.unwrap();
    let mut consumer = c.consume::<i32>().await.unwrap();
    let got: Vec<i32> =
        take(&mut consumer, 5, "five").await.into_iter().map(|d| d.unwrap().into_body()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

/// Q10: messages are delivered in push order, also while the consumer is running.
pub async fn messages_arrive_in_push_order(backend: &dyn Backend) {
    let name = unique("order");
    let p = bus(backend).await.queue(&name).unwrap();
    p.attach().await.unwrap();
    let c = bus(backend).await.queue(&name).unwrap();
    c.attach().await.unwrap();
    let mut consumer = c.consume_with::<u32>(ConsumeOptions::new().prefetch(7)).await.unwrap();
    let reader = async {
        let mut got = Vec::new();
        while got.len() < 300 {
            got.push(next(&mut consumer, "message").await.unwrap().into_body());
        }
        got
    };
    let writer = async {
        for i in 0..300u32 {
            if i % 3 == 0 {
                p.push(&i).await.unwrap();
            } else {
                drop(p.push(&i));
            }
        }
    };
    let (got, ()) = tokio::join!(reader, writer);
    assert_eq!(got, (0..300).collect::<Vec<_>>());
}

/// Q10: with several consumers on one queue each message goes to exactly one of them.
pub async fn each_message_goes_to_exactly_one_consumer(backend: &dyn Backend) {
    const N: u32 = 300;
    let name = unique("compete");
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut buses = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..3 {
        let b = bus(backend).await;
        let q = b.queue(&name).unwrap();
        q.attach().await.unwrap();
        let mut consumer = q.consume_with::<u32>(ConsumeOptions::new().prefetch(5)).await.unwrap();
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                received.lock().unwrap().push(delivery.unwrap().into_body());
            }
            drop(q);
        }));
        buses.push(b);
    }
    let p = bus(backend).await.queue(&name).unwrap();
    p.attach().await.unwrap();
    for chunk in (0..N).collect::<Vec<_>>().chunks(25) {
        p.push_all(chunk).await.unwrap();
    }
    eventually("all messages to be received", || {
        let received = received.clone();
        async move { received.lock().unwrap().len() >= N as usize }
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let got = received.lock().unwrap().clone();
    let unique: BTreeSet<u32> = got.iter().copied().collect();
    assert_eq!(got.len(), N as usize, "no message was delivered twice");
    assert_eq!(unique, (0..N).collect(), "no message was lost");
    for b in buses {
        b.disconnect().await.unwrap();
    }
    for reader in readers {
        within("reader end", reader).await.unwrap();
    }
}

/// Q10 (seed "many messages", study 7.2 #15): 100 messages over each of 10 queues, pushed in
/// bursts of 20; every consumer receives exactly its queue's messages.
pub async fn many_messages_over_many_queues(backend: &dyn Backend) {
    const QUEUES: usize = 10;
    const MESSAGES: usize = 100;
    let (pb, cb) = (bus(backend).await, bus(backend).await);
    let prefix = unique("many");
    let mut work = Vec::new();
    for qi in 0..QUEUES {
        let name = format!("{prefix}-{qi}");
        let producer = pb.queue(&name).unwrap();
        let consumer_q = cb.queue(&name).unwrap();
        work.push(async move {
            consumer_q.attach().await.unwrap();
            producer.attach().await.unwrap();
            let mut consumer = consumer_q.consume::<String>().await.unwrap();
            let message = format!("message of queue {qi}");
            for burst in 0..MESSAGES / 20 {
                let pushes: Vec<_> = (0..20).map(|_| producer.push(&message)).collect();
                futures::future::try_join_all(pushes).await.unwrap();
                let _ = burst;
            }
            let got = take(&mut consumer, MESSAGES, "a queue's messages").await;
            assert!(got.into_iter().all(|d| *d.unwrap().body() == message));
            assert!(drain_quiet(&mut consumer).await.is_empty());
        });
    }
    futures::future::join_all(work).await;
}

/// Q11 (seed "consume max", study 7.2 #16): four messages; `max = 2` delivers two then stops by
/// itself; `max = 1` delivers the third.
pub async fn consume_max_stops_after_n(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("max")).unwrap();
    q.attach().await.unwrap();
    q.push_all(["m0", "m1", "m2", "m3"]).await.unwrap();
    let mut events = q.events();
    let mut consumer = q.consume_with::<String>(ConsumeOptions::new().max(2)).await.unwrap();
    let got: Vec<String> =
        take(&mut consumer, 2, "two").await.into_iter().map(|d| d.unwrap().into_body()).collect();
    assert_eq!(got, ["m0", "m1"]);
    assert!(ends(&mut consumer, "the consumer to stop by itself").await.is_empty());
    eventually("consuming to stop", || async { !q.is_consuming().await }).await;
    let mut consumer = q.consume_with::<String>(ConsumeOptions::new().max(1)).await.unwrap();
    assert_eq!(next(&mut consumer, "third").await.unwrap().body(), "m2");
    assert!(ends(&mut consumer, "the second consumer to stop").await.is_empty());
    eventually("consuming to stop", || async { !q.is_consuming().await }).await;
    let flags: Vec<bool> = drain_quiet(&mut events)
        .await
        .into_iter()
        .filter_map(|e| match e {
            QueueEvent::Consuming(on) => Some(on),
            _ => None,
        })
        .collect();
    assert_eq!(flags, [true, false, true, false]);
    assert_eq!(q.count().await.unwrap(), 1, "the fourth message is still there");
}

/// Q11: a second consume on a consuming handle is `AlreadyConsuming`, never two loops.
pub async fn consume_twice_is_already_consuming(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("consume2")).unwrap();
    q.attach().await.unwrap();
    let _first = q.consume::<String>().await.unwrap();
    let second = q.consume::<String>().await;
    assert!(matches!(second, Err(Error::AlreadyConsuming { .. })), "{:?}", second.err());
    q.stop().await.unwrap();
    assert!(q.consume::<String>().await.is_ok(), "after stop it may consume again");
}

/// Q12 (seed "not receive when stopped", study 7.2 #19): three messages; stopping in the first
/// delivery means exactly one is consumed; consuming goes true then false.
pub async fn stop_stops_delivery(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("stop")).unwrap();
    q.attach().await.unwrap();
    q.push_all([1, 2, 3]).await.unwrap();
    let mut events = q.events();
    let mut consumer = q.consume::<i32>().await.unwrap();
    let first = next(&mut consumer, "first").await.unwrap();
    assert_eq!(*first.body(), 1);
    q.stop().await.unwrap();
    assert!(
        ends(&mut consumer, "the stopped consumer to end").await.is_empty(),
        "nothing after stop"
    );
    assert_eq!(q.consumed(), 1);
    let flags: Vec<bool> = drain_quiet(&mut events)
        .await
        .into_iter()
        .filter_map(|e| match e {
            QueueEvent::Consuming(on) => Some(on),
            _ => None,
        })
        .collect();
    assert_eq!(flags, [true, false]);
    assert_eq!(q.count().await.unwrap(), 2);
}

/// Q12 (fix): messages taken from the store but not yet handed out when consuming stops go back
/// to the head of the queue, in order, ahead of newer ones.
pub async fn stop_returns_undelivered_messages_to_the_head_in_order(backend: &dyn Backend) {
    let name = unique("putback");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    q.push_all(0..10).await.unwrap();
    let mut consumer = q.consume_with::<i32>(ConsumeOptions::new().prefetch(10)).await.unwrap();
    let first: Vec<i32> =
        take(&mut consumer, 3, "three").await.into_iter().map(|d| d.unwrap().into_body()).collect();
    assert_eq!(first, [0, 1, 2]);
    q.stop().await.unwrap();
    assert_eq!(q.count().await.unwrap(), 7, "the seven undelivered messages are back");
    q.push_all([10, 11]).await.unwrap();
    let other = bus(backend).await.queue(&name).unwrap();
    other.attach().await.unwrap();
    let mut consumer = other.consume::<i32>().await.unwrap();
    let rest: Vec<i32> = take(&mut consumer, 9, "the rest")
        .await
        .into_iter()
        .map(|d| d.unwrap().into_body())
        .collect();
    assert_eq!(rest, (3..12).collect::<Vec<_>>());
}

/// Q12 (fix): dropping a consumer stream has the same effect as stopping it.
pub async fn dropped_consumer_returns_undelivered_messages(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("drop")).unwrap();
    q.attach().await.unwrap();
    q.push_all(0..10).await.unwrap();
    let mut consumer = q.consume_with::<i32>(ConsumeOptions::new().prefetch(10)).await.unwrap();
    take(&mut consumer, 2, "two").await;
    drop(consumer);
    eventually("the consumer to finish", || async { !q.is_consuming().await }).await;
    assert_eq!(q.count().await.unwrap(), 8);
    let mut consumer = q.consume::<i32>().await.unwrap();
    assert_eq!(*next(&mut consumer, "third").await.unwrap().body(), 2);
}

/// E2: a message that does not decode into the requested type is reported with its id, and the
/// stream goes on with the next message.
pub async fn undecodable_message_is_reported_with_its_id(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("undecodable")).unwrap();
    q.attach().await.unwrap();
    let bad = q.push_raw(&b"not json"[..]).await.unwrap();
    q.push(&7).await.unwrap();
    let mut consumer = q.consume::<i32>().await.unwrap();
    match next(&mut consumer, "the bad message").await {
        Err(Error::Decode { id, ref target, .. }) => {
            assert_eq!(id, bad);
            assert!(target.contains("undecodable"), "{target}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(*next(&mut consumer, "the good message").await.unwrap().body(), 7);
}

/// Q11, Q12: once a consumer with `max` has handed out everything and its stream ended,
/// `Consumer::stop`, `Queue::stop` and `Queue::detach` return at once (the consumer's finish
/// was signalled before anyone waited for it, and the wait must still see it), several times
/// over so that the race between the finish and the wait is crossed both ways.
pub async fn stop_after_max_returns_at_once(backend: &dyn Backend) {
    let b = bus(backend).await;
    for round in 0..5u32 {
        let q = b.queue(unique("stop-after-max")).unwrap();
        q.attach().await.unwrap();
        let mut events = q.events();
        q.push_all(0..4u32).await.unwrap();
        let mut consumer = q.consume_with::<u32>(ConsumeOptions::new().max(3)).await.unwrap();
        let got: Vec<u32> = take(&mut consumer, 3, "three")
            .await
            .into_iter()
            .map(|d| d.unwrap().into_body())
            .collect();
        assert_eq!(got, [0, 1, 2]);
        assert!(ends(&mut consumer, "the stream to end after max").await.is_empty());
        within("Consuming(false)", async {
            while let Some(event) = events.next().await {
                if matches!(event, QueueEvent::Consuming(false)) {
                    return;
                }
            }
            panic!("the event stream ended");
        })
        .await;
        within(&format!("consumer.stop() (round {round})"), consumer.stop()).await;
        within(&format!("queue.stop() (round {round})"), q.stop()).await.unwrap();
        let mut again = q.consume::<u32>().await.unwrap();
        assert_eq!(next(&mut again, "the fourth message").await.unwrap().into_body(), 3);
        within(&format!("queue.detach() (round {round})"), q.detach()).await.unwrap();
    }
}

/// Q11, Q12: dropping a consumer stops it, and a new `consume` on the same handle right after
/// the drop starts (it is not `AlreadyConsuming`) and receives what the dropped one had taken
/// but not handed out, in order.
pub async fn dropped_consumer_frees_the_queue_for_a_new_consumer(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("drop-then-consume")).unwrap();
    q.attach().await.unwrap();
    for round in 0..5u32 {
        q.push_all(0..4u32).await.unwrap();
        let mut first = q.consume::<u32>().await.unwrap();
        assert_eq!(next(&mut first, "the first message").await.unwrap().into_body(), 0);
        drop(first);
        let mut second = match q.consume::<u32>().await {
            Ok(second) => second,
            Err(error) => panic!("consume right after a drop failed (round {round}): {error}"),
        };
        let rest: Vec<u32> = take(&mut second, 3, "the rest")
            .await
            .into_iter()
            .map(|d| d.unwrap().into_body())
            .collect();
        assert_eq!(rest, [1, 2, 3], "round {round}");
    }
}
