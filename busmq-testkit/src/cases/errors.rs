//! Bad-input cases: invalid names, options and messages get typed errors that name the problem,
//! and nothing is written (SPEC E1, E2).

use crate::backend::Backend;
use crate::support::{bus, bus_with, unique};
use busmq_core::{
    AttachOptions, Bus, Codec, ConsumeOptions, Error, NameKind, QueueName, ReliableOptions,
};
use std::time::Duration;

fn assert_invalid_name<T: std::fmt::Debug>(
    result: busmq_core::Result<T>,
    kind: NameKind,
    says: &str,
) {
    match result {
        Err(Error::InvalidName { kind: k, ref reason, .. }) if k == kind => {
            let text = result.as_ref().unwrap_err().to_string();
            assert!(reason.contains(says) || text.contains(says), "{text}");
        }
        other => panic!("expected an invalid {kind} name ({says}), got {other:?}"),
    }
}

fn assert_invalid_option<T: std::fmt::Debug>(result: busmq_core::Result<T>, option: &str) {
    match result {
        Err(Error::InvalidOption { option: o, .. }) if o == option => {}
        other => panic!("expected invalid option {option}, got {other:?}"),
    }
}

/// E1: empty, over-long, control-character and non-UTF-8 names are rejected with the reason,
/// for queues, channels, roles, topics and metadata keys.
pub async fn invalid_names_are_rejected_before_the_store(backend: &dyn Backend) {
    let b = bus(backend).await;
    assert_invalid_name(b.queue(""), NameKind::Queue, "empty");
    assert_invalid_name(b.queue("x".repeat(1025)), NameKind::Queue, "1025 bytes long");
    assert_invalid_name(b.queue("tab\there"), NameKind::Queue, "control character");
    assert_invalid_name(QueueName::from_bytes(b"bad\xff"), NameKind::Queue, "not valid UTF-8");
    assert_invalid_name(b.channel(""), NameKind::Channel, "empty");
    assert_invalid_name(b.channel("c".repeat(1020)), NameKind::Channel, "at most 1010 bytes");
    assert_invalid_name(b.channel_with_roles("c", "", "remote"), NameKind::Role, "empty");
    assert_invalid_name(b.channel_with_roles("c", "same", "same"), NameKind::Role, "must differ");
    assert_invalid_name(b.pubsub(""), NameKind::Topic, "empty");
    let q = b.queue(unique("meta")).unwrap();
    q.attach().await.unwrap();
    assert_invalid_name(q.set_metadata("", "v").await, NameKind::MetadataKey, "empty");
    assert_invalid_name(q.metadata("k\n").await, NameKind::MetadataKey, "control character");
    let channel = b.channel(unique("c")).unwrap();
    assert_invalid_name(channel.send_to("", &1).await, NameKind::Role, "empty");
    assert_eq!(q.metadata_all().await.unwrap(), vec![], "nothing was written");
}

/// E1: impossible options (`ttl = 0`, `maxsize = 0`, `max = 0`, `prefetch = 0`,
/// `max_deliveries = 0`) are rejected, naming the option, before the queue is created.
pub async fn invalid_options_are_rejected(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("options")).unwrap();
    assert_invalid_option(q.attach_with(AttachOptions::new().ttl(Duration::ZERO)).await, "ttl");
    assert_invalid_option(q.attach_with(AttachOptions::new().maxsize(0)).await, "maxsize");
    assert!(!q.exists().await.unwrap(), "nothing was created");
    q.attach().await.unwrap();
    assert_invalid_option(q.consume_with::<i32>(ConsumeOptions::new().max(0)).await, "max");
    assert_invalid_option(
        q.consume_with::<i32>(ConsumeOptions::new().prefetch(0)).await,
        "prefetch",
    );
    let reliable = ReliableOptions { max_deliveries: 0, ..ReliableOptions::default() };
    assert_invalid_option(
        q.consume_with::<i32>(ConsumeOptions::new().reliable(reliable)).await,
        "max_deliveries",
    );
    assert!(!q.is_consuming().await);
    let text = q.consume_with::<i32>(ConsumeOptions::new().max(0)).await.unwrap_err().to_string();
    assert!(text.starts_with("invalid option max:"), "{text}");
    assert_invalid_option(
        Bus::builder_from_handle(backend.store().await).max_message_size(0).build(),
        "max_message_size",
    );
}

/// E1: a message over the size limit is rejected with its size and the limit; nothing of it (or
/// of its batch) is written.
pub async fn oversize_message_is_rejected_and_nothing_written(backend: &dyn Backend) {
    let b = Bus::builder_from_handle(backend.store().await).max_message_size(1024).build().unwrap();
    b.connect().await.unwrap();
    let q = b.queue(unique("big")).unwrap();
    q.attach().await.unwrap();
    let big = "x".repeat(2000);
    match q.push(&big).await {
        Err(Error::MessageTooLarge { size, limit: 1024, .. }) => assert_eq!(size, 2002),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert!(matches!(q.push_raw(vec![0u8; 1025]).await, Err(Error::MessageTooLarge { .. })));
    let batch = q.push_all(["small".to_string(), big.clone()]).await;
    assert!(matches!(batch, Err(Error::MessageTooLarge { .. })), "{batch:?}");
    assert_eq!(q.count().await.unwrap(), 0, "nothing was written");
    q.push_raw(vec![7u8; 1024]).await.expect("exactly the limit is fine");
    let channel = b.channel(unique("big")).unwrap();
    let _events = channel.connect::<String>().await.unwrap();
    assert!(matches!(channel.send(&big).await, Err(Error::MessageTooLarge { .. })));
    let topic = b.pubsub(unique("big")).unwrap();
    assert!(matches!(topic.publish(&big).await, Err(Error::MessageTooLarge { .. })));
    b.disconnect().await.unwrap();
}

/// E1: a message the codec cannot encode is an `Encode` error naming the queue and the type; a
/// batch with one such message writes nothing. Raw payloads are stored and consumed as they are.
pub async fn unencodable_message_writes_nothing(backend: &dyn Backend) {
    let b = bus_with(backend, Codec::Raw).await;
    let q = b.queue(unique("raw")).unwrap();
    q.attach().await.unwrap();
    let structured = serde_json::json!({"not": "raw"});
    match q.push(&structured).await {
        Err(error @ Error::Encode { .. }) => {
            let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
            assert!(text.contains("could not encode a message for queue"), "{text}");
            assert!(text.contains("raw codec could not encode"), "{text}");
        }
        other => panic!("expected an encode error, got {other:?}"),
    }
    let batch = q.push_all([serde_json::json!("fine"), structured]).await;
    assert!(matches!(batch, Err(Error::Encode { .. })), "{batch:?}");
    assert_eq!(q.count().await.unwrap(), 0);
    q.push("plain text").await.unwrap();
    let mut consumer = q.consume::<String>().await.unwrap();
    let got = crate::support::next(&mut consumer, "raw text").await.unwrap();
    assert_eq!(got.body(), "plain text");
    assert_eq!(&got.payload()[..], b"plain text", "raw payloads are stored as they are");
    drop(consumer);
    // Undecoded, the body is the payload (one buffer: `payload()` reads it from the body).
    q.push("raw bytes").await.unwrap();
    let mut raw = q.consume_raw(ConsumeOptions::new()).await.unwrap();
    let got = crate::support::next(&mut raw, "raw bytes").await.unwrap();
    assert_eq!((&got.body()[..], &got.payload()[..]), (&b"raw bytes"[..], &b"raw bytes"[..]));
}

/// E1, Q13: a queue name of the full 1 KiB is valid and consumes reliably once a dead-letter
/// queue is named; with the default `<name>.dlq` (4 bytes too long) the error names the
/// option and says how to fix it, and nothing is consumed.
pub async fn long_queue_name_needs_a_named_dead_letter_queue(backend: &dyn Backend) {
    let b = bus(backend).await;
    let long = format!("{}-", unique("long")).repeat(100)[..1024].to_string();
    let q = b.queue(&long).unwrap();
    q.attach().await.unwrap();
    q.push(&"job").await.unwrap();
    let refused =
        q.consume_with::<String>(ConsumeOptions::new().reliable(ReliableOptions::default()));
    match refused.await {
        Err(Error::InvalidOption { option: "dead_letter_queue", reason }) => {
            assert!(reason.contains("1028 bytes"), "says how long the default name is: {reason}");
            assert!(reason.contains("1024"), "names the limit: {reason}");
            assert!(
                reason.contains("ReliableOptions::dead_letter_queue"),
                "says how to fix it: {reason}"
            );
        }
        other => panic!("expected InvalidOption(dead_letter_queue), got {other:?}"),
    }
    assert_eq!(q.count().await.unwrap(), 1, "nothing was consumed");
    let dlq = unique("long-dlq");
    let options = ReliableOptions { dead_letter_queue: Some(dlq), ..Default::default() };
    let mut consumer =
        q.consume_with::<String>(ConsumeOptions::new().reliable(options)).await.unwrap();
    let job = crate::support::next(&mut consumer, "the job").await.unwrap();
    assert_eq!(job.body(), "job");
    job.ack().await.unwrap();
    assert_eq!(q.count().await.unwrap(), 0);
}
