//! latency-paced: queue-1x1 at a fixed rate, half of the peak queue-1x1 reached in this run, for
//! the end-to-end latency of a queue that is not saturated; next to a raw list paced the same
//! way. The producers send what is due every millisecond (tokio's timer resolution).

use super::Env;
use super::backend::{Backend, on_two_buses};
use super::baseline;
use super::consume;
use super::measure::{Meter, Sample};
use super::payload;
use super::server::{Server, connect};
use super::stats::Histogram;
use super::summary::Results;
use super::support::{Ctx, HUNG, Progress, Tasks, deadline, unique};
use super::throughput::{self, SIZE};
use busmq_core::{Bus, ConsumeOptions, Push, PushOptions};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::time::{Duration, Instant};

pub(crate) async fn run(env: &Env, results: &mut Results) {
    let rate = match results.rate("queue-1x1") {
        Some(rate) => rate / 2.0,
        None => {
            let error = "no queue-1x1 rate was measured to pace at".to_string();
            results.record("latency-paced", Err(error.clone()));
            results.record("baseline-paced", Err(error));
            return;
        }
    };
    let n = ((rate * env.budget.paced_secs) as u64).max(1_000);
    let note = format!("paced at {rate:.0} msg/s (half of queue-1x1) for {n} messages");
    // Warm-ups: a fifth of a second each, not recorded.
    let warm = ((rate / 5.0) as u64).max(100);
    if env.wants("baseline-paced") {
        let _ = raw(&env.server, rate, warm).await;
    }
    if env.wants("latency-paced") {
        let _ = busmq(&env.redis(), Some(&env.server), rate, warm).await;
    }
    for _ in 0..env.budget.rounds.min(2) {
        if env.wants("baseline-paced") && !results.failed("baseline-paced") {
            results.record("baseline-paced", raw(&env.server, rate, n).await);
        }
        if env.wants("latency-paced") && !results.failed("latency-paced") {
            results.record("latency-paced", busmq(&env.redis(), Some(&env.server), rate, n).await);
        }
    }
    results.note("latency-paced", &note);
    results.note("baseline-paced", &note);
}

/// How many messages are due `elapsed` into a run at `rate`, at most `n`.
fn due(elapsed: Duration, rate: f64, n: u64) -> u64 {
    ((elapsed.as_secs_f64() * rate) as u64).min(n)
}

fn ticker() -> tokio::time::Interval {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick
}

/// `n` messages through one busmq queue paced at `rate`, end-to-end latency per message.
pub(crate) async fn busmq(
    backend: &Backend,
    server: Option<&Server>,
    rate: f64,
    n: u64,
) -> Result<Sample, String> {
    Ok(busmq_pushing(backend, server, rate, n, Pushes::Plain).await?.0)
}

/// How the paced producer pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushes {
    /// `push`: concurrent pushes may share a store call.
    Plain,
    /// `push_with` a dedupe key of its own per message (a store call each, SPEC P10).
    Dedupe,
}

/// As [`busmq`], pushing as `pushes` says; also returns how long each push took to get its id.
pub(crate) async fn busmq_pushing(
    backend: &Backend,
    server: Option<&Server>,
    rate: f64,
    n: u64,
    how: Pushes,
) -> Result<(Sample, Histogram), String> {
    on_two_buses(backend, "the paced queue", n, |producers, consumers, progress| async move {
        busmq_run(&producers, &consumers, server, rate, n, how, &progress).await
    })
    .await
}

async fn busmq_run(
    producers: &Bus,
    consumers: &Bus,
    server: Option<&Server>,
    rate: f64,
    n: u64,
    how: Pushes,
    progress: &std::sync::Arc<Progress>,
) -> Result<(Sample, Histogram), String> {
    let name = unique("paced");
    let producer = producers.queue(&name).ctx("queue")?;
    producer.attach().await.ctx("attach")?;
    let consumer = consumers.queue(&name).ctx("queue")?;
    consumer.attach().await.ctx("attach")?;
    let stream = consumer.consume_raw(ConsumeOptions::new().max(n)).await.ctx("consume")?;
    let meter = Meter::start(server).await?;
    let mut receiving = Tasks::new();
    receiving.spawn(consume::at_most_once(stream, n, progress.clone()));
    // Pushes are awaited by their own task, so that the time until a push has its id is seen
    // when it happens rather than at the producer's next tick.
    let (pushes, mut pending) = tokio::sync::mpsc::unbounded_channel::<(Push, Instant)>();
    let mut acking = Tasks::new();
    acking.spawn(async move {
        let mut acked = Histogram::default();
        let mut inflight = FuturesUnordered::new();
        loop {
            tokio::select! {
                Some((push, pushed)) = pending.recv() => {
                    inflight.push(async move { (push.await, pushed.elapsed()) });
                }
                Some((result, took)) = inflight.next(), if !inflight.is_empty() => {
                    let _: u64 = result.ctx("push")?;
                    acked.record(took);
                }
                else => return Ok::<Histogram, String>(acked),
            }
        }
    });
    let (started, mut tick, mut sent) = (Instant::now(), ticker(), 0);
    while sent < n {
        tick.tick().await;
        let until = due(started.elapsed(), rate, n).max(sent);
        for seq in sent..until {
            let message = payload::make(seq, SIZE);
            let push = match how {
                Pushes::Plain => producer.push(message.as_str()),
                Pushes::Dedupe => producer
                    .push_with(message.as_str(), PushOptions::new().dedupe(format!("m{seq}"))),
            };
            pushes.send((push, Instant::now())).map_err(|_| "the push collector stopped")?;
        }
        sent = until;
    }
    drop(pushes);
    let acked = acking.join().await?.pop().ok_or("no push collector")??;
    progress.sent(n);
    let receiver = receiving.join().await?.pop().ok_or("no receiver")??;
    let mut sample = meter.stop(n, SIZE).await?.with_receiver(&receiver);
    producer.close().await.ctx("close")?;
    sample.detail = Some(format!(
        "a push got its id after p50 {:.0} us, p99 {:.0} us",
        acked.quantile_us(0.5).unwrap_or(0.0),
        acked.quantile_us(0.99).unwrap_or(0.0)
    ));
    Ok((sample, acked))
}

/// `n` messages through a raw list (RPUSH, LPOP or BLPOP) paced at `rate`.
pub(crate) async fn raw(server: &Server, rate: f64, n: u64) -> Result<Sample, String> {
    let progress = Progress::new();
    let run =
        deadline(HUNG, "the paced raw list", &progress, n, raw_run(server, rate, n, &progress));
    Box::pin(run).await
}

async fn raw_run(
    server: &Server,
    rate: f64,
    n: u64,
    progress: &std::sync::Arc<Progress>,
) -> Result<Sample, String> {
    let url = server.url();
    let producer = connect(&url).await?;
    let consumer = connect(&url).await?;
    let key: std::sync::Arc<str> = unique("raw-paced").into();
    let meter = Meter::start(Some(server)).await?;
    let mut receiving = Tasks::new();
    receiving.spawn(baseline::drain(consumer, key.clone(), throughput::BATCH, n, progress.clone()));
    let mut inflight = FuturesUnordered::new();
    let (started, mut tick, mut sent) = (Instant::now(), ticker(), 0);
    while sent < n {
        tick.tick().await;
        let until = due(started.elapsed(), rate, n);
        if until > sent {
            let values: Vec<String> = (sent..until).map(|s| payload::make(s, SIZE)).collect();
            let (mut conn, key) = (producer.clone(), key.clone());
            inflight.push(async move {
                redis::cmd("RPUSH").arg(&*key).arg(values).query_async::<i64>(&mut conn).await
            });
            sent = until;
        }
        while let Some(Some(result)) = inflight.next().now_or_never() {
            result.ctx("RPUSH")?;
        }
    }
    while let Some(result) = inflight.next().await {
        result.ctx("RPUSH")?;
    }
    progress.sent(n);
    let receiver = receiving.join().await?.pop().ok_or("no receiver")??;
    let sample = meter.stop(n, SIZE).await?.with_receiver(&receiver);
    let mut conn = producer.clone();
    redis::cmd("DEL").arg(&*key).query_async::<i64>(&mut conn).await.ctx("DEL")?;
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_counts_up_to_n() {
        assert_eq!(due(Duration::from_millis(10), 1_000.0, 100), 10);
        assert_eq!(due(Duration::from_secs(10), 1_000.0, 100), 100);
    }
}
