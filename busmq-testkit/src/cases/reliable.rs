//! At-least-once cases: per-message acks, redelivery on stop, drop, abort, death and timeout,
//! detach, channels (SPEC Q13, C6). Dead letters are in `dead_letters.rs`, many consumers
//! sharing a queue in `sharing.rs`.

use crate::backend::Backend;
use crate::support::{bus, drain_quiet, eventually, next, take, unique, within};
use busmq_core::store::TakeMode;
use busmq_core::{
    ChannelEvent, ChannelOptions, ConsumeOptions, Consumer, Delivery, Error, QueueName,
    ReliableOptions,
};
use futures::StreamExt;
use std::time::Duration;

pub(crate) fn reliable() -> ConsumeOptions {
    ConsumeOptions::new().reliable(ReliableOptions::default())
}

pub(crate) fn reliable_with(options: ReliableOptions) -> ConsumeOptions {
    ConsumeOptions::new().reliable(options)
}

pub(crate) async fn one(consumer: &mut Consumer<String>, what: &str) -> Delivery<String> {
    next(consumer, what).await.expect("a decodable delivery")
}

/// Q13: an acknowledged delivery is gone; each delivery carries its id and count.
pub async fn reliable_ack_removes_the_message(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("ack")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let d = one(&mut consumer, "delivery").await;
    assert_eq!((d.id(), d.deliveries(), d.is_reliable()), (id, 1, true));
    assert_eq!(q.stat().await.unwrap().pending, 1);
    d.ack().await.unwrap();
    assert_eq!(q.stat().await.unwrap().pending, 0);
    assert_eq!(q.count().await.unwrap(), 0);
    q.stop().await.unwrap();
    assert_eq!(q.count().await.unwrap(), 0, "nothing comes back after a stop");
}

/// Q13 (study 7.2 #20 with per-message acks): push 1..5, ack 1 and 2, stop while holding 3:
/// consuming again delivers 3 (second delivery), 4, 5 in the original order; six deliveries in
/// all, ids in push order.
pub async fn reliable_unacked_messages_come_back_in_order_after_stop(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("redeliver")).unwrap();
    q.attach().await.unwrap();
    let ids = q.push_all(["1", "2", "3", "4", "5"]).await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let d = one(&mut consumer, "first deliveries").await;
        seen.push((d.id(), d.deliveries()));
        d.ack().await.unwrap();
    }
    let third = one(&mut consumer, "third").await;
    seen.push((third.id(), third.deliveries()));
    q.stop().await.unwrap();
    drop(third);
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    for _ in 0..3 {
        let d = one(&mut consumer, "redeliveries").await;
        seen.push((d.id(), d.deliveries()));
        d.ack().await.unwrap();
    }
    assert_eq!(
        seen,
        vec![(ids[0], 1), (ids[1], 1), (ids[2], 1), (ids[2], 2), (ids[3], 1), (ids[4], 1)]
    );
    assert!(drain_quiet(&mut consumer).await.is_empty());
}

/// Q13: `nack` gives a message back at once (the default `RetryPolicy::none`); a dropped
/// delivery is released the same way.
pub async fn reliable_nack_and_drop_redeliver_at_once(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("nack")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"again").await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    one(&mut consumer, "first").await.nack().await.unwrap();
    let second = one(&mut consumer, "after nack").await;
    assert_eq!((second.id(), second.deliveries()), (id, 2));
    drop(second);
    let third = one(&mut consumer, "after drop").await;
    assert_eq!((third.id(), third.deliveries()), (id, 3));
    third.ack().await.unwrap();
}

/// Q13: without auto-extension a delivery not acknowledged within the visibility timeout goes
/// to another consumer; the late ack of the first holder is `StaleDelivery`. Deliveries handed
/// out before `max` was reached stay with their holder after the stream ends.
pub async fn reliable_visibility_timeout_redelivers_to_another_consumer(backend: &dyn Backend) {
    let name = unique("visibility");
    let strict = ReliableOptions {
        visibility_timeout: Duration::from_secs(1),
        auto_extend: false,
        ..ReliableOptions::default()
    };
    let (a, b) = (bus(backend).await, bus(backend).await);
    let qa = a.queue(&name).unwrap();
    qa.attach().await.unwrap();
    let id = qa.push(&"slow").await.unwrap();
    let mut first = qa.consume_with::<String>(reliable_with(strict.clone()).max(1)).await.unwrap();
    let held = one(&mut first, "first delivery").await;
    crate::support::ends(&mut first, "the first consumer to stop at max").await;
    let qb = b.queue(&name).unwrap();
    qb.attach().await.unwrap();
    let mut second = qb.consume_with::<String>(reliable_with(strict)).await.unwrap();
    let again = one(&mut second, "redelivery after the timeout").await;
    assert_eq!((again.id(), again.deliveries()), (id, 2));
    let late = held.ack().await;
    assert!(matches!(late, Err(Error::StaleDelivery { .. })), "{late:?}");
    again.ack().await.unwrap();
    assert_eq!(qa.stat().await.unwrap().pending, 0);
}

/// Q13: a delivery handed out before `max` was reached can be acknowledged after the consumer
/// stopped by itself.
pub async fn reliable_ack_after_max_is_accepted(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("ack-after-max")).unwrap();
    q.attach().await.unwrap();
    q.push_all(["a", "b"]).await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable().max(1)).await.unwrap();
    let d = one(&mut consumer, "the one").await;
    crate::support::ends(&mut consumer, "the consumer to stop at max").await;
    eventually("consuming to stop", || async { !q.is_consuming().await }).await;
    d.ack().await.expect("still held");
    assert_eq!(q.stat().await.unwrap().pending, 0);
    assert_eq!(q.count().await.unwrap(), 1, "the second message is still ready");
}

/// Q13: by default a consumer keeps extending what it holds, so slow work is not redelivered;
/// `extend` does the same by hand.
pub async fn reliable_slow_work_is_not_redelivered_while_held(backend: &dyn Backend) {
    let short = ReliableOptions {
        visibility_timeout: Duration::from_secs(1),
        ..ReliableOptions::default()
    };
    let manual_options = ReliableOptions { auto_extend: false, ..short.clone() };
    let (a, b) = (bus(backend).await, bus(backend).await);
    // Automatic: the holder keeps running; a competitor sees nothing for three periods.
    let auto_name = unique("slow-auto");
    let holder = a.queue(&auto_name).unwrap();
    holder.attach().await.unwrap();
    holder.push(&"auto").await.unwrap();
    let mut worker = holder.consume_with::<String>(reliable_with(short)).await.unwrap();
    let auto = one(&mut worker, "auto").await;
    let competitor = b.queue(&auto_name).unwrap();
    competitor.attach().await.unwrap();
    let mut other =
        competitor.consume_with::<String>(reliable_with(manual_options.clone())).await.unwrap();
    // By hand: a strict consumer extends its delivery.
    let manual_name = unique("slow-manual");
    let manual_q = b.queue(&manual_name).unwrap();
    manual_q.attach().await.unwrap();
    manual_q.push(&"manual").await.unwrap();
    let options = reliable_with(manual_options.clone()).max(1);
    let mut manual_consumer = manual_q.consume_with::<String>(options).await.unwrap();
    let manual = one(&mut manual_consumer, "manual").await;
    manual.extend(Duration::from_secs(5)).await.unwrap();
    let watcher = a.queue(&manual_name).unwrap();
    watcher.attach().await.unwrap();
    let mut manual_competitor =
        watcher.consume_with::<String>(reliable_with(manual_options)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(drain_quiet(&mut other).await.is_empty(), "auto: nothing was redelivered");
    assert!(
        drain_quiet(&mut manual_competitor).await.is_empty(),
        "manual: nothing was redelivered"
    );
    auto.ack().await.expect("still held after three visibility periods");
    manual.ack().await.expect("extended by hand");
    assert_eq!(holder.stat().await.unwrap().pending, 0);
    assert_eq!(manual_q.stat().await.unwrap().pending, 0);
}

/// Q13: a consumer that dies without detaching (it took a message and never settled it) gives
/// it up after the visibility timeout.
pub async fn reliable_dead_consumer_messages_come_back(backend: &dyn Backend) {
    let name = QueueName::new(unique("dead")).unwrap();
    let b = bus(backend).await;
    let q = b.queue(name.as_str()).unwrap();
    q.attach().await.unwrap();
    let ids = q.push_all(["x", "y"]).await.unwrap();
    let store = backend.store().await;
    store.connect().await.unwrap();
    let mode = TakeMode::Reliable { visibility: Duration::from_secs(1), max_deliveries: 5 };
    let taken = store.take(&name, 1, mode).await.unwrap();
    assert_eq!(taken.entries.len(), 1);
    drop(store);
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = one(&mut consumer, "both messages").await;
        got.push((d.id(), d.deliveries()));
        d.ack().await.unwrap();
    }
    got.sort_unstable();
    assert_eq!(got, vec![(ids[0], 2), (ids[1], 1)]);
}

/// Q13: an idle consumer takes back a dead consumer's delivery when its visibility deadline
/// passes, not at its own next safety check (with the default 30 s visibility that comes every
/// 5 s): the take that found nothing said when the earliest pending delivery runs out.
pub async fn reliable_an_idle_consumer_takes_back_a_dead_ones_delivery_at_its_deadline(
    backend: &dyn Backend,
) {
    let name = QueueName::new(unique("deadline")).unwrap();
    let b = bus(backend).await;
    let q = b.queue(name.as_str()).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"x").await.unwrap();
    let store = backend.store().await;
    store.connect().await.unwrap();
    let mode = TakeMode::Reliable { visibility: Duration::from_secs(1), max_deliveries: 5 };
    let taken_at = tokio::time::Instant::now();
    assert_eq!(store.take(&name, 1, mode).await.unwrap().entries.len(), 1);
    drop(store);
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let again = one(&mut consumer, "the dead consumer's delivery").await;
    let after = taken_at.elapsed();
    assert_eq!((again.id(), again.deliveries()), (id, 2));
    // Its deadline is 1 s; the consumer may wait up to a quarter of its 5 s heartbeat period
    // for a deadline (1.25 s), and a loaded machine adds some.
    assert!(after < Duration::from_secs(3), "taken back {after:?} after the dead consumer's take");
    again.ack().await.unwrap();
    assert_eq!(q.stat().await.unwrap().pending, 0);
}

/// Q13: a consumer task aborted in the middle of a batch loses nothing: what it held and what it
/// had prefetched comes back, in order.
pub async fn reliable_aborted_consumer_task_loses_nothing(backend: &dyn Backend) {
    let name = unique("abort");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let ids = q.push_all((0..10).map(|i| i.to_string())).await.unwrap();
    let worker_q = bus(backend).await.queue(&name).unwrap();
    worker_q.attach().await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut consumer = worker_q.consume_with::<String>(reliable().prefetch(10)).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(consumer.next().await.unwrap().unwrap());
        }
        let _ = tx.send(());
        std::future::pending::<()>().await;
        drop((held, worker_q));
    });
    within("the worker to hold three", rx).await.unwrap();
    task.abort();
    let _ = task.await;
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        let d = one(&mut consumer, "all ten").await;
        got.push(d.id());
        d.ack().await.unwrap();
    }
    assert_eq!(got, ids, "nothing lost, original order");
}

/// Q13: detaching returns what the consumer held.
pub async fn reliable_detach_gives_back_held_messages(backend: &dyn Backend) {
    let name = unique("detach");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let ids = q.push_all(["a", "b"]).await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let held = one(&mut consumer, "a").await;
    q.detach().await.unwrap();
    assert!(matches!(held.ack().await, Err(Error::StaleDelivery { .. })), "released by the detach");
    let other = bus(backend).await.queue(&name).unwrap();
    other.attach().await.unwrap();
    let mut consumer = other.consume_with::<String>(reliable()).await.unwrap();
    let got: Vec<(u64, u32)> = take(&mut consumer, 2, "both")
        .await
        .into_iter()
        .map(|d| {
            let d = d.unwrap();
            (d.id(), d.deliveries())
        })
        .collect();
    assert_eq!(got, vec![(ids[0], 2), (ids[1], 1)]);
}

/// C6 (study 7.2 #24 with per-message acks): a reliable channel peer that disconnects without
/// acknowledging message 3 receives it again when it connects again; 1, 2, 4, 5 arrive once;
/// control frames never acknowledge user messages.
pub async fn reliable_channel_peer_gets_unacknowledged_messages_after_reconnecting(
    backend: &dyn Backend,
) {
    let name = unique("reliable-channel");
    let (sb, cb) = (bus(backend).await, bus(backend).await);
    let options = ChannelOptions::new().reliable(ReliableOptions::default());
    let server = sb.channel(&name).unwrap();
    let mut se = server.listen_with::<String>(options.clone()).await.unwrap();
    let client = cb.channel(&name).unwrap();
    let mut ce = client.connect_with::<String>(options.clone()).await.unwrap();
    for i in 1..=5 {
        server.send(&i.to_string()).await.unwrap();
    }
    let mut received = Vec::new();
    let mut held = None;
    while held.is_none() {
        if let ChannelEvent::Message(m) = next(&mut ce, "messages").await {
            received.push(m.body().clone());
            if m.body() == "3" {
                held = Some(m);
            } else {
                m.ack().await.unwrap();
            }
        }
    }
    client.disconnect().await.unwrap();
    drop(held);
    crate::support::ends(&mut ce, "the end of the first session").await;
    let mut ce = client.connect_with::<String>(options).await.unwrap();
    while received.len() < 6 {
        if let ChannelEvent::Message(m) = next(&mut ce, "redelivered messages").await {
            received.push(m.body().clone());
            m.ack().await.unwrap();
        }
    }
    assert_eq!(received, ["1", "2", "3", "3", "4", "5"]);
    let inbox = sb.queue(format!("channel:local:{name}")).unwrap();
    assert_eq!(inbox.stat().await.unwrap().pending, 0, "everything was acknowledged");
    client.end().await.unwrap();
    loop {
        match next(&mut se, "the server's End").await {
            ChannelEvent::End => break,
            ChannelEvent::Error(e) => panic!("{e}"),
            _ => {}
        }
    }
}

/// Q14: retention by count keeps the newest messages of a replay queue.
pub async fn retention_by_count_keeps_the_newest(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("retain-count")).unwrap();
    q.attach_with(busmq_core::AttachOptions::new().retain_count(5)).await.unwrap();
    q.push_all((0..10).map(|i| format!("m{i}"))).await.unwrap();
    assert_eq!(q.count().await.unwrap(), 5);
    let mut reader = q.consume_with::<String>(ConsumeOptions::new().remove(false)).await.unwrap();
    let got: Vec<String> = take(&mut reader, 5, "retained")
        .await
        .into_iter()
        .map(|d| d.unwrap().into_body())
        .collect();
    assert_eq!(got, ["m5", "m6", "m7", "m8", "m9"]);
}

/// Q14: retention by age drops messages older than the limit.
pub async fn retention_by_age_drops_old_messages(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("retain-age")).unwrap();
    q.attach_with(busmq_core::AttachOptions::new().retain_for(Duration::from_secs(1)))
        .await
        .unwrap();
    q.push_all(["old1", "old2"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    q.push(&"new").await.unwrap();
    let mut reader = q
        .consume_with::<String>(ConsumeOptions::new().replay(busmq_core::Position::Start))
        .await
        .unwrap();
    assert_eq!(next(&mut reader, "the new message").await.unwrap().body(), "new");
    assert!(drain_quiet(&mut reader).await.is_empty());
    assert_eq!(q.count().await.unwrap(), 1);
}
