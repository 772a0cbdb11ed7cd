//! Worker cases (SPEC P13, with P9): the worker acks on success, runs at most `concurrency`
//! handlers at once, retries errors and panics with backoff up to the dead-letter queue, and
//! stops gracefully without losing anything.

use super::retry::dead_letters;
use crate::backend::Backend;
use crate::support::{bus, eventually, unique, within};
use busmq_core::{Job, ReliableOptions, RetryPolicy, Worker};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

type Seen = Arc<Mutex<Vec<(u64, u32)>>>;

/// P13: each message is handled once and acknowledged when the handler returns `Ok`.
pub async fn worker_acks_on_ok(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("worker-ok")).unwrap();
    q.attach().await.unwrap();
    let bodies: Vec<String> = (0..20).map(|n| n.to_string()).collect();
    let ids = q.push_all(bodies.clone()).await.unwrap();
    let seen: Arc<Mutex<Vec<(u64, u32, String)>>> = Arc::default();
    let record = seen.clone();
    let worker = Worker::new(&q).concurrency(4).start(move |job: Job<String>| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push((job.id, job.deliveries, job.body));
            Ok::<(), String>(())
        }
    });
    eventually("every message handled", || async { seen.lock().unwrap().len() >= 20 }).await;
    eventually("every message acknowledged", || async {
        let stat = q.stat().await.unwrap();
        stat.count == 0 && stat.pending == 0
    })
    .await;
    worker.stop().await.unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    let want: Vec<(u64, u32, String)> =
        ids.iter().zip(bodies).map(|(id, body)| (*id, 1, body)).collect();
    assert_eq!(seen, want);
}

/// P13: no more than `concurrency` handlers run at once (and that many do, given the work).
pub async fn worker_runs_at_most_concurrency_handlers_at_once(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("worker-concurrency")).unwrap();
    q.attach().await.unwrap();
    q.push_all((0..30).map(|n| n.to_string())).await.unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (r, m, d) = (running.clone(), most.clone(), done.clone());
    let worker = Worker::new(&q).concurrency(3).start(move |_job: Job<String>| {
        let (r, m, d) = (r.clone(), m.clone(), d.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            d.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        }
    });
    eventually("all 30 handled", || async { done.load(Ordering::SeqCst) >= 30 }).await;
    worker.stop().await.unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 3, "the most handlers running at once");
}

/// P13, P9: a handler that keeps failing: its message comes back with growing delays and
/// then goes to the dead-letter queue with the handler's error as the reason.
pub async fn worker_retries_errors_with_backoff_then_dead_letters_them(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("worker-fail")).unwrap();
    q.attach().await.unwrap();
    let id = q.push(&"bad").await.unwrap();
    let policy = RetryPolicy::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(1))
        .with_jitter(0.2);
    let options = ReliableOptions { max_deliveries: 3, retry: policy, ..Default::default() };
    let times = Arc::new(Mutex::new(Vec::new()));
    let record = times.clone();
    let start = Instant::now();
    let worker = Worker::new(&q).reliable(options).concurrency(2).start(move |job: Job<String>| {
        record.lock().unwrap().push((job.deliveries, start.elapsed()));
        async move { Err::<(), String>(format!("cannot do {} ({})", job.body, job.deliveries)) }
    });
    let dead = dead_letters(&b, &q, 1).await;
    worker.stop().await.unwrap();
    assert_eq!(dead, vec![(id, 3, "max_deliveries: cannot do bad (3)".to_string())]);
    let times = times.lock().unwrap().clone();
    assert_eq!(times.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3]);
    let least = policy.min_delay(1) + policy.min_delay(2);
    assert!(times[2].1 >= least, "third try after {:?}, sooner than {least:?}", times[2].1);
}

/// P13: a panicking handler counts as a failure: its message is retried, and the worker goes
/// on with the others.
pub async fn worker_panic_is_a_failure_and_the_worker_goes_on(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("worker-panic")).unwrap();
    q.attach().await.unwrap();
    let ids = q.push_all(["panic", "fine", "also fine"]).await.unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let worker = Worker::new(&q)
        .retry(RetryPolicy::fixed(Duration::from_millis(50)))
        .concurrency(1)
        .start(move |job: Job<String>| {
            let record = record.clone();
            async move {
                if job.body == "panic" && job.deliveries == 1 {
                    // resume_unwind: a panic the case asks for, without a backtrace in the log.
                    std::panic::resume_unwind(Box::new("the handler panics on purpose"));
                }
                record.lock().unwrap().push((job.id, job.deliveries));
                Ok::<(), String>(())
            }
        });
    eventually("all three handled", || async { seen.lock().unwrap().len() >= 3 }).await;
    eventually("all acknowledged", || async {
        let stat = q.stat().await.unwrap();
        stat.count == 0 && stat.pending == 0
    })
    .await;
    worker.stop().await.unwrap();
    let seen: BTreeSet<(u64, u32)> = seen.lock().unwrap().iter().copied().collect();
    assert_eq!(seen, BTreeSet::from([(ids[0], 2), (ids[1], 1), (ids[2], 1)]));
    assert_eq!(b.dead_letters(q.name()).unwrap().count().await.unwrap(), 0);
}

/// P13: a stop lets running handlers finish (their messages are acknowledged), gives the
/// messages taken and not started back at once, and a new worker handles the rest: every
/// message is handled, none lost.
pub async fn worker_stop_finishes_in_flight_and_gives_back_the_rest(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("worker-stop")).unwrap();
    q.attach().await.unwrap();
    let ids = q.push_all((0..10).map(|n| n.to_string())).await.unwrap();
    let seen: Seen = Arc::default();
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (record, g, s) = (seen.clone(), gate.clone(), started.clone());
    let worker = Worker::new(&q).concurrency(2).start(move |job: Job<String>| {
        let (record, g, s) = (record.clone(), g.clone(), s.clone());
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            g.acquire().await.unwrap().forget();
            record.lock().unwrap().push((job.id, job.deliveries));
            Ok::<(), String>(())
        }
    });
    eventually("two handlers running", || async { started.load(Ordering::SeqCst) >= 2 }).await;
    let stopping = tokio::spawn(worker.stop());
    // The stop waits for the running handlers; let them finish only once it has begun.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!stopping.is_finished(), "the stop waits for running handlers");
    gate.add_permits(2);
    within("the worker to stop", stopping).await.unwrap().unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 2, "nothing starts after the stop");
    let first: Vec<(u64, u32)> = seen.lock().unwrap().clone();
    assert_eq!(first.len(), 2);
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.pending), (8, 0), "the rest is back, ready, at once");
    gate.add_permits(100);
    let worker = Worker::new(&q).concurrency(4).start({
        let record = seen.clone();
        move |job: Job<String>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((job.id, job.deliveries));
                Ok::<(), String>(())
            }
        }
    });
    eventually("the rest handled", || async { seen.lock().unwrap().len() >= 10 }).await;
    worker.stop().await.unwrap();
    let handled: BTreeSet<u64> = seen.lock().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(handled, ids.iter().copied().collect::<BTreeSet<_>>());
    let stat = q.stat().await.unwrap();
    assert_eq!((stat.count, stat.pending), (0, 0));
}

/// P13: `queue.process(concurrency, handler)` handles and acknowledges messages until
/// consuming ends (here: `queue.stop()`), then returns.
pub async fn worker_process_runs_until_consuming_ends(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("worker-process")).unwrap();
    q.attach().await.unwrap();
    q.push_all(["a", "b", "c"]).await.unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    let processing = tokio::spawn({
        let q = q.clone();
        async move {
            q.process(2, move |_job: Job<String>| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), String>(())
                }
            })
            .await
        }
    });
    eventually("all three handled", || async { done.load(Ordering::SeqCst) >= 3 }).await;
    eventually("all acknowledged", || async {
        let stat = q.stat().await.unwrap();
        stat.count == 0 && stat.pending == 0
    })
    .await;
    q.stop().await.unwrap();
    within("process to return", processing).await.unwrap().unwrap();
}
