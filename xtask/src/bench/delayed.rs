//! delayed-lateness (issue 16 item 1): 10,000 delayed messages scheduled up front, their due
//! times spread evenly over five seconds (2,000 come due per second, the rate of paced-2k),
//! one idle at-most-once consumer. The latency figures are each message's lateness: when it
//! arrived minus its due time (as the client computed it when scheduling; the store counts
//! the delay from when the call reached it, a fraction of a millisecond later). Next to
//! paced-2k, a plain queue paced at the same rate in the same run.

use super::Env;
use super::backend::{Backend, disconnect};
use super::measure::{Meter, Sample};
use super::server::Server;
use super::stats::Histogram;
use super::summary::Results;
use super::support::{Ctx, HUNG, Progress, deadline, unique};
use busmq_core::{Bus, ConsumeOptions, Queue, When};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAME: &str = "delayed-lateness";
/// Delayed messages per round.
const MESSAGES: u64 = 10_000;
/// Over how long their due times are spread.
const SPREAD: Duration = Duration::from_secs(5);
/// The first due time after scheduling starts: scheduling all of them must end before it, so
/// that the consumer meets messages coming due rather than a backlog.
const LEAD: Duration = Duration::from_secs(3);
/// Schedules in flight at once.
const SCHEDULERS: u64 = 32;

pub(crate) async fn run(env: &Env, results: &mut Results) {
    if !env.wants(NAME) {
        return;
    }
    for _ in 0..env.budget.rounds.min(2) {
        if !results.failed(NAME) {
            results.record(NAME, once(&env.redis(), &env.server).await);
        }
    }
    let note = format!(
        "{MESSAGES} scheduled, due evenly over {SPREAD:?} (2,000/s) from {LEAD:?} on; \
         latency = lateness after the due time"
    );
    results.note(NAME, &note);
}

async fn once(backend: &Backend, server: &Server) -> Result<Sample, String> {
    let progress = Progress::new();
    let producers = backend.bus().await?;
    let consumers = backend.bus().await?;
    let work = measure(&producers, &consumers, server, &progress);
    let result = Box::pin(deadline(HUNG, "the delayed queue", &progress, MESSAGES, work)).await;
    let disconnected = disconnect(&[&producers, &consumers]).await;
    let sample = result?;
    disconnected?;
    Ok(sample)
}

/// When message `i` is due, from the start of scheduling.
fn due(i: u64) -> Duration {
    LEAD + SPREAD.mul_f64(i as f64 / MESSAGES as f64)
}

async fn measure(
    producers: &Bus,
    consumers: &Bus,
    server: &Server,
    progress: &Arc<Progress>,
) -> Result<Sample, String> {
    let name = unique("delayed");
    let producer = producers.queue(&name).ctx("queue")?;
    producer.attach().await.ctx("attach")?;
    let consumer = consumers.queue(&name).ctx("queue")?;
    consumer.attach().await.ctx("attach")?;
    let mut stream =
        consumer.consume_raw(ConsumeOptions::new().max(MESSAGES)).await.ctx("consume")?;
    let meter = Meter::start(Some(server)).await?;
    let start = Instant::now();
    let mut scheduling = Vec::new();
    for k in 0..SCHEDULERS {
        let queue: Queue = producer.clone();
        let progress = progress.clone();
        scheduling.push(tokio::spawn(async move {
            for i in (k..MESSAGES).step_by(SCHEDULERS as usize) {
                let at = due(i);
                let delay = at.saturating_sub(start.elapsed());
                let body = (at.as_micros() as u64).to_le_bytes().to_vec();
                queue
                    .schedule_raw(body, When::After(delay), busmq_core::PushOptions::new())
                    .await
                    .ctx("schedule")?;
                progress.sent(1);
            }
            Ok::<(), String>(())
        }));
    }
    for task in scheduling {
        task.await.map_err(|e| e.to_string())??;
    }
    let scheduled_in = start.elapsed();
    let mut lateness = Histogram::default();
    let mut received = 0;
    while received < MESSAGES {
        let delivery = stream.next().await.ok_or("the consumer ended early")?.ctx("consume")?;
        let arrived = start.elapsed();
        let bytes: [u8; 8] = delivery.body()[..].try_into().map_err(|_| "a body of 8 bytes")?;
        let at = Duration::from_micros(u64::from_le_bytes(bytes));
        lateness.record(arrived.saturating_sub(at));
        received += 1;
        progress.received(1);
    }
    let mut sample = meter.stop(MESSAGES, 8).await?;
    sample.latency = lateness;
    sample.detail = Some(format!("scheduling took {scheduled_in:.1?} (lead {LEAD:?})"));
    if scheduled_in > LEAD {
        sample.faults = Some("scheduling ran past the first due time".into());
    }
    Ok(sample)
}
