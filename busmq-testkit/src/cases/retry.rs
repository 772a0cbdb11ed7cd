//! Retry backoff cases (SPEC P9): a nacked, dropped or failed reliable delivery comes back
//! after its delay and not before, and `max_deliveries` still dead-letters it. Written for both
//! clocks: paused rows run the delays in virtual time, Redis rows in real time, so the cases
//! assert "not before the delay" exactly and "soon after" only within a generous bound.

use crate::backend::Backend;
use crate::support::{bus, eventually, next, unique};
use busmq_core::{Bus, ConsumeOptions, Consumer, Delivery, Queue, ReliableOptions, RetryPolicy};
use std::time::Duration;
use tokio::time::Instant;

const DELAY: Duration = Duration::from_millis(300);
/// Far below the consumers' idle check (5 s): a delayed message must not wait for that.
const LATE: Duration = Duration::from_secs(2);

fn reliable(retry: RetryPolicy, max_deliveries: u32) -> ConsumeOptions {
    ConsumeOptions::new().reliable(ReliableOptions { retry, max_deliveries, ..Default::default() })
}

async fn one(consumer: &mut Consumer<String>, what: &str) -> Delivery<String> {
    next(consumer, what).await.expect("a decodable delivery")
}

/// Waits until the dead-letter queue of `q` holds `n` messages and returns their (source id,
/// deliveries, reason).
pub(crate) async fn dead_letters(b: &Bus, q: &Queue, n: usize) -> Vec<(u64, u32, String)> {
    let dlq = b.dead_letters(q.name()).unwrap();
    eventually("the dead letters", || async { dlq.count().await.unwrap() >= n as u64 }).await;
    let listed = dlq.list(n as u32 + 1).await.unwrap();
    listed.into_iter().map(|m| (m.source_id, m.deliveries, m.reason)).collect()
}

/// P9: `nack_after(300 ms)` brings the message back (with its delivery count) not before
/// 300 ms and well before the consumer's idle check; meanwhile it is pending, not ready.
pub async fn retry_nack_after_comes_back_after_the_delay_and_not_before(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("nack-after")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable(RetryPolicy::none(), 5)).await.unwrap();
    let d = one(&mut consumer, "the first delivery").await;
    let start = Instant::now();
    d.nack_after(DELAY).await.unwrap();
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.pending), (0, 1), "waiting out its delay: pending, not ready");
    let again = one(&mut consumer, "the delayed redelivery").await;
    let waited = start.elapsed();
    assert_eq!((again.id(), again.deliveries()), (id, 2));
    assert!(waited >= DELAY, "back after {waited:?}, before its delay of {DELAY:?}");
    assert!(waited < DELAY + LATE, "back only after {waited:?} (delay {DELAY:?})");
    again.ack().await.unwrap();
}

/// P9: a delayed release outlives the consumer that made it: a stop does not give it back
/// early, and another consumer gets it after the delay.
pub async fn retry_nack_after_survives_a_stop_and_goes_to_another_consumer(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("nack-after-stop")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable(RetryPolicy::none(), 5)).await.unwrap();
    let d = one(&mut consumer, "the first delivery").await;
    let start = Instant::now();
    d.nack_after(DELAY).await.unwrap();
    q.stop().await.unwrap();
    drop(consumer);
    let other = bus(backend).await;
    let q2 = other.queue(q.name()).unwrap();
    q2.attach().await.unwrap();
    let mut consumer = q2.consume_with::<String>(reliable(RetryPolicy::none(), 5)).await.unwrap();
    let again = one(&mut consumer, "the delayed redelivery on another bus").await;
    let waited = start.elapsed();
    assert_eq!((again.id(), again.deliveries()), (id, 2));
    assert!(waited >= DELAY, "back after {waited:?}, before its delay of {DELAY:?}");
    again.ack().await.unwrap();
}

/// P9: with a policy, a dropped delivery and a plain `nack` come back after the policy's
/// delay, not at once.
pub async fn retry_dropped_and_nacked_deliveries_follow_the_policy(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("retry-drop")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let options = reliable(RetryPolicy::fixed(DELAY), 5);
    let mut consumer = q.consume_with::<String>(options).await.unwrap();
    let d = one(&mut consumer, "the first delivery").await;
    let start = Instant::now();
    drop(d);
    let d = one(&mut consumer, "the redelivery after a drop").await;
    let waited = start.elapsed();
    assert_eq!((d.id(), d.deliveries()), (id, 2));
    assert!(waited >= DELAY, "a dropped delivery came back after {waited:?}");
    assert!(waited < DELAY + LATE, "a dropped delivery came back only after {waited:?}");
    let start = Instant::now();
    d.nack().await.unwrap();
    let d = one(&mut consumer, "the redelivery after a nack").await;
    let waited = start.elapsed();
    assert_eq!((d.id(), d.deliveries()), (id, 3));
    assert!(waited >= DELAY, "a nacked delivery came back after {waited:?}");
    d.ack().await.unwrap();
}

/// P9: a failing message comes back with growing delays and, at `max_deliveries`, goes to
/// the dead-letter queue with its last failure as the reason: not within milliseconds, but
/// after at least the sum of the policy's shortest delays.
pub async fn retry_failures_back_off_and_dead_letter_with_the_last_reason(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("retry-fail")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let policy = RetryPolicy::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(1))
        .with_jitter(0.2);
    let mut consumer = q.consume_with::<String>(reliable(policy, 4)).await.unwrap();
    let start = Instant::now();
    let mut gaps = Vec::new();
    for n in 1..=4u32 {
        let d = one(&mut consumer, "a delivery to fail").await;
        assert_eq!((d.id(), d.deliveries()), (id, n));
        gaps.push(start.elapsed());
        d.fail(format!("boom {n}")).await.unwrap();
    }
    let dead = dead_letters(&b, &q, 1).await;
    assert_eq!(dead, vec![(id, 4, "max_deliveries: boom 4".to_string())]);
    let least: Duration = (1..4).map(|n| policy.min_delay(n)).sum();
    assert!(gaps[3] >= least, "dead-lettered after {:?}, sooner than {least:?}", gaps[3]);
    for n in 1..4 {
        let gap = gaps[n] - gaps[n - 1];
        assert!(gap >= policy.min_delay(n as u32), "delivery {} came after {gap:?}", n + 1);
    }
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.pending), (0, 0));
}

/// P9, Q13: a message nacked with a delay each time still reaches the dead-letter queue after
/// `max_deliveries` (reason `max_deliveries`).
pub async fn retry_delayed_nacks_still_dead_letter_after_max_deliveries(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("retry-max")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"work").await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable(RetryPolicy::none(), 2)).await.unwrap();
    for n in 1..=2u32 {
        let d = one(&mut consumer, "a delivery to nack").await;
        assert_eq!(d.deliveries(), n);
        d.nack_after(Duration::from_millis(100)).await.unwrap();
    }
    let dead = dead_letters(&b, &q, 1).await;
    assert_eq!(dead, vec![(id, 2, "max_deliveries".to_string())]);
}
