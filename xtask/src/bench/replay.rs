//! replay: a queue filled with 1,000,100 messages (push_all in batches of 1,000, which is
//! measured too), then reads of 100 messages at position 0 and at position 1,000,000, timed
//! each, alternating in blocks: through the store's `read` (the operation a replaying consumer
//! repeats) and through a whole replaying `consume_with(...replay(..).max(100))` (which adds
//! the consumer's registration). Every read is checked to start at the position asked for.

use super::Env;
use super::backend::disconnect;
use super::measure::{Meter, Sample};
use super::payload;
use super::produce::{Producer, produce};
use super::server::Server;
use super::stats::Histogram;
use super::summary::Results;
use super::support::{Ctx, HUNG, Progress, deadline, unique};
use busmq_core::store::Session;
use busmq_core::{ConsumeOptions, Position, Queue, QueueName, Store};
use busmq_redis::RedisStore;
use futures::StreamExt;
use std::time::{Duration, Instant};

/// The deep position of the issue.
const DEEP: u64 = 1_000_000;
/// Messages per read.
const READ: u64 = 100;
const SIZE: usize = 100;
/// Reads per measured block; blocks at 0 and at `DEEP` alternate.
const BLOCK: u64 = 25;

pub(crate) async fn run(env: &Env, results: &mut Results) {
    let names =
        ["replay-fill", "replay@0", "replay@1000000", "replay-consume@0", "replay-consume@1000000"];
    if !names.iter().any(|n| env.wants(n)) {
        return;
    }
    let progress = Progress::new();
    let bus = match env.redis().bus().await {
        Ok(bus) => bus,
        Err(error) => {
            results.record("replay-fill", Err(error));
            return;
        }
    };
    let queue_name = unique("replay");
    let filled = deadline(HUNG, "filling the replay queue", &progress, DEEP + READ, async {
        let queue = bus.queue(&queue_name).ctx("queue")?;
        queue.attach().await.ctx("attach")?;
        let meter = Meter::start(Some(&env.server)).await?;
        let fill = Producer::PushAll { batch: 1_000, window: 4 };
        produce(&queue, fill, SIZE, DEEP + READ, &progress).await?;
        Ok((queue, meter.stop(DEEP + READ, SIZE).await?))
    });
    let queue = match Box::pin(filled).await {
        Ok((queue, sample)) => {
            results.record("replay-fill", Ok(sample));
            queue
        }
        Err(error) => {
            results.record("replay-fill", Err(error));
            let _ = disconnect(&[&bus]).await;
            return;
        }
    };
    let reads = Box::pin(measure_reads(env, results, &queue, &queue_name));
    if let Err(error) = reads.await {
        results.record("replay@1000000", Err(error));
    }
    let _ = queue.close().await;
    let _ = disconnect(&[&bus]).await;
}

async fn measure_reads(
    env: &Env,
    results: &mut Results,
    queue: &Queue,
    queue_name: &str,
) -> Result<(), String> {
    let store = RedisStore::builder().url(env.server.url()).build().ctx("redis store")?;
    store.connect().await.ctx("store connect")?;
    let name = QueueName::new(queue_name).ctx("queue name")?;
    let blocks = env.budget.replay_reads.div_ceil(BLOCK).max(2);
    let kinds: [(&'static str, u64, bool); 4] = [
        ("replay@0", 0, false),
        ("replay@1000000", DEEP, false),
        ("replay-consume@0", 0, true),
        ("replay-consume@1000000", DEEP, true),
    ];
    for (label, position, consume) in kinds {
        if env.wants(label) {
            // Warm-up, and a first check of what a read at this position returns.
            let warm = block(&env.server, &store, &name, queue, position, consume, 5).await;
            if let Err(error) = warm {
                results.record(label, Err(format!("warm-up: {error}")));
            }
        }
    }
    for _ in 0..blocks {
        for (label, position, consume) in kinds {
            if env.wants(label) && !results.failed(label) {
                let sample =
                    block(&env.server, &store, &name, queue, position, consume, BLOCK).await;
                results.record(label, sample);
            }
        }
    }
    store.disconnect().await.ctx("store disconnect")
}

/// `reads` timed reads of `READ` messages at `position`.
async fn block(
    server: &Server,
    store: &RedisStore,
    name: &QueueName,
    queue: &Queue,
    position: u64,
    consume: bool,
    reads: u64,
) -> Result<Sample, String> {
    let progress = Progress::new();
    let work = async {
        let meter = Meter::start(Some(server)).await?;
        let mut latency = Histogram::default();
        let mut busy = Duration::ZERO;
        for _ in 0..reads {
            let started = Instant::now();
            let first = if consume {
                read_by_consuming(queue, position).await?
            } else {
                let batch =
                    store.read(name, Position::Index(position), READ as u32).await.ctx("read")?;
                if batch.entries.len() as u64 != READ {
                    return Err(format!(
                        "a read at {position} gave {} entries, not {READ}",
                        batch.entries.len()
                    ));
                }
                batch.entries.first().and_then(|e| payload::read(&e.payload))
            };
            let took = started.elapsed();
            latency.record(took);
            busy += took;
            progress.received(READ);
            let seq = first.map(|s| s.seq);
            if seq != Some(position) {
                return Err(format!("a read at position {position} started at message {seq:?}"));
            }
        }
        let mut sample = meter.stop(reads * READ, SIZE).await?;
        // Only the reads count, not the consumer stops between them.
        sample.elapsed = busy;
        sample.latency = latency;
        Ok(sample)
    };
    Box::pin(deadline(HUNG, "replay reads", &progress, reads * READ, work)).await
}

/// Starts a replaying consumer at `position`, takes `READ` messages, and stops it (the stop is
/// timed too: a consumer's life is what this variant measures).
async fn read_by_consuming(queue: &Queue, position: u64) -> Result<Option<payload::Stamp>, String> {
    let options =
        ConsumeOptions::new().replay(Position::Index(position)).max(READ).prefetch(READ as u32);
    let mut consumer = queue.consume_raw(options).await.ctx("replay consume")?;
    let mut first = None;
    let mut got = 0;
    while got < READ {
        match consumer.next().await {
            Some(Ok(delivery)) => {
                if got == 0 {
                    first = payload::read(delivery.body());
                }
                got += 1;
            }
            Some(Err(error)) => return Err(format!("replay consume: {error}")),
            None => return Err(format!("the replaying consumer ended after {got} of {READ}")),
        }
    }
    consumer.stop().await;
    Ok(first)
}
