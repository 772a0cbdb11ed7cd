//! baseline-list-api: baseline-list's raw list behind the shape of busmq's API in queue-1x1, with a
//! minimal client of that shape (no layout, scripts or checks). Every message is its own push
//! future (256 in flight, each answered through a oneshot), coalesced by a writer task into one
//! `RPUSH` at a time, and the consumer reads a stream fed by a fetch task (`LPOP key 100`, or a
//! blocking pop of one when the list is empty). Between baseline-list and this lies what that shape
//! costs on its own; between this and queue-1x1, what busmq adds to it (its layout, scripts, entry
//! format, settings and checks).

use super::baseline;
use super::measure::{Meter, Sample};
use super::payload;
use super::produce::PUSH_WINDOW;
use super::receiver::Receiver;
use super::server::{Server, connect};
use super::support::{Ctx, HUNG, Progress, Tasks, deadline, unique};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use redis::aio::MultiplexedConnection;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most values one `RPUSH` carries (busmq's producer writes at most 1,024 entries per call).
const MAX_BATCH: usize = 1024;
/// Values one `LPOP` asks for (as baseline-list's consumer).
const POP: usize = 100;
/// Batches the fetch task may read ahead of the consumer.
const READ_AHEAD: usize = 4;

/// `n` messages of `size` bytes through one list.
pub(crate) async fn list_api(server: &Server, size: usize, n: u64) -> Result<Sample, String> {
    let progress = Progress::new();
    let what = "the raw list behind busmq's API shape";
    let run = deadline(HUNG, what, &progress, n, run(server, size, n, &progress));
    Box::pin(run).await
}

async fn run(
    server: &Server,
    size: usize,
    n: u64,
    progress: &Arc<Progress>,
) -> Result<Sample, String> {
    let url = server.url();
    let pusher = Pusher::new(connect(&url).await?, unique("rawapi").into());
    let consumer = connect(&url).await?;
    let meter = Meter::start(Some(server)).await?;
    let (batches, mut stream) = mpsc::channel(READ_AHEAD);
    let mut fetching = Tasks::new();
    fetching.spawn(fetch(consumer, pusher.key.clone(), n, batches));
    let mut receiving = Tasks::new();
    let progress_in = progress.clone();
    receiving.spawn(async move {
        let mut receiver = Receiver::ordered();
        while receiver.count < n {
            let Some(batch) = stream.recv().await else {
                return Err(format!("the fetch task ended after {} messages", receiver.count));
            };
            for value in &batch {
                receiver.on_message(value);
                progress_in.received(1);
            }
        }
        Ok(receiver)
    });
    let mut inflight = FuturesUnordered::new();
    for seq in 0..n {
        if inflight.len() >= PUSH_WINDOW {
            if let Some(result) = inflight.next().await {
                result?;
                progress.sent(1);
            }
        }
        inflight.push(pusher.push(payload::make(seq, size)));
    }
    while let Some(result) = inflight.next().await {
        result?;
        progress.sent(1);
    }
    // The fetch task first: when it fails, the receiver only sees its channel close.
    fetching.join().await?.pop().ok_or("no fetch task")??;
    let receiver = receiving.join().await?.pop().ok_or("no receiver")??;
    let sample = meter.stop(n, size).await?.with_receiver(&receiver);
    let mut conn = pusher.conn.clone();
    redis::cmd("DEL").arg(&*pusher.key).query_async::<i64>(&mut conn).await.ctx("DEL")?;
    Ok(sample)
}

/// Values waiting for the writer, and whether the writer task runs.
#[derive(Default)]
struct Waiting {
    values: Vec<String>,
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    writing: bool,
}

#[derive(Clone)]
struct Pusher {
    conn: MultiplexedConnection,
    key: Arc<str>,
    waiting: Arc<Mutex<Waiting>>,
}

impl Pusher {
    fn new(conn: MultiplexedConnection, key: Arc<str>) -> Pusher {
        Pusher { conn, key, waiting: Arc::default() }
    }

    /// Queues `value`; the writer is started if idle. Resolves once the value is in the list.
    fn push(&self, value: String) -> impl Future<Output = Result<(), String>> + use<> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.values.push(value);
            waiting.waiters.push(tx);
            !std::mem::replace(&mut waiting.writing, true)
        };
        if start {
            tokio::spawn(self.clone().write());
        }
        async move { rx.await.unwrap_or_else(|_| Err("the writer went away".into())) }
    }

    /// Writes what waits, one `RPUSH` at a time (so that order is kept), until nothing does.
    async fn write(mut self) {
        loop {
            let (values, waiters) = {
                let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                if waiting.values.is_empty() {
                    waiting.writing = false;
                    return;
                }
                let k = waiting.values.len().min(MAX_BATCH);
                let rest = (waiting.values.split_off(k), waiting.waiters.split_off(k));
                (
                    std::mem::replace(&mut waiting.values, rest.0),
                    std::mem::replace(&mut waiting.waiters, rest.1),
                )
            };
            let written = redis::cmd("RPUSH")
                .arg(&*self.key)
                .arg(values)
                .query_async::<i64>(&mut self.conn)
                .await
                .ctx("RPUSH")
                .map(drop);
            for waiter in waiters {
                let _ = waiter.send(written.clone());
            }
        }
    }
}

/// Reads `n` values from `key` into `batches`, a pop at a time (see [`baseline::pop`]).
async fn fetch(
    mut conn: MultiplexedConnection,
    key: Arc<str>,
    n: u64,
    batches: mpsc::Sender<Vec<Vec<u8>>>,
) -> Result<(), String> {
    let mut fetched = 0;
    while fetched < n {
        let batch = baseline::pop(&mut conn, &key, POP).await?;
        if batch.is_empty() {
            continue;
        }
        fetched += batch.len() as u64;
        if batches.send(batch).await.is_err() {
            return Err("the consumer went away".into());
        }
    }
    Ok(())
}
