//! baseline-list-api: baseline-list's raw list behind the shape of busmq's API in queue-1x1, with a
//! minimal client of that shape (no layout, scripts or checks). Every message is its own push
//! future (256 in flight, each answered through a oneshot), coalesced by a writer task into one
//! `RPUSH` at a time, and the consumer reads a stream fed by a fetch task (`LPOP key 100`, or a
//! blocking pop of one when the list is empty). Between baseline-list and this lies what that shape
//! costs on its own; between this and queue-1x1, what busmq adds to it (its layout, scripts, entry
//! format, settings and checks).
//!
//! baseline-list-ids adds only the per-message work busmq's SPEC asks for (see [`Work::Ids`]),
//! so that what is left between it and queue-1x1 is what busmq could still save.

use super::baseline;
use super::idfloor::{self, Stamped};
use super::measure::{Meter, Sample};
use super::payload;
use super::produce::PUSH_WINDOW;
use super::receiver::Receiver;
use super::server::{Server, connect};
use super::support::{Ctx, HUNG, Progress, Tasks, deadline, unique};
use busmq_core::support::now_micros;
use bytes::Bytes;
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

/// What the floor does for each message besides moving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// Nothing: the API shape alone (baseline-list-api).
    Shape,
    /// What busmq's SPEC asks of every message (baseline-list-ids): the push borrows the
    /// message, so it is copied; the writer gives it an id (`max(clock, last + 1)`, as
    /// busmq-redis's push proposes ids after the producer's last) in the header busmq stores
    /// before the payload; the push resolves to that id; the consumer reads the header back and
    /// hands the payload out as owned bytes. It also checks that ids rise (one compare, which
    /// busmq's consumer does not make) so that a broken floor fails instead of measuring.
    Ids,
}

/// `n` messages of `size` bytes through one list.
pub(crate) async fn list_api(
    server: &Server,
    size: usize,
    n: u64,
    work: Work,
) -> Result<Sample, String> {
    let progress = Progress::new();
    let what = match work {
        Work::Shape => "the raw list behind busmq's API shape",
        Work::Ids => "the raw list behind busmq's API shape, with ids",
    };
    let run = deadline(HUNG, what, &progress, n, run(server, size, n, work, &progress));
    Box::pin(run).await
}

async fn run(
    server: &Server,
    size: usize,
    n: u64,
    work: Work,
    progress: &Arc<Progress>,
) -> Result<Sample, String> {
    let url = server.url();
    let pusher = Pusher::new(connect(&url).await?, unique("rawapi").into(), work);
    let consumer = connect(&url).await?;
    let meter = Meter::start(Some(server)).await?;
    let (batches, mut stream) = mpsc::channel(READ_AHEAD);
    let mut fetching = Tasks::new();
    fetching.spawn(fetch(consumer, pusher.key.clone(), n, batches));
    let mut receiving = Tasks::new();
    let progress_in = progress.clone();
    receiving.spawn(async move {
        let mut receiver = Receiver::ordered();
        let mut last_id = None;
        while receiver.count < n {
            let Some(batch) = stream.recv().await else {
                return Err(format!("the fetch task ended after {} messages", receiver.count));
            };
            if work == Work::Shape {
                for value in &batch {
                    receiver.on_message(value);
                    progress_in.received(1);
                }
                continue;
            }
            for value in batch {
                let Some((id, body)) = idfloor::read(value) else {
                    return Err("a value without its id header".into());
                };
                if last_id.is_some_and(|last| id <= last) {
                    return Err(format!("id {id} after {last_id:?}"));
                }
                last_id = Some(id);
                receiver.on_message(&body);
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
        let made = payload::make(seq, size);
        inflight.push(match work {
            Work::Shape => pusher.push(Value::Made(made)),
            Work::Ids => pusher.push(Value::Copied(Bytes::copy_from_slice(made.as_bytes()))),
        });
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

/// A message handed to the pusher: the producer's own string as it is ([`Work::Shape`]), or a
/// copy of it ([`Work::Ids`]).
enum Value {
    Made(String),
    Copied(Bytes),
}

impl Value {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Made(made) => made.as_bytes(),
            Value::Copied(copied) => copied,
        }
    }
}

/// Values waiting for the writer, whether the writer task runs, and the id it gave last.
#[derive(Default)]
struct Waiting {
    values: Vec<Value>,
    waiters: Vec<oneshot::Sender<Result<u64, String>>>,
    writing: bool,
    last_id: u64,
}

#[derive(Clone)]
struct Pusher {
    conn: MultiplexedConnection,
    key: Arc<str>,
    work: Work,
    waiting: Arc<Mutex<Waiting>>,
}

impl Pusher {
    fn new(conn: MultiplexedConnection, key: Arc<str>, work: Work) -> Pusher {
        Pusher { conn, key, work, waiting: Arc::default() }
    }

    /// Queues `value`; the writer is started if idle. Resolves once the value is in the list,
    /// to its id (0 without ids).
    fn push(&self, value: Value) -> impl Future<Output = Result<u64, String>> + use<> {
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
            let (values, waiters, first) = {
                let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                if waiting.values.is_empty() {
                    waiting.writing = false;
                    return;
                }
                let k = waiting.values.len().min(MAX_BATCH);
                let first = match self.work {
                    Work::Shape => 0,
                    Work::Ids => {
                        let first = now_micros().max(waiting.last_id + 1);
                        waiting.last_id = first + k as u64 - 1;
                        first
                    }
                };
                let rest = (waiting.values.split_off(k), waiting.waiters.split_off(k));
                (
                    std::mem::replace(&mut waiting.values, rest.0),
                    std::mem::replace(&mut waiting.waiters, rest.1),
                    first,
                )
            };
            let mut rpush = redis::cmd("RPUSH");
            rpush.arg(&*self.key);
            for (i, value) in values.iter().enumerate() {
                match self.work {
                    Work::Shape => rpush.arg(value.as_bytes()),
                    Work::Ids => {
                        rpush.arg(Stamped { id: first + i as u64, body: value.as_bytes() })
                    }
                };
            }
            // The command holds the bytes now: the values go before the round trip, as they
            // did when the command took them by value.
            drop(values);
            let written =
                rpush.query_async::<i64>(&mut self.conn).await.ctx("RPUSH").map(|_| first);
            for (i, waiter) in waiters.into_iter().enumerate() {
                let id = match self.work {
                    Work::Shape => written.clone(),
                    Work::Ids => written.clone().map(|first| first + i as u64),
                };
                let _ = waiter.send(id);
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
