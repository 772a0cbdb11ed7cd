//! Settlement cases: what becomes of a reliable delivery whose settlement failed, and of one
//! that is held without being extended (SPEC Q13).
//! The failures are injected by [`crate::faults::FaultyStore`] around the
//! backend's real store, so that every backend is checked for the same core behaviour.

use crate::backend::Backend;
use crate::faults::Faults;
use crate::support::{bus, faulty_bus, next, unique, within};
use busmq_core::{ConsumeOptions, Error, ReliableOptions};
use futures::StreamExt;
use std::time::Duration;

/// Q13: an ack that fails (the store stays unreachable past half the visibility timeout) does
/// not pin its message: the delivery is no longer extended, so once the store is back the
/// message is delivered again after its visibility timeout (to this or another consumer), with
/// the next delivery count.
pub async fn reliable_failed_ack_comes_back_after_the_visibility_timeout(backend: &dyn Backend) {
    let (b, faults) = faulty_bus(backend).await;
    let name = unique("failed-ack");
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let producer = bus(backend).await.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let id = producer.push(&"work").await.unwrap();
    let visibility = Duration::from_secs(2);
    let options = ReliableOptions { visibility_timeout: visibility, ..Default::default() };
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let first = next(&mut consumer, "the first delivery").await.unwrap();
    assert_eq!((first.id(), first.deliveries()), (id, 1));
    faults.fail(&["settle"]);
    match first.ack().await {
        Err(error @ Error::Offline { .. }) => assert!(error.is_retryable()),
        other => panic!("expected the ack to fail with Offline, got {other:?}"),
    }
    // Healed at once: what would keep the message away now is the consumer going on extending
    // a delivery whose ack failed.
    faults.heal();
    let again = within("the redelivery after the failed ack", async {
        next(&mut consumer, "the redelivery").await.unwrap()
    })
    .await;
    assert_eq!((again.id(), again.deliveries()), (id, 2));
    again.ack().await.unwrap();
    assert_eq!(q.stat().await.unwrap().pending, 0);
}

/// Q13: with `auto_extend: false` a running consumer does not extend what it holds, so a
/// delivery it neither acknowledges nor extends comes back after the visibility timeout (here
/// to the same consumer, with the next delivery count), and the first holder's late ack is
/// stale. (With the default, `reliable_slow_work_is_not_redelivered_while_held` shows the
/// opposite.)
pub async fn reliable_without_auto_extend_held_deliveries_come_back(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("no-auto-extend")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"slow work").await.unwrap();
    let options = ReliableOptions {
        visibility_timeout: Duration::from_secs(1),
        auto_extend: false,
        ..Default::default()
    };
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let held = next(&mut consumer, "the first delivery").await.unwrap();
    assert_eq!((held.id(), held.deliveries()), (id, 1));
    let again = next(&mut consumer, "the redelivery of the held message").await.unwrap();
    assert_eq!((again.id(), again.deliveries()), (id, 2));
    let late = held.ack().await;
    assert!(matches!(late, Err(Error::StaleDelivery { .. })), "{late:?}");
    again.ack().await.unwrap();
    assert_eq!(q.stat().await.unwrap().pending, 0);
}

/// Q13: an ack made while the store is unreachable for a moment (a reconnect) waits for it and
/// lands, instead of failing and letting the message come again: no redelivery, nothing
/// pending. (A reliable consumer's prefetched delivery acked during a Redis restart failed with
/// `Offline` and came back as a duplicate.)
pub async fn reliable_ack_outlasts_a_blip(backend: &dyn Backend) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique("ack-blip")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let options =
        ReliableOptions { visibility_timeout: Duration::from_secs(10), ..Default::default() };
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let first = next(&mut consumer, "the delivery").await.unwrap();
    assert_eq!(first.id(), id);
    faults.fail(&["settle"]);
    let acked = tokio::spawn(first.ack());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!acked.is_finished(), "the ack gave up while the store was unreachable");
    faults.heal();
    within("the ack", acked).await.unwrap().unwrap();
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.pending, stat.count), (0, 0), "acknowledged: neither pending nor ready");
    let more = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(more.is_err(), "nothing comes again: {more:?}");
}

/// Q13, E1: a store that answers a settlement call with fewer outcomes than it was given
/// breaks its contract, and the ack fails with a typed store error that says so, instead of
/// pairing answers with the wrong deliveries.
pub async fn reliable_a_store_answering_for_fewer_settlements_is_a_typed_error(
    backend: &dyn Backend,
) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique("short-answer")).unwrap();
    q.attach().await.unwrap();
    q.push(&"work").await.unwrap();
    let options = ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut consumer = q.consume_with::<String>(options).await.unwrap();
    let delivery = next(&mut consumer, "the delivery").await.unwrap();
    faults.shorten_answers(&["settle"]);
    match within("the ack", delivery.ack()).await {
        Err(Error::Store { operation: "settle", message, retryable: false, .. }) => {
            assert!(message.contains("0 answers for 1 settlements"), "{message}");
        }
        other => panic!("expected a store error naming the settle call, got {other:?}"),
    }
    faults.heal();
}

/// Q13: a consumer that stops while an ack waits out a blip does not give that delivery back
/// over it: the ack lands, nothing comes again. (The stop released every delivery still held,
/// and a delivery stayed held until its ack's answer: the release landed between the ack's
/// retries, the message came back as a duplicate and the ack answered `StaleDelivery`.)
pub async fn reliable_stop_during_a_retrying_ack_does_not_release_it(backend: &dyn Backend) {
    let (b, faults) = faulty_bus(backend).await;
    let name = unique("stop-ack-blip");
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let options =
        ReliableOptions { visibility_timeout: Duration::from_secs(10), ..Default::default() };
    let consumer = q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let mut consumer = consumer;
    let first = next(&mut consumer, "the delivery").await.unwrap();
    assert_eq!(first.id(), id);
    faults.fail(&["settle"]);
    let acked = tokio::spawn(first.ack());
    // The ack's attempts: at 0, 20, 60, 140, 300, then 620 ms. Healed and stopped between
    // the last two, the stop's settlements reach the store before the ack's next attempt.
    tokio::time::sleep(Duration::from_millis(400)).await;
    faults.heal();
    consumer.stop().await;
    within("the ack", acked).await.unwrap().unwrap();
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.pending, stat.count), (0, 0), "acknowledged, not given back");
}

/// Q13: the acknowledgement that follows moving a message to the dead-letter queue after
/// `max_deliveries` rides out a blip like any ack: the message is dead-lettered once. (It was
/// sent once: lost on a blip, the message came back after its visibility timeout and was
/// dead-lettered a second time.)
pub async fn reliable_dead_letter_ack_outlasts_a_blip(backend: &dyn Backend) {
    let (name, _other, first, q, faults) = delivered_once_elsewhere(backend, "dead-ack-blip").await;
    let visibility = Duration::from_secs(2);
    let options =
        ReliableOptions { visibility_timeout: visibility, max_deliveries: 1, ..Default::default() };
    // The take claims it for dead-lettering: the push to the dead-letter queue works, the
    // acknowledgement meets the blip.
    faults.fail(&["settle"]);
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let dlq = other_queue(backend, &format!("{name}.dlq")).await;
    within("the dead letter", async {
        while dlq.count().await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    faults.heal();
    // The ack's retries (at 20, 60, 140, 300 and 620 ms) land well before the visibility
    // timeout (2 s after the take); an ack sent once and lost leaves the message pending.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.pending, stat.count), (0, 0), "acknowledged in its queue after the blip");
    tokio::time::sleep(visibility).await;
    assert_eq!(dlq.count().await.unwrap(), 1, "dead-lettered once");
    let more = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(more.is_err(), "nothing comes again: {more:?}");
    drop(first);
}

/// A handle on `name` through a bus of its own (not the faulty one).
async fn other_queue(backend: &dyn Backend, name: &str) -> busmq_core::Queue {
    bus(backend).await.queue(name).unwrap()
}

/// A consumer over a faulty store whose `settle` calls stall from the moment its heartbeat is
/// due, holding one delivery: the heartbeat's extension is then stuck in the store.
async fn held_while_the_heartbeat_is_stuck(
    backend: &dyn Backend,
    label: &str,
) -> (
    busmq_core::Queue,
    busmq_core::Delivery<String>,
    busmq_core::Consumer<String>,
    crate::faults::Faults,
) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique(label)).unwrap();
    q.attach().await.unwrap();
    q.push(&"work").await.unwrap();
    // Heartbeats every 500 ms (a third of the visibility timeout).
    let options =
        ReliableOptions { visibility_timeout: Duration::from_millis(1500), ..Default::default() };
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let delivery = next(&mut consumer, "the delivery").await.unwrap();
    faults.stall(&["settle"]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    (q, delivery, consumer, faults)
}

/// Q13: an ack whose caller stops waiting (a timeout, a select) while the heartbeat's
/// extension is stuck in the store is still sent once the store answers: the message is
/// acknowledged, not held and extended for ever. (The ack waited for the heartbeat before it
/// was queued, and a dropped wait left the delivery marked settled but held.)
pub async fn reliable_ack_whose_caller_stops_waiting_still_lands(backend: &dyn Backend) {
    let (q, delivery, mut consumer, faults) =
        held_while_the_heartbeat_is_stuck(backend, "dropped-ack").await;
    let waited = tokio::time::timeout(Duration::from_millis(100), delivery.ack()).await;
    assert!(waited.is_err(), "the store is stuck: the ack cannot have been answered");
    faults.heal();
    within("the dropped ack to land", async {
        loop {
            let stat = q.stat().await.unwrap();
            if (stat.pending, stat.count) == (0, 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let more = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(more.is_err(), "nothing comes again: {more:?}");
}

/// P9: the same for `nack_after`: a caller that stops waiting still gives the message back
/// after the delay, instead of leaving it held and extended for ever.
pub async fn reliable_nack_after_whose_caller_stops_waiting_still_releases(backend: &dyn Backend) {
    let (_q, delivery, mut consumer, faults) =
        held_while_the_heartbeat_is_stuck(backend, "dropped-nack").await;
    let id = delivery.id();
    let waited = tokio::time::timeout(
        Duration::from_millis(100),
        delivery.nack_after(Duration::from_millis(200)),
    )
    .await;
    assert!(waited.is_err(), "the store is stuck: the nack cannot have been answered");
    faults.heal();
    let again = next(&mut consumer, "the message given back").await.unwrap();
    assert_eq!((again.id(), again.deliveries()), (id, 2));
    again.ack().await.unwrap();
}

/// Q13: a consumer that stops while the acknowledgement after a dead-letter move waits out a
/// blip lets it land before its stop returns (bounded), so a process that exits after the
/// stop does not dead-letter the message again later.
pub async fn reliable_stop_waits_for_a_dead_letter_ack_in_a_blip(backend: &dyn Backend) {
    let (name, other, first, q, faults) = delivered_once_elsewhere(backend, "stop-dead-ack").await;
    let options = ReliableOptions {
        visibility_timeout: Duration::from_secs(4),
        max_deliveries: 1,
        ..Default::default()
    };
    faults.fail(&["settle"]);
    let consumer = q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let dlq = other_queue(backend, &format!("{name}.dlq")).await;
    within("the dead letter", async {
        while dlq.count().await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let stopping = tokio::spawn(async move {
        consumer.stop().await;
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!stopping.is_finished(), "the stop waits for the acknowledgement in retry");
    faults.heal();
    within("the stop", stopping).await.unwrap();
    let stat = other.stat().await.unwrap();
    assert_eq!((stat.pending, stat.count), (0, 0), "acknowledged before the stop returned");
    drop(first);
}

/// A queue holding one message that was delivered once elsewhere and given back by a stop (so
/// the next take is its second delivery), and a handle on it through a faulty bus: its name,
/// the other handle, that first delivery (kept, so that dropping it does nothing meanwhile),
/// the faulty handle and its switch.
async fn delivered_once_elsewhere(
    backend: &dyn Backend,
    label: &str,
) -> (String, busmq_core::Queue, busmq_core::Delivery<String>, busmq_core::Queue, Faults) {
    let name = unique(label);
    let other = bus(backend).await.queue(&name).unwrap();
    other.attach().await.unwrap();
    other.push(&"poison").await.unwrap();
    let mut elsewhere = other
        .consume_with::<String>(ConsumeOptions::new().reliable(ReliableOptions::default()))
        .await
        .unwrap();
    let first = next(&mut elsewhere, "the first delivery").await.unwrap();
    elsewhere.stop().await;
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    (name, other, first, q, faults)
}

/// Q13: entries a reliable consumer took into its buffer are handed out only while they are
/// still its own. When its heartbeat cannot extend them (the store is away past their
/// visibility timeout), the store gives them out again with the next delivery count; the
/// consumer must not then also hand out its buffered copies under the old count (one message,
/// two deliveries numbered alike: a redelivery the application cannot recognise).
pub async fn reliable_buffered_deliveries_past_their_visibility_are_not_handed_out(
    backend: &dyn Backend,
) {
    let (b, faults) = faulty_bus(backend).await;
    let q = b.queue(unique("lapsed-buffer")).unwrap();
    q.attach().await.unwrap();
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        ids.push(q.push(&body).await.unwrap());
    }
    let visibility = Duration::from_secs(1);
    let options = ReliableOptions { visibility_timeout: visibility, ..Default::default() };
    let mut consumer = q
        .consume_with::<String>(ConsumeOptions::new().reliable(options).prefetch(10))
        .await
        .unwrap();
    // One take got all three: the first is handed out, two and three wait in the buffer.
    let first = next(&mut consumer, "the first delivery").await.unwrap();
    assert_eq!((first.id(), first.deliveries()), (ids[0], 1));
    faults.fail(&["settle"]);
    // Past the visibility timeout and a heartbeat more, so that a take after the deadline has
    // moved the three back (the store does at a take), and not past two timeouts.
    tokio::time::sleep(visibility * 3 / 2).await;
    faults.heal();
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        deliveries.push(next(&mut consumer, "a delivery after the store came back").await.unwrap());
    }
    let mut again: Vec<(u64, u32)> = deliveries.iter().map(|d| (d.id(), d.deliveries())).collect();
    assert!(
        again.iter().all(|(_, deliveries)| *deliveries >= 2),
        "a buffered copy was handed out under its first delivery count after its visibility \
         ran out: {again:?}"
    );
    again.sort();
    let seen: Vec<u64> = again.iter().map(|(id, _)| *id).collect();
    assert_eq!(seen, ids, "each message once more, with its next delivery count: {again:?}");
    for delivery in deliveries {
        delivery.ack().await.unwrap();
    }
    assert_eq!(q.stat().await.unwrap().pending, 0);
    drop(first);
}

/// Q13: the other side of the case above. A reliable take that was held up on its way for
/// longer than the visibility timeout (a partition that delays calls instead of dropping them)
/// reaches the store late, and the store gives its entries a fresh deadline: they are this
/// consumer's, first deliveries, and are handed out as such (the consumer asks the store before
/// handing out an entry it cannot vouch for), not dropped to sit pending for a whole
/// visibility timeout and come back as second deliveries.
pub async fn reliable_entries_of_a_take_held_up_on_its_way_are_still_handed_out(
    backend: &dyn Backend,
) {
    let (b, faults) = faulty_bus(backend).await;
    let name = unique("held-up-take");
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let visibility = Duration::from_secs(1);
    let options = ReliableOptions { visibility_timeout: visibility, ..Default::default() };
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    // The consumer is running and idle; its next take waits on its way until healed.
    let producer = other_queue(backend, &name).await;
    producer.attach().await.unwrap();
    let warm = producer.push(&"warm").await.unwrap();
    let delivery = next(&mut consumer, "the first delivery").await.unwrap();
    assert_eq!(delivery.id(), warm);
    delivery.ack().await.unwrap();
    faults.stall_next_takes(1);
    let first = producer.push(&"one").await.unwrap();
    let second = producer.push(&"two").await.unwrap();
    let stalled = faults.answered_takes();
    // Past the visibility timeout, then the held-up take goes through.
    tokio::time::sleep(visibility * 3 / 2).await;
    assert_eq!(faults.answered_takes(), stalled, "no take went through meanwhile");
    faults.heal();
    let mut got = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut consumer, "a delivery of the late take").await.unwrap();
        got.push((delivery.id(), delivery.deliveries()));
        delivery.ack().await.unwrap();
    }
    assert_eq!(got, vec![(first, 1), (second, 1)], "the late take's entries, first deliveries");
    assert_eq!(producer.stat().await.unwrap().pending, 0);
}
