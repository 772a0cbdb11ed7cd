//! The batched mode's producer and consumer. The producer makes bursts of `push_all` calls of
//! [`BATCH`] numbered messages, so that on Redis the handle splits what waits into two linked
//! push writes in flight (issue 14) while the faults hit: a write refused or failed there is
//! sent again, and the checker sees whether anything acknowledged was lost or came out of push
//! order. The consumer keeps several acks in flight, which the handle's settler sends together
//! in one store call, so settlement batches meet the faults too.

use super::history::Recorder;
use busmq_core::{Consumer, Queue};
use futures::StreamExt;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Messages per call: the fewest a linked write may hold on Redis. A call is one unit (SPEC
/// Q9: atomic), so only calls waiting together are split into linked writes.
const BATCH: u64 = 32;
/// Calls made at once: the handle writes the first and links the second to it.
const BURST: u64 = 2;
/// Calls in flight at most (two bursts): a burst that finds the last one still in flight
/// joins the writes already linked, or waits for them.
const IN_FLIGHT: usize = 2 * BURST as usize;
/// One burst every this many of the plan's push intervals: 320 messages a second per queue at
/// 10 ms. A reliable consumer acknowledging each message must work off what a fault held back
/// well within the recovery target: at 800 a second, in the long schedule, it took 10-40 s after
/// a slow consumer, a failover or a resharding.
const EVERY: u32 = 20;
/// Acks one consumer keeps in flight. A consumer that awaits each ack moves one message per
/// round trip, and on a loaded host acks took 3.9-5.0 ms at the median on two of three queues
/// (a `PING` from `redis-cli --latency` 1.5-3.8 ms on average), above the 3.1 ms that 320
/// messages a second allow: those consumers fell behind from the first second, and a fault's
/// recovery measured that backlog (docs/failures.md). Concurrent acks go out together, so the
/// round trip no longer bounds the rate.
const ACKS_IN_FLIGHT: usize = 16;

/// Pushes messages numbered from 1 in bursts of [`BURST`] calls of [`BATCH`], one burst every
/// [`EVERY`] times `push_every` (the plan's interval), at most `calls` calls, until `stop` turns
/// true; records every message with its call's outcome (a failed call leaves its messages
/// unknown, as a failed push does).
pub(crate) async fn produce(
    queue: Queue,
    index: usize,
    rec: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
    push_every: Duration,
    calls: u64,
) {
    let mut tick = tokio::time::interval(push_every * EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut inflight = FuturesOrdered::new();
    let mut made = 0;
    while made < calls || !inflight.is_empty() {
        tokio::select! {
            Some(done) = inflight.next(), if !inflight.is_empty() => record(&rec, index, done),
            _ = tick.tick(), if inflight.len() <= IN_FLIGHT - BURST as usize && made < calls => {
                let started = rec.now();
                for _ in 0..BURST.min(calls - made) {
                    let seqs = made * BATCH + 1..(made + 1) * BATCH + 1;
                    made += 1;
                    // Called here, in order: the call's place in the queue is taken now.
                    let call = queue.push_all(seqs.clone());
                    inflight.push_back(async move { (seqs, started, call.await.is_ok()) });
                }
            }
            // A sender gone without saying stop is a stop too (else this would spin).
            changed = stop.changed() => if changed.is_err() { break },
        }
        if *stop.borrow() {
            break;
        }
    }
    while let Some(done) = inflight.next().await {
        record(&rec, index, done);
    }
}

/// Reports every delivery of `stream` to `delivered` and acknowledges it, with up to
/// [`ACKS_IN_FLIGHT`] acks in flight, after `pause()` (the slow-consumer fault's), until the
/// stream ends or a report fails; then waits for the acks still in flight. Each ack is reported
/// to `issuing` before it is first polled, that is before it is sent (the checker's rule); a
/// failed ack only means a redelivery, which the checker counts.
pub(crate) async fn consume<E>(
    stream: &mut Consumer<u64>,
    pause: impl Fn() -> Duration,
    mut delivered: impl FnMut(u64, u32) -> Result<(), E>,
    mut issuing: impl FnMut(u64, u32) -> Result<(), E>,
) -> Result<(), E> {
    let mut acks = FuturesUnordered::new();
    let outcome = loop {
        tokio::select! {
            // Acks first: one pushed in the last turn is sent when first polled, here.
            biased;
            Some(()) = acks.next(), if !acks.is_empty() => {}
            item = stream.next(), if acks.len() < ACKS_IN_FLIGHT => {
                let Some(item) = item else { break Ok(()) };
                let Ok(delivery) = item else { continue };
                let (seq, deliveries) = (*delivery.body(), delivery.deliveries());
                if let Err(e) = delivered(seq, deliveries) {
                    break Err(e);
                }
                let pause = pause();
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                if let Err(e) = issuing(seq, deliveries) {
                    break Err(e);
                }
                acks.push(async move {
                    let _ = delivery.ack().await;
                });
            }
        }
    };
    while acks.next().await.is_some() {}
    outcome
}

fn record(rec: &Recorder, index: usize, (seqs, started, acked): (Range<u64>, u64, bool)) {
    for seq in seqs {
        rec.pushed(index, seq, started, acked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busmq_core::{Bus, ConsumeOptions};
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::time::{Instant, timeout};

    async fn queue() -> Queue {
        let bus = Bus::new(busmq_memory::Memory::new().store());
        bus.connect().await.unwrap();
        let queue = bus.queue("batched").unwrap();
        queue.attach().await.unwrap();
        queue
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_of_every_call_is_recorded_and_pushed_in_order() {
        let queue = queue().await;
        let rec = Arc::new(Recorder::new(Instant::now(), None));
        let (_stop, stop) = watch::channel(false);
        // Seven calls: three whole bursts and a last one of one call.
        let producing = produce(queue.clone(), 3, rec.clone(), stop, Duration::from_micros(50), 7);
        timeout(Duration::from_secs(10), producing).await.expect("seven calls in 10 s");
        let pushes = rec.snapshot().pushes;
        let seqs: Vec<u64> = pushes.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (1..=7 * BATCH).collect::<Vec<_>>());
        assert!(pushes.iter().all(|p| p.acked && p.queue == 3));
        let options = ConsumeOptions::new().max(7 * BATCH);
        let got: Vec<u64> = queue
            .consume_with::<u64>(options)
            .await
            .unwrap()
            .map(|d| *d.unwrap().body())
            .collect()
            .await;
        assert_eq!(got, seqs);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_bursts_at_once_and_what_was_called_is_recorded() {
        let queue = queue().await;
        let rec = Arc::new(Recorder::new(Instant::now(), None));
        let (stop_tx, stop) = watch::channel(false);
        let every = Duration::from_millis(1);
        let producing = tokio::spawn(produce(queue, 0, rec.clone(), stop, every, 1_000));
        // Bursts at 0, 20, 40 and 60 ms.
        tokio::time::sleep(Duration::from_millis(70)).await;
        stop_tx.send_replace(true);
        timeout(Duration::from_millis(5), producing).await.expect("stopped at once").unwrap();
        let seqs: Vec<u64> = rec.snapshot().pushes.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (1..=4 * BURST * BATCH).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_delivery_is_reported_before_its_ack_and_every_ack_lands() {
        let queue = queue().await;
        queue.push_all(1..=500u64).await.unwrap();
        let options = super::super::connect::consume_options(true, Duration::from_secs(30));
        let mut stream = queue.consume_with::<u64>(options.max(500)).await.unwrap();
        let reports = std::sync::Mutex::new(Vec::new());
        let report = |kind, seq, _| {
            reports.lock().unwrap().push((kind, seq));
            Ok::<(), ()>(())
        };
        let consuming = consume(
            &mut stream,
            || Duration::ZERO,
            |seq, deliveries| report('D', seq, deliveries),
            |seq, deliveries| report('A', seq, deliveries),
        );
        timeout(Duration::from_secs(10), consuming).await.expect("500 in 10 s").unwrap();
        let want: Vec<(char, u64)> = (1..=500).flat_map(|seq| [('D', seq), ('A', seq)]).collect();
        assert_eq!(reports.into_inner().unwrap(), want);
        // Returned only once every ack had its answer: nothing is left pending.
        let stat = queue.stat().await.unwrap();
        assert_eq!((stat.count, stat.pending), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_stay_in_flight_together_up_to_the_window() {
        use busmq_testkit::faults::FaultyStore;
        let memory: busmq_core::StoreHandle = Arc::new(busmq_memory::Memory::new().store());
        let (store, faults) = FaultyStore::wrap(memory);
        let bus = Bus::new(store);
        bus.connect().await.unwrap();
        let queue = bus.queue("batched").unwrap();
        queue.attach().await.unwrap();
        queue.push_all(1..=100u64).await.unwrap();
        // Acks reach the store only after `heal`: as a consumer on a slow round trip sees it.
        faults.stall(&["settle"]);
        let options = super::super::connect::consume_options(true, Duration::from_secs(30));
        let mut stream = queue.consume_with::<u64>(options.max(100)).await.unwrap();
        let issued = AtomicU64::new(0);
        let consuming = consume(
            &mut stream,
            || Duration::ZERO,
            |_, _| Ok::<(), ()>(()),
            |_, _| {
                issued.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        );
        let healing = async {
            // An awaited ack would stop this at one.
            while issued.load(Ordering::SeqCst) < ACKS_IN_FLIGHT as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let before_heal = issued.load(Ordering::SeqCst);
            faults.heal();
            before_heal
        };
        let (done, before_heal) =
            timeout(Duration::from_secs(10), futures::future::join(consuming, healing))
                .await
                .expect("a window of acks, then all of them");
        done.unwrap();
        assert_eq!(before_heal, ACKS_IN_FLIGHT as u64, "no more than the window in flight");
        assert_eq!(issued.load(Ordering::SeqCst), 100);
        let stat = queue.stat().await.unwrap();
        assert_eq!((stat.count, stat.pending), (0, 0));
    }

    #[tokio::test]
    async fn a_failed_report_ends_it_with_that_error_after_the_acks_in_flight() {
        let queue = queue().await;
        queue.push_all(1..=50u64).await.unwrap();
        let options = super::super::connect::consume_options(true, Duration::from_secs(30));
        let mut stream = queue.consume_with::<u64>(options.prefetch(1)).await.unwrap();
        let refuse = |seq, _| if seq == 5 { Err(format!("no room for {seq}")) } else { Ok(()) };
        let outcome = consume(&mut stream, || Duration::ZERO, |_, _| Ok(()), refuse);
        let outcome = timeout(Duration::from_secs(10), outcome).await.expect("ended at 5");
        assert_eq!(outcome, Err("no room for 5".to_string()));
        // The four acks issued before it landed; the fifth delivery was never acknowledged.
        drop(stream);
        let stat = queue.stat().await.unwrap();
        assert_eq!(stat.count + stat.pending, 46);
    }

    #[tokio::test]
    async fn no_calls_and_a_stop_sender_gone_end_it() {
        let rec = Arc::new(Recorder::new(Instant::now(), None));
        let (_keep, stop) = watch::channel(false);
        let none = produce(queue().await, 0, rec.clone(), stop, Duration::from_micros(50), 0);
        timeout(Duration::from_secs(5), none).await.expect("nothing to call");
        let (gone, stop) = watch::channel(false);
        drop(gone);
        let every = Duration::from_secs(3600);
        let orphan = produce(queue().await, 0, rec.clone(), stop, every, 1_000);
        timeout(Duration::from_secs(5), orphan).await.expect("no stop sender");
        // The first tick is due at once too: the orphan made at most that one burst.
        assert!(rec.snapshot().pushes.len() as u64 <= BURST * BATCH);
    }
}
