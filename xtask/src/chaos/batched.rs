//! The batched mode's producer: bursts of `push_all` calls of [`BATCH`] numbered messages, so
//! that on Redis the handle splits what waits into two linked push writes in flight (issue 14)
//! while the faults hit: a write refused or failed there is sent again, and the checker sees
//! whether anything acknowledged was lost or came out of push order.

use super::history::Recorder;
use busmq_core::Queue;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
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

fn record(rec: &Recorder, index: usize, (seqs, started, acked): (Range<u64>, u64, bool)) {
    for seq in seqs {
        rec.pushed(index, seq, started, acked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busmq_core::{Bus, ConsumeOptions};
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
