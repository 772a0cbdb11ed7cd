//! The raw-Redis ceilings busmq is compared with, over the same number of connections: a list
//! fed with pipelined multi-value pushes and drained with `LPOP key <count>` (one connection
//! each side), and a push + blocking-pop ping-pong between two connections. The list is fed
//! with RPUSH rather than LPUSH so that it is first-in first-out like a queue (the same cost),
//! which keeps latencies comparable and lets the receiver check order.

use super::measure::{Meter, Sample};
use super::payload;
use super::receiver::Receiver;
use super::server::{Server, connect};
use super::stats::Histogram;
use super::support::{Ctx, HUNG, Progress, Tasks, deadline, unique};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::time::Instant;

/// Values per push command and push commands in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) size: usize,
    pub(crate) batch: usize,
    pub(crate) window: usize,
}

/// The list ceiling: `n` messages through one list.
pub(crate) async fn list(server: &Server, shape: Shape, n: u64) -> Result<Sample, String> {
    let progress = Progress::new();
    let run = deadline(HUNG, "the raw list", &progress, n, list_run(server, shape, n, &progress));
    Box::pin(run).await
}

async fn list_run(
    server: &Server,
    shape: Shape,
    n: u64,
    progress: &Arc<Progress>,
) -> Result<Sample, String> {
    let url = server.url();
    let producer = connect(&url).await?;
    let consumer = connect(&url).await?;
    let key: Arc<str> = unique("raw").into();
    let meter = Meter::start(Some(server)).await?;
    let mut receiving = Tasks::new();
    receiving.spawn(drain(consumer.clone(), key.clone(), shape.batch, n, progress.clone()));
    let mut inflight = FuturesUnordered::new();
    let mut seq = 0;
    while seq < n {
        if inflight.len() >= shape.window {
            if let Some(result) = inflight.next().await {
                result?;
            }
        }
        let end = (seq + shape.batch as u64).min(n);
        let values: Vec<String> = (seq..end).map(|s| payload::make(s, shape.size)).collect();
        let (mut conn, key, progress) = (producer.clone(), key.clone(), progress.clone());
        inflight.push(async move {
            let count = values.len() as u64;
            redis::cmd("RPUSH")
                .arg(&*key)
                .arg(values)
                .query_async::<i64>(&mut conn)
                .await
                .ctx("RPUSH")?;
            progress.sent(count);
            Ok::<(), String>(())
        });
        seq = end;
    }
    while let Some(result) = inflight.next().await {
        result?;
    }
    let receiver = receiving.join().await?.pop().ok_or("no receiver")??;
    let sample = meter.stop(n, shape.size).await?.with_receiver(&receiver);
    let mut conn = producer.clone();
    redis::cmd("DEL").arg(&*key).query_async::<i64>(&mut conn).await.ctx("DEL")?;
    Ok(sample)
}

/// Takes `n` messages from `key` (see [`pop`]).
pub(crate) async fn drain(
    mut conn: MultiplexedConnection,
    key: Arc<str>,
    batch: usize,
    n: u64,
    progress: Arc<Progress>,
) -> Result<Receiver, String> {
    let mut receiver = Receiver::ordered();
    while receiver.count < n {
        let values = pop(&mut conn, &key, batch).await?;
        progress.received(values.len() as u64);
        for value in &values {
            receiver.on_message(value);
        }
    }
    Ok(receiver)
}

/// One pop from `key`: `LPOP key <batch>` while there are some, else a blocking pop of one (so
/// an empty list costs no busy polling); nothing when that pop timed out.
pub(crate) async fn pop(
    conn: &mut MultiplexedConnection,
    key: &str,
    batch: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let taken: Option<Vec<Vec<u8>>> =
        redis::cmd("LPOP").arg(key).arg(batch).query_async(conn).await.ctx("LPOP")?;
    match taken {
        Some(values) if !values.is_empty() => Ok(values),
        _ => {
            let popped: Option<(Vec<u8>, Vec<u8>)> =
                redis::cmd("BLPOP").arg(key).arg(1).query_async(conn).await.ctx("BLPOP")?;
            Ok(popped.map(|(_, value)| vec![value]).unwrap_or_default())
        }
    }
}

/// Ping-pong: one side pushes a message and waits for the answer with BLPOP, the other echoes
/// with BLPOP + LPUSH; `n` round trips are timed after `warm` unmeasured ones.
pub(crate) async fn pingpong(
    server: &Server,
    size: usize,
    warm: u64,
    n: u64,
) -> Result<Sample, String> {
    let progress = Progress::new();
    let run = deadline(
        HUNG,
        "the raw ping-pong",
        &progress,
        n,
        pingpong_run(server, size, warm, n, &progress),
    );
    Box::pin(run).await
}

async fn pingpong_run(
    server: &Server,
    size: usize,
    warm: u64,
    n: u64,
    progress: &Progress,
) -> Result<Sample, String> {
    let url = server.url();
    let mut near = connect(&url).await?;
    let far = connect(&url).await?;
    let (ping, pong): (Arc<str>, Arc<str>) = (unique("ping").into(), unique("pong").into());
    let mut echo = Tasks::new();
    echo.spawn(echo_loop(far, ping.clone(), pong.clone(), warm + n));
    let mut latency = Histogram::default();
    let mut meter = None;
    for i in 0..warm + n {
        if i == warm {
            meter = Some(Meter::start(Some(server)).await?);
        }
        let message = payload::make(i, size);
        let started = Instant::now();
        redis::cmd("LPUSH")
            .arg(&*ping)
            .arg(message)
            .query_async::<i64>(&mut near)
            .await
            .ctx("LPUSH")?;
        let answer: Option<(Vec<u8>, Vec<u8>)> =
            redis::cmd("BLPOP").arg(&*pong).arg(5).query_async(&mut near).await.ctx("BLPOP")?;
        if answer.is_none() {
            return Err(format!("round trip {i}: no answer within 5 s"));
        }
        if i >= warm {
            latency.record(started.elapsed());
            progress.received(1);
        }
    }
    let meter = meter.ok_or("no round trips to measure")?;
    let mut sample = meter.stop(n, size).await?;
    sample.latency = latency;
    echo.join().await?.pop().ok_or("no echo task")??;
    Ok(sample)
}

async fn echo_loop(
    mut conn: MultiplexedConnection,
    ping: Arc<str>,
    pong: Arc<str>,
    rounds: u64,
) -> Result<(), String> {
    for _ in 0..rounds {
        let got: Option<(Vec<u8>, Vec<u8>)> =
            redis::cmd("BLPOP").arg(&*ping).arg(5).query_async(&mut conn).await.ctx("BLPOP")?;
        let Some((_, message)) = got else {
            return Err("the echo side got nothing within 5 s".into());
        };
        redis::cmd("LPUSH")
            .arg(&*pong)
            .arg(message)
            .query_async::<i64>(&mut conn)
            .await
            .ctx("LPUSH")?;
    }
    Ok(())
}
