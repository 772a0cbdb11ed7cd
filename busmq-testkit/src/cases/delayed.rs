//! Delayed message cases (SPEC P8): a scheduled message is invisible (not counted, not taken,
//! not replayed) until due, then delivered in due order among the other due messages, with a
//! fresh id and its headers; consumers of every mode take it when it comes due without waiting
//! for their idle check; cancel withdraws it while it waits; maxsize counts it once due; flush
//! and close remove it. Written for both clocks: paused rows run the delays in virtual time,
//! Redis rows in real time, so "not before the delay" is exact and "soon after" is generous.

use crate::backend::Backend;
use crate::support::{bus, next, unique};
use busmq_core::{
    ConsumeOptions, Consumer, Error, Headers, Position, PushOptions, Queue, ReliableOptions, When,
};
use futures::StreamExt;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

const DELAY: Duration = Duration::from_millis(400);
/// Far below the consumers' idle check (5 s): a due message must not wait for that.
const LATE: Duration = Duration::from_secs(2);

async fn attached(b: &busmq_core::Bus, label: &str) -> Queue {
    let q = b.queue(unique(label)).unwrap();
    q.attach().await.unwrap();
    q
}

/// Asserts that nothing arrives on `consumer` before `until`.
async fn nothing_before(consumer: &mut Consumer<String>, until: Instant, what: &str) {
    let early = tokio::time::timeout_at(until, consumer.next()).await;
    let body = early.map(|d| d.map(|d| d.map(|d| d.body().clone())));
    assert!(body.is_err(), "{what}: a delivery before its due time: {body:?}");
}

/// P8, Q10: a scheduled message is not counted, not taken before its due time, and then an
/// idle at-most-once consumer gets it at once (not at its idle check), with an id above the
/// messages pushed before it came due.
pub async fn delayed_message_is_invisible_until_due_then_delivered(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "delayed").await;
    let pushed = q.push(&"now").await.unwrap();
    let start = Instant::now();
    q.schedule(&"later", When::After(DELAY)).await.unwrap();
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.delayed), (1, 1), "waiting: not ready, counted as delayed");
    assert!(stat.next_due.is_some_and(|d| d <= DELAY), "{:?}", stat.next_due);
    let mut consumer = q.consume::<String>().await.unwrap();
    let first = next(&mut consumer, "the plain message").await.unwrap();
    assert_eq!((first.id(), first.body().as_str()), (pushed, "now"));
    nothing_before(&mut consumer, start + DELAY - Duration::from_millis(50), "at most once").await;
    let later = next(&mut consumer, "the delayed message").await.unwrap();
    let waited = start.elapsed();
    assert_eq!(later.body(), "later");
    assert!(waited >= DELAY, "delivered after {waited:?}, before its delay of {DELAY:?}");
    assert!(waited < DELAY + LATE, "delivered only after {waited:?} (delay {DELAY:?})");
    assert!(later.id() > pushed, "the id is given when due");
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.delayed, stat.next_due), (0, 0, None));
}

/// P8: due messages come in due order (equal due times in schedule order), after messages
/// pushed before they came due and before those pushed after.
pub async fn delayed_messages_come_in_due_order_among_due_messages(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "delayed-order").await;
    q.schedule(&"c", When::NotBefore(SystemTime::now() + DELAY * 2)).await.unwrap();
    q.schedule(&"a", When::After(DELAY)).await.unwrap();
    // Due at the same time as a or a little later: after a either way.
    q.schedule(&"b", When::After(DELAY)).await.unwrap();
    q.push(&"p").await.unwrap();
    tokio::time::sleep(DELAY * 2 + Duration::from_millis(100)).await;
    q.push(&"q").await.unwrap();
    let mut consumer = q.consume::<String>().await.unwrap();
    let mut got = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let d = next(&mut consumer, "a due message").await.unwrap();
        got.push(d.body().clone());
        ids.push(d.id());
    }
    assert_eq!(got, ["p", "a", "b", "c", "q"]);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in delivery order: {ids:?}");
}

/// P8, Q14: a replaying consumer does not see a scheduled message before it is due, then reads
/// it after the messages pushed before, and a live replay reader already past those gets it.
pub async fn delayed_message_is_not_replayed_before_due(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "delayed-replay").await;
    q.push(&"one").await.unwrap();
    let start = Instant::now();
    q.schedule(&"two", When::After(DELAY)).await.unwrap();
    let replay = ConsumeOptions::new().replay(Position::Start);
    let mut reader = q.consume_with::<String>(replay).await.unwrap();
    assert_eq!(next(&mut reader, "the pushed message").await.unwrap().body(), "one");
    let peek = q.peek(Position::Start, 10).await.unwrap();
    assert_eq!(peek.entries.len(), 1, "not readable before due");
    nothing_before(&mut reader, start + DELAY - Duration::from_millis(50), "replay").await;
    let two = next(&mut reader, "the delayed message on replay").await.unwrap();
    assert_eq!(two.body(), "two");
    assert!(start.elapsed() < DELAY + LATE, "replayed only after {:?}", start.elapsed());
    let peek = q.peek(Position::Start, 10).await.unwrap();
    assert_eq!(peek.entries.len(), 2, "kept for replay once due");
}

/// P8, Q13: an idle reliable consumer gets a scheduled message when due, with its headers;
/// it is acknowledged like any delivery.
pub async fn delayed_message_reaches_reliable_consumers_with_its_headers(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "delayed-reliable").await;
    let reliable = ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut consumer = q.consume_with::<String>(reliable).await.unwrap();
    let headers = Headers::new().with("tenant", "acme");
    let start = Instant::now();
    q.schedule_with(&"job", When::After(DELAY), headers.clone()).await.unwrap();
    nothing_before(&mut consumer, start + DELAY - Duration::from_millis(50), "reliable").await;
    let d = next(&mut consumer, "the delayed message").await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= DELAY && waited < DELAY + LATE, "delivered after {waited:?}");
    assert_eq!((d.body().as_str(), d.deliveries()), ("job", 1));
    assert_eq!(d.headers().get("tenant"), Some("acme"));
    d.ack().await.unwrap();
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.pending, stat.delayed), (0, 0, 0));
}

/// P8: cancel withdraws a waiting message (once); a message that came due cannot be
/// cancelled any more.
pub async fn cancel_withdraws_a_scheduled_message_while_it_waits(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "delayed-cancel").await;
    let gone = q.schedule(&"gone", When::After(DELAY)).await.unwrap();
    let kept = q.schedule(&"kept", When::After(DELAY)).await.unwrap();
    assert_ne!(gone, kept);
    assert!(q.cancel_scheduled(&gone).await.unwrap(), "waiting: withdrawn");
    assert!(!q.cancel_scheduled(&gone).await.unwrap(), "withdrawn once");
    assert_eq!(q.stat().await.unwrap().delayed, 1);
    let mut consumer = q.consume::<String>().await.unwrap();
    assert_eq!(next(&mut consumer, "the message not cancelled").await.unwrap().body(), "kept");
    assert!(!q.cancel_scheduled(&kept).await.unwrap(), "delivered: nothing to cancel");
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.delayed), (0, 0));
}

/// P8, E1: bad schedules are refused with a typed error and write nothing: a delay over 30
/// days, a dedupe key, a handle that is not attached; a time in the past means now.
pub async fn invalid_schedules_are_refused_and_nothing_is_written(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "delayed-invalid").await;
    let far = q.schedule(&"x", When::After(busmq_core::MAX_DELAY + Duration::from_secs(1))).await;
    assert!(matches!(far, Err(Error::InvalidOption { option: "delay", .. })), "{far:?}");
    let keyed = q.schedule_with(&"x", When::After(DELAY), PushOptions::new().dedupe("k")).await;
    assert!(matches!(keyed, Err(Error::InvalidOption { option: "dedupe", .. })), "{keyed:?}");
    let other = b.queue(unique("delayed-unattached")).unwrap();
    let unattached = other.schedule(&"x", When::After(DELAY)).await;
    assert!(matches!(unattached, Err(Error::NotAttached { .. })), "{unattached:?}");
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.delayed), (0, 0), "nothing written");
    let past = SystemTime::now() - Duration::from_secs(60);
    q.schedule(&"past", When::NotBefore(past)).await.unwrap();
    let mut consumer = q.consume::<String>().await.unwrap();
    assert_eq!(next(&mut consumer, "a message due in the past").await.unwrap().body(), "past");
}

/// P8, Q8: maxsize counts a delayed message only once due: scheduling into a full queue is
/// accepted, and when it comes due the queue holds it beyond maxsize until consumed.
pub async fn maxsize_counts_a_delayed_message_only_once_due(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("delayed-full")).unwrap();
    q.attach_with(busmq_core::AttachOptions::new().maxsize(1)).await.unwrap();
    q.push(&"a").await.unwrap();
    q.schedule(&"later", When::After(DELAY)).await.unwrap();
    let full = q.push(&"b").await;
    assert!(matches!(full, Err(Error::QueueFull { .. })), "{full:?}");
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.delayed), (2, 0), "promoted beyond maxsize");
    let mut consumer = q.consume::<String>().await.unwrap();
    assert_eq!(next(&mut consumer, "a").await.unwrap().body(), "a");
    assert_eq!(next(&mut consumer, "later").await.unwrap().body(), "later");
}

/// P8, Q5, Q4: flush and close remove delayed messages with the others.
pub async fn flush_and_close_remove_delayed_messages(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = attached(&b, "delayed-flush").await;
    let waiting = q.schedule(&"x", When::After(DELAY)).await.unwrap();
    q.flush().await.unwrap();
    assert_eq!(q.stat().await.unwrap().delayed, 0);
    assert!(!q.cancel_scheduled(&waiting).await.unwrap(), "flushed");
    q.schedule(&"y", When::After(DELAY)).await.unwrap();
    assert!(q.close().await.unwrap());
    let b2 = bus(backend).await;
    let other = b2.queue(q.name()).unwrap();
    other.attach().await.unwrap();
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let stat = other.stat().await.unwrap();
    assert_eq!((stat.count, stat.delayed), (0, 0), "closed with its queue");
}
