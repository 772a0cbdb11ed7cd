//! Per-key ordering cases (SPEC P11): messages of one ordering key are delivered one at a time
//! and in push order, while different keys go in parallel; a key's next message waits for the
//! ack of the previous delivery (kept through a nack with delay), or for its dead-lettering;
//! push order within a key wins over levels; the message that becomes takeable wakes an idle
//! consumer at once.

use crate::backend::Backend;
use crate::cases::retry::dead_letters;
use crate::support::{bus, eventually, next, unique, within};
use busmq_core::support::lock;
use busmq_core::{
    ConsumeOptions, Consumer, Delivery, Job, Position, PushOptions, Queue, ReliableOptions,
    RetryPolicy, Worker,
};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Far below the consumers' idle check (5 s): a message whose gate passed must not wait for it.
const LATE: Duration = Duration::from_secs(2);
const QUIET: Duration = Duration::from_millis(300);

async fn attached(b: &busmq_core::Bus, label: &str) -> Queue {
    let q = b.queue(unique(label)).unwrap();
    q.attach().await.unwrap();
    q
}

fn keyed(key: &str) -> PushOptions {
    PushOptions::new().ordering_key(key.to_string())
}

fn reliable() -> ConsumeOptions {
    let options = ReliableOptions { retry: RetryPolicy::none(), ..Default::default() };
    ConsumeOptions::new().reliable(options)
}

async fn one(consumer: &mut Consumer<String>, what: &str) -> Delivery<String> {
    next(consumer, what).await.expect("a decodable delivery")
}

/// Asserts that nothing arrives on `consumer` for `QUIET`.
async fn quiet(consumer: &mut Consumer<String>, what: &str) {
    let early = tokio::time::timeout(QUIET, consumer.next()).await;
    let body = early.map(|d| d.map(|d| d.map(|d| d.body().clone())));
    assert!(body.is_err(), "{what}: {body:?}");
}

/// P11, P12: a level-9 message of a key waits behind the key's older level-0 one (push order
/// wins within a key) while other messages go; it is counted and read at its id's place; the
/// ack of the older one hands it to the idle consumer at once.
pub async fn a_keyed_message_waits_behind_its_keys_older_one_whatever_its_level(
    backend: &dyn Backend,
) {
    let b = bus(backend).await;
    let q = attached(&b, "ordering-levels").await;
    q.push_with(&"first", keyed("k")).await.unwrap();
    q.push_with(&"second", keyed("k").priority(9)).await.unwrap();
    q.push_with(&"other", PushOptions::new().priority(5)).await.unwrap();
    let stat = q.stat().await.unwrap();
    assert_eq!(stat.count, 3, "a waiting message is counted");
    let read = q.peek(Position::Start, 10).await.unwrap();
    let bodies: Vec<u64> = read.entries.iter().map(|e| e.id).collect();
    assert!(bodies.windows(2).all(|w| w[0] < w[1]) && bodies.len() == 3, "id order: {bodies:?}");
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let other = one(&mut consumer, "the level-5 message").await;
    let first = one(&mut consumer, "the key's first message").await;
    assert_eq!((other.body().as_str(), first.body().as_str()), ("other", "first"));
    assert_eq!(first.ordering_key(), Some("k"));
    quiet(&mut consumer, "the key's second message before the first's ack").await;
    let acked = Instant::now();
    first.ack().await.unwrap();
    let second = one(&mut consumer, "the key's second message").await;
    assert!(acked.elapsed() < LATE, "woken only after {:?}", acked.elapsed());
    assert_eq!((second.body().as_str(), second.priority()), ("second", 9));
    other.ack().await.unwrap();
    second.ack().await.unwrap();
}

/// P11: with four reliable consumers and many keys, no key ever has two messages out at once,
/// every key's messages are processed in push order, and nothing is lost or repeated.
pub async fn one_message_per_key_at_a_time_across_four_reliable_consumers(backend: &dyn Backend) {
    const KEYS: usize = 16;
    const PER_KEY: usize = 8;
    let b = bus(backend).await;
    let q = attached(&b, "ordering-parallel").await;
    let mut pushes = Vec::new();
    for n in 0..PER_KEY {
        for k in 0..KEYS {
            // Levels vary too: within a key push order still wins.
            let options = keyed(&format!("key{k}")).priority(((n + k) % 3) as u8);
            pushes.push(q.push_with(&format!("{k}:{n}"), options));
        }
    }
    futures::future::try_join_all(pushes).await.unwrap();
    let out: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<usize, Vec<usize>>>> = Arc::default();
    let mut workers = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..4 {
        // A bus each, as four processes would.
        let wb = bus(backend).await;
        let handle = wb.queue(q.name()).unwrap();
        handle.attach().await.unwrap();
        let mut consumer = handle.consume_with::<String>(reliable()).await.unwrap();
        handles.push((wb, handle));
        let (out, seen) = (out.clone(), seen.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let done = lock(&seen).values().map(Vec::len).sum::<usize>();
                if done == KEYS * PER_KEY {
                    break;
                }
                let Ok(Some(d)) = tokio::time::timeout(QUIET, consumer.next()).await else {
                    continue;
                };
                let d = d.expect("a decodable delivery");
                let (k, n) = d.body().split_once(':').expect("k:n");
                let (k, n): (usize, usize) = (k.parse().unwrap(), n.parse().unwrap());
                assert_eq!(d.ordering_key(), Some(format!("key{k}").as_str()));
                assert!(lock(&out).insert(k), "two messages of key{k} out at once");
                tokio::time::sleep(Duration::from_millis(2)).await;
                lock(&seen).entry(k).or_default().push(n);
                // Off the list before the ack: the ack is what lets the next one out.
                lock(&out).remove(&k);
                d.ack().await.unwrap();
            }
        }));
    }
    within("four consumers to process every key", futures::future::try_join_all(workers))
        .await
        .unwrap();
    let seen = std::mem::take(&mut *lock(&seen));
    for k in 0..KEYS {
        let want: Vec<usize> = (0..PER_KEY).collect();
        assert_eq!(seen.get(&k), Some(&want), "key{k} in push order, each once");
    }
    assert_eq!(q.stat().await.unwrap().count, 0);
}

/// P11, P9: a nack with a delay keeps the key's gate (the next message waits out the delay
/// too, and the nacked one comes back first); dead-lettering it passes the gate.
pub async fn the_gate_stays_through_a_delayed_nack_and_passes_on_dead_lettering(
    backend: &dyn Backend,
) {
    let b = bus(backend).await;
    let q = attached(&b, "ordering-nack").await;
    let first_id = q.push_with(&"a", keyed("k")).await.unwrap();
    q.push_with(&"b", keyed("k")).await.unwrap();
    let mut consumer = q.consume_with::<String>(reliable()).await.unwrap();
    let a = one(&mut consumer, "the key's first message").await;
    a.nack_after(QUIET * 2).await.unwrap();
    quiet(&mut consumer, "the key's next message while the first waits out its nack").await;
    let again = one(&mut consumer, "the nacked message again").await;
    assert_eq!((again.body().as_str(), again.deliveries()), ("a", 2));
    again.reject("not today").await.unwrap();
    let rejected = Instant::now();
    let b_msg = one(&mut consumer, "the key's next message after dead-lettering").await;
    assert!(rejected.elapsed() < LATE, "woken only after {:?}", rejected.elapsed());
    assert_eq!(b_msg.body(), "b");
    b_msg.ack().await.unwrap();
    let dead = dead_letters(&b, &q, 1).await;
    assert_eq!(dead[0].0, first_id);
}

/// P11, P13: a worker running handlers concurrently still gets a key's messages one at a time
/// and in push order, and each job tells its level and key.
pub async fn a_worker_runs_one_job_per_key_at_a_time(backend: &dyn Backend) {
    const KEYS: usize = 4;
    const PER_KEY: usize = 5;
    let b = bus(backend).await;
    let q = attached(&b, "ordering-worker").await;
    // A key's messages pushed together: without the gates the worker would take several of
    // one key at once.
    for k in 0..KEYS {
        for n in 0..PER_KEY {
            q.push_with(&format!("{k}:{n}"), keyed(&format!("key{k}")).priority(2)).await.unwrap();
        }
    }
    let out: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<usize, Vec<usize>>>> = Arc::default();
    // Found wrong in the handler, asserted outside it: the worker turns a panic into a retry.
    let wrong: Arc<Mutex<Vec<String>>> = Arc::default();
    let (running, record, report) = (out.clone(), seen.clone(), wrong.clone());
    let worker = Worker::new(&q).concurrency(4).start(move |job: Job<String>| {
        let (running, record, report) = (running.clone(), record.clone(), report.clone());
        async move {
            let (k, n) = job.body.split_once(':').expect("k:n");
            let (k, n): (usize, usize) = (k.parse().unwrap(), n.parse().unwrap());
            let key = format!("key{k}");
            if (job.priority, job.ordering_key.as_deref()) != (2, Some(key.as_str())) {
                lock(&report).push(format!("{}: {:?}", job.body, job.ordering_key));
            }
            if !lock(&running).insert(k) {
                lock(&report).push(format!("two jobs of {key} at once"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            lock(&record).entry(k).or_default().push(n);
            lock(&running).remove(&k);
            Ok::<(), String>(())
        }
    });
    eventually("every job handled", || async {
        lock(&seen).values().map(Vec::len).sum::<usize>() >= KEYS * PER_KEY
    })
    .await;
    worker.stop().await.unwrap();
    assert_eq!(*lock(&wrong), Vec::<String>::new());
    let seen = std::mem::take(&mut *lock(&seen));
    for k in 0..KEYS {
        let want: Vec<usize> = (0..PER_KEY).collect();
        assert_eq!(seen.get(&k), Some(&want), "key{k} in push order, each once");
    }
}
