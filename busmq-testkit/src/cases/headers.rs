//! Header cases (SPEC P6): headers pushed with a message arrive unchanged with its delivery in
//! every consume mode, with channel messages, with dead letters and after a redrive; messages
//! without headers have none; bad keys and oversize headers are refused before anything is
//! written (SPEC E1).

use crate::backend::Backend;
use crate::support::{bus, eventually, next, unique};
use busmq_core::{
    Bus, ChannelEvent, ConsumeOptions, Delivery, Error, Headers, NameKind, Position, Queue,
    ReliableOptions,
};
use futures::StreamExt;

/// Headers with every character a store might treat specially.
fn headers(n: u32) -> Headers {
    Headers::new()
        .with("tenant", format!("t{n}"))
        .with("z:odd key", "line\nbreak \"quoted\" {json}: \u{1f600}")
        .with("empty", "")
}

fn seen<T>(d: &Delivery<T>) -> Vec<(String, String)> {
    d.headers().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn pairs(h: &Headers) -> Vec<(String, String)> {
    h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Pushes `a` (headers 1), `b` (none), raw `c` (headers 3), in that order.
async fn push_three(q: &Queue) {
    q.push_with(&"a", headers(1)).await.unwrap();
    q.push(&"b").await.unwrap();
    q.push_raw_with(&br#""c""#[..], headers(3)).await.unwrap();
}

async fn check_three(consumer: &mut busmq_core::Consumer<String>) -> Vec<Delivery<String>> {
    let mut out = Vec::new();
    for (body, want) in [("a", Some(1)), ("b", None), ("c", Some(3))] {
        let d = next(consumer, "a message with or without headers").await.unwrap();
        assert_eq!(d.body(), body);
        assert_eq!(seen(&d), want.map(|n| pairs(&headers(n))).unwrap_or_default(), "{body}");
        out.push(d);
    }
    out
}

/// P6, Q10, Q14: headers arrive unchanged, in their order, with at-most-once deliveries and
/// with replayed ones; a message pushed without headers has none.
pub async fn headers_arrive_unchanged_at_most_once_and_on_replay(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("headers")).unwrap();
    q.attach().await.unwrap();
    push_three(&q).await;
    let mut replay =
        q.consume_with::<String>(ConsumeOptions::new().replay(Position::Start)).await.unwrap();
    check_three(&mut replay).await;
    drop(replay);
    q.stop().await.unwrap();
    let mut consumer = q.consume::<String>().await.unwrap();
    check_three(&mut consumer).await;
}

/// P6, Q12, Q13: reliable deliveries carry their headers, and so do redeliveries after a nack
/// and messages given back by a stopping consumer.
pub async fn headers_arrive_unchanged_with_reliable_deliveries_and_redeliveries(
    backend: &dyn Backend,
) {
    let b = bus(backend).await;
    let q = b.queue(unique("headers-reliable")).unwrap();
    q.attach().await.unwrap();
    push_three(&q).await;
    let reliable = || ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    for d in check_three(&mut consumer).await {
        d.nack().await.unwrap();
    }
    for d in check_three(&mut consumer).await {
        assert_eq!(d.deliveries(), 2);
        d.nack().await.unwrap();
    }
    q.stop().await.unwrap();
    // An at-most-once consumer that stops with messages taken and not handed out gives them
    // back at the head.
    let mut amo = q.consume::<String>().await.unwrap();
    let first = next(&mut amo, "the first message").await.unwrap();
    assert_eq!(seen(&first), pairs(&headers(1)));
    q.stop().await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    for (body, want) in [("b", vec![]), ("c", pairs(&headers(3)))] {
        let d = next(&mut consumer, "a given-back message").await.unwrap();
        assert_eq!((d.body().as_str(), seen(&d)), (body, want));
        d.ack().await.unwrap();
    }
}

/// P6, C4: a channel message carries the headers it was sent with; one sent without has none.
pub async fn headers_arrive_with_channel_messages(backend: &dyn Backend) {
    let name = unique("headers-channel");
    let (sb, cb) = (bus(backend).await, bus(backend).await);
    let (server, client) = (sb.channel(&name).unwrap(), cb.channel(&name).unwrap());
    let mut events = server.listen::<String>().await.unwrap();
    let _client_events = client.connect::<String>().await.unwrap();
    client.send_with(&"with", headers(5)).await.unwrap();
    client.send(&"without").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        if let ChannelEvent::Message(d) = next(&mut events, "a channel message").await {
            got.push((d.body().clone(), seen(&d)));
        }
    }
    assert_eq!(got, [("with".to_string(), pairs(&headers(5))), ("without".to_string(), vec![])]);
}

/// Rejects every message of `q` into its dead-letter queue and waits until all `n` are there.
async fn reject_all(b: &Bus, q: &Queue, n: u64) {
    let reliable = ConsumeOptions::new().reliable(ReliableOptions::default()).max(n);
    let mut consumer = q.consume_with::<String>(reliable).await.unwrap();
    while let Some(d) = consumer.next().await {
        d.unwrap().reject("bad").await.unwrap();
    }
    let dlq = b.dead_letters(q.name()).unwrap();
    eventually("the dead letters", || async { dlq.count().await.unwrap() == n }).await;
}

/// P6, P7, Q13: a dead letter keeps its headers (listed, and consumed from the dead-letter
/// queue, whether rejected or past `max_deliveries`), and a redrive puts them back with it.
pub async fn dead_letters_and_redriven_messages_keep_their_headers(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("headers-dead")).unwrap();
    q.attach().await.unwrap();
    q.push_with(&"a", headers(1)).await.unwrap();
    q.push(&"b").await.unwrap();
    reject_all(&b, &q, 2).await;
    q.push_with(&"poison", headers(2)).await.unwrap();
    let options = ReliableOptions { max_deliveries: 1, ..ReliableOptions::default() };
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    next(&mut consumer, "the poison message").await.unwrap().nack().await.unwrap();
    let dlq = b.dead_letters(q.name()).unwrap();
    eventually("the poison message to die", || async { dlq.count().await.unwrap() == 3 }).await;
    q.stop().await.unwrap();

    let listed = dlq.list(10).await.unwrap();
    let listed: Vec<_> = listed.iter().map(|m| (m.reason.clone(), pairs(&m.headers))).collect();
    let want = [
        ("rejected: bad".to_string(), pairs(&headers(1))),
        ("rejected: bad".to_string(), vec![]),
        ("max_deliveries".to_string(), pairs(&headers(2))),
    ];
    assert_eq!(listed, want);
    let dead = b.queue(dlq.name()).unwrap();
    dead.attach().await.unwrap();
    let mut read =
        dead.consume_with::<String>(ConsumeOptions::new().replay(Position::Start)).await.unwrap();
    let d = next(&mut read, "a dead letter").await.unwrap();
    assert_eq!((d.dead_letter().is_some(), seen(&d)), (true, pairs(&headers(1))));
    drop(read);
    dead.detach().await.unwrap();

    assert_eq!(dlq.redrive_all().await.unwrap().moved, 3);
    let mut consumer = q.consume::<String>().await.unwrap();
    for (body, want) in [("a", pairs(&headers(1))), ("b", vec![]), ("poison", pairs(&headers(2)))] {
        let d = next(&mut consumer, "a redriven message").await.unwrap();
        assert_eq!((d.body().as_str(), seen(&d), d.dead_letter().is_none()), (body, want, true));
    }
}

/// P6, E1: an invalid header key (empty, a control character) fails the push, the raw push
/// and the channel send with `InvalidName` of kind `HeaderKey`; nothing is written.
pub async fn invalid_header_keys_are_refused_and_nothing_is_written(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("headers-bad")).unwrap();
    q.attach().await.unwrap();
    let is_bad_key = |r: busmq_core::Result<u64>, says: &str| match r {
        Err(Error::InvalidName { kind: NameKind::HeaderKey, reason, .. }) => {
            assert!(reason.contains(says), "{reason}")
        }
        other => panic!("expected an invalid header key ({says}), got {other:?}"),
    };
    is_bad_key(q.push_with(&1, Headers::new().with("", "v")).await, "empty");
    is_bad_key(q.push_with(&1, Headers::new().with("ok", "v").with("a\nb", "v")).await, "control");
    is_bad_key(q.push_raw_with(&b"1"[..], Headers::new().with("\u{7f}", "v")).await, "control");
    let channel = b.channel(unique("headers-bad")).unwrap();
    let _events = channel.connect::<u32>().await.unwrap();
    is_bad_key(channel.send_with(&1, Headers::new().with("", "v")).await, "empty");
    assert_eq!(q.count().await.unwrap(), 0, "nothing was written");
}

/// P6, E1: headers count towards the message size limit (the bytes of every key and value):
/// a message that fits alone and not with its headers is `MessageTooLarge`, nothing written.
pub async fn headers_count_towards_the_message_size_limit(backend: &dyn Backend) {
    let b = Bus::builder_from_handle(backend.store().await).max_message_size(1024).build().unwrap();
    b.connect().await.unwrap();
    let q = b.queue(unique("headers-big")).unwrap();
    q.attach().await.unwrap();
    let body = vec![7u8; 1000];
    let big = Headers::new().with("k", "v".repeat(24));
    match q.push_raw_with(body.clone(), big.clone()).await {
        Err(Error::MessageTooLarge { size: 1025, limit: 1024, .. }) => {}
        other => panic!("expected MessageTooLarge of 1025 bytes, got {other:?}"),
    }
    let text = "x".repeat(998);
    assert!(matches!(q.push_with(&text, big).await, Err(Error::MessageTooLarge { .. })));
    assert_eq!(q.count().await.unwrap(), 0, "nothing was written");
    q.push_raw_with(body, Headers::new().with("k", "v".repeat(23)))
        .await
        .expect("exactly the limit");
    b.disconnect().await.unwrap();
}
