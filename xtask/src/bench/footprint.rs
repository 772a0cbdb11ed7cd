//! redis-memory: Redis `used_memory` per queued 100-byte message, for a busmq queue and for a
//! raw list of the same values. Each is measured on an emptied server (FLUSHALL: the bench owns
//! it), as the growth of `used_memory` from just before the first push to just after the last.

use super::Env;
use super::backend::disconnect;
use super::measure::{Meter, Sample};
use super::payload;
use super::produce::{Producer, produce};
use super::server::{Server, connect};
use super::summary::Results;
use super::support::{Ctx, HUNG, Progress, deadline, unique};
use std::time::Duration;

const SIZE: usize = 100;
const BATCH: u64 = 1_000;

pub(crate) async fn run(env: &Env, results: &mut Results) {
    let n = env.budget.footprint;
    if env.wants("baseline-redis-list-memory") {
        results.record("baseline-redis-list-memory", Box::pin(raw(&env.server, n)).await);
    }
    if env.wants("redis-memory") {
        results.record("redis-memory", Box::pin(busmq(env, n)).await);
    }
    if let Err(error) = env.server.flushall().await {
        results.note("redis-memory", &format!("the final FLUSHALL failed: {error}"));
    }
}

/// Lets the server settle (lazy frees, client buffers) before `used_memory` is read.
async fn settled_memory(server: &Server) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.used_memory().await
}

fn per_message(sample: &mut Sample, before: u64, after: u64, n: u64) {
    sample.bytes_per_msg = Some(after.saturating_sub(before) as f64 / n as f64);
}

async fn raw(server: &Server, n: u64) -> Result<Sample, String> {
    let progress = Progress::new();
    deadline(HUNG, "filling a raw list", &progress, n, async {
        server.flushall().await?;
        let mut conn = connect(&server.url()).await?;
        let key = unique("raw-memory");
        let before = settled_memory(server).await?;
        let meter = Meter::start(Some(server)).await?;
        let mut seq = 0;
        while seq < n {
            let end = (seq + BATCH).min(n);
            let values: Vec<String> = (seq..end).map(|s| payload::make(s, SIZE)).collect();
            redis::cmd("RPUSH")
                .arg(&key)
                .arg(values)
                .query_async::<i64>(&mut conn)
                .await
                .ctx("RPUSH")?;
            progress.sent(end - seq);
            seq = end;
        }
        let mut sample = meter.stop(n, SIZE).await?;
        per_message(&mut sample, before, settled_memory(server).await?, n);
        server.flushall().await?;
        Ok(sample)
    })
    .await
}

async fn busmq(env: &Env, n: u64) -> Result<Sample, String> {
    let server = &env.server;
    server.flushall().await?;
    let progress = Progress::new();
    let bus = env.redis().bus().await?;
    let result = deadline(HUNG, "filling a busmq queue", &progress, n, async {
        let queue = bus.queue(unique("memory")).ctx("queue")?;
        queue.attach().await.ctx("attach")?;
        let before = settled_memory(server).await?;
        let meter = Meter::start(Some(server)).await?;
        let fill = Producer::PushAll { batch: BATCH as usize, window: 4 };
        produce(&queue, fill, SIZE, n, &progress).await?;
        let mut sample = meter.stop(n, SIZE).await?;
        per_message(&mut sample, before, settled_memory(server).await?, n);
        queue.close().await.ctx("close")?;
        Ok(sample)
    })
    .await;
    let disconnected = disconnect(&[&bus]).await;
    let sample = result?;
    disconnected?;
    server.flushall().await?;
    Ok(sample)
}
