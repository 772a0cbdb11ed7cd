//! What busmq logs, at which level (SPEC O1): captured through a `tracing` layer while a bus
//! on the memory store goes online, moves messages in steady state, redelivers, dead-letters,
//! meets an undecodable message and disconnects. INFO and above must stay quiet in steady state
//! and WARN must come with what needs attention.

use busmq::memory::Memory;
use busmq::{Bus, ConsumeOptions, Delivery, ReliableOptions};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// One event as the layer saw it: its level, message and fields.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    message: String,
    fields: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.record(field, text);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.fields.push((field.name().to_string(), value));
        }
    }
}

/// Keeps every event of busmq's crates.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !event.metadata().target().starts_with("busmq") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let seen = Seen {
            level: *event.metadata().level(),
            message: fields.message,
            fields: fields.fields,
        };
        self.0.lock().unwrap().push(seen);
    }
}

impl Capture {
    /// Everything seen since the last call.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn at_least(events: &[Seen], level: Level) -> Vec<&Seen> {
    // tracing orders levels by verbosity: ERROR < WARN < INFO < DEBUG < TRACE.
    events.iter().filter(|e| e.level <= level).collect()
}

async fn next<T>(stream: &mut busmq::Consumer<T>) -> Delivery<T> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a delivery within 10 s")
        .expect("the stream goes on")
        .expect("a delivery, not an error")
}

// A current-thread runtime: every task busmq spawns runs on this thread, under the
// subscriber set as this thread's default.
#[tokio::test]
async fn info_is_quiet_in_steady_state_and_warn_names_what_needs_attention() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let bus = Bus::new(Memory::new().store());
    bus.connect().await.expect("connect");
    let online = capture.take();
    assert!(
        online.iter().any(|e| e.level == Level::INFO && e.message == "bus online"),
        "{online:?}"
    );

    // Steady state: pushes, an at-most-once consumer and a reliable one with acks.
    let jobs = bus.queue("jobs").expect("name");
    jobs.attach().await.expect("attach");
    for n in 0..50u32 {
        jobs.push(&n).await.expect("push");
    }
    let mut plain = jobs.consume_with::<u32>(ConsumeOptions::new().max(50)).await.expect("consume");
    for _ in 0..50 {
        next(&mut plain).await;
    }
    drop(plain);
    let reliable = ConsumeOptions::new().reliable(ReliableOptions::default()).max(50);
    for n in 0..50u32 {
        jobs.push(&n).await.expect("push");
    }
    let mut acked = jobs.consume_with::<u32>(reliable).await.expect("consume");
    for _ in 0..50 {
        next(&mut acked).await.ack().await.expect("ack");
    }
    acked.stop().await;
    let steady = capture.take();
    assert!(at_least(&steady, Level::INFO).is_empty(), "INFO or above in steady state: {steady:?}");

    // A redelivery is DEBUG; a rejected message is a WARN naming the queue, the reason and
    // where it went.
    let options = ReliableOptions { max_deliveries: 3, ..ReliableOptions::default() };
    jobs.push(&7u32).await.expect("push");
    let mut worker = jobs
        .consume_with::<u32>(ConsumeOptions::new().reliable(options.clone()))
        .await
        .expect("consume");
    let first = next(&mut worker).await;
    first.nack().await.expect("nack");
    let again = next(&mut worker).await;
    assert_eq!(again.deliveries(), 2);
    again.reject("no such customer").await.expect("reject");
    worker.stop().await;
    let seen = capture.take();
    assert!(seen.iter().any(|e| e.level == Level::DEBUG && e.message == "redelivery"), "{seen:?}");
    let dead: Vec<_> = seen.iter().filter(|e| e.message == "message dead-lettered").collect();
    assert_eq!(dead.len(), 1, "{seen:?}");
    assert_eq!(dead[0].level, Level::WARN);
    assert_eq!(dead[0].field("queue"), Some("jobs"));
    assert_eq!(dead[0].field("dead_letter_queue"), Some("jobs.dlq"));
    assert!(dead[0].field("reason").is_some_and(|r| r.contains("no such customer")), "{dead:?}");
    assert!(at_least(&seen, Level::WARN).len() == 1, "only the dead letter warns: {seen:?}");

    // A message that does not decode into the consumer's type is a WARN too.
    jobs.push(&"not a number").await.expect("push");
    let mut typed = jobs.consume_with::<u32>(ConsumeOptions::new().max(1)).await.expect("consume");
    let got = tokio::time::timeout(Duration::from_secs(10), typed.next()).await.expect("in time");
    assert!(matches!(got, Some(Err(_))), "an undecodable message is an error item: {got:?}");
    drop(typed);
    let seen = capture.take();
    let undecodable: Vec<_> = seen.iter().filter(|e| e.message == "undecodable message").collect();
    assert_eq!(undecodable.len(), 1, "{seen:?}");
    assert_eq!(undecodable[0].level, Level::WARN);
    assert_eq!(undecodable[0].field("queue"), Some("jobs"));

    // Disconnecting on purpose is INFO, not a warning.
    bus.disconnect().await.expect("disconnect");
    let seen = capture.take();
    assert!(at_least(&seen, Level::WARN).is_empty(), "{seen:?}");
    assert!(
        seen.iter().any(|e| e.level == Level::INFO && e.message.contains("offline")),
        "{seen:?}"
    );
}
