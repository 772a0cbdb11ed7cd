//! The limits that keep one caller or one hostile queue from taking unbounded memory (SPEC E1,
//! S4), as `docs/limits.md` lists them: each is a typed error that names the limit, and
//! nothing is written. Run on the memory store; the limits are checked before any store call.

use busmq::memory::Memory;
use busmq::{Bus, ConsumeOptions, Error, MAX_READ, Position, PushOptions};

async fn bus() -> Bus {
    let bus = Bus::builder(Memory::new().store()).max_message_size(64).build().unwrap();
    bus.connect().await.unwrap();
    bus
}

fn assert_names(what: &str, error: Error, limit: &str) {
    let text = error.to_string();
    assert!(text.contains(limit), "{what}: {text:?} does not name the limit {limit}");
}

#[tokio::test]
async fn every_limit_is_a_typed_error_naming_it() {
    let bus = bus().await;
    // Names: 1024 bytes.
    let error = bus.queue("q".repeat(1025)).unwrap_err();
    assert!(matches!(error, Error::InvalidName { .. }), "{error:?}");
    assert_names("queue name", error, "1024");
    assert!(bus.queue("q".repeat(1024)).is_ok());
    assert_names("topic name", bus.pubsub("t".repeat(1025)).unwrap_err(), "1024");

    let queue = bus.queue("limits").unwrap();
    queue.attach().await.unwrap();
    // Message size: the bus's limit (8 MiB by default, 64 bytes here).
    let error = queue.push(&"x".repeat(100)).await.unwrap_err();
    assert!(matches!(error, Error::MessageTooLarge { .. }), "{error:?}");
    assert_names("message size", error, "64");
    // Dedupe keys: 1024 bytes.
    let long_key = PushOptions::new().dedupe("k".repeat(1025));
    assert_names("dedupe key", queue.push_with(&"m", long_key).await.unwrap_err(), "1024");
    assert_eq!(queue.count().await.unwrap(), 0, "nothing was written");

    // Reads: MAX_READ messages per peek or dead-letter listing.
    assert_eq!(MAX_READ, 10_000);
    let error = queue.peek(Position::Start, MAX_READ + 1).await.unwrap_err();
    assert!(matches!(error, Error::InvalidOption { option: "max", .. }), "{error:?}");
    assert_names("peek", error, "10000");
    assert!(queue.peek(Position::Start, MAX_READ).await.unwrap().entries.is_empty());
    let dlq = bus.dead_letters("limits").unwrap();
    assert_names("dead letters", dlq.list(MAX_READ + 1).await.unwrap_err(), "10000");
    assert!(dlq.list(MAX_READ).await.unwrap().is_empty());

    // Prefetch: 1 to 10000 messages held by one consumer.
    let too_many = ConsumeOptions::new().prefetch(10_001);
    assert_names("prefetch", queue.consume_with::<String>(too_many).await.unwrap_err(), "10000");
}
