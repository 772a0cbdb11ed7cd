//! Property model of reliable consumption: random interleavings of push, deliver, ack,
//! release, drop, consumer crash (its store disconnects without giving anything back) and the
//! passing of time, with several consumers on one queue (SPEC Q13).

use super::runner::{Outcome, check, ensure};
use crate::backend::Backend;
use crate::support::{bus, take, unique};
use busmq_core::{Bus, ConsumeOptions, Consumer, Delivery, Queue, ReliableOptions, StoreHandle};
use futures::StreamExt;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::{Instant, sleep, timeout};

const CONSUMERS: usize = 3;
const MAX_DELIVERIES: u32 = 4;
/// Short, so that a crashed consumer's messages come back within a few seconds of real time;
/// long enough that the surviving consumers' extensions keep up on a loaded machine.
const VISIBILITY: Duration = Duration::from_secs(2);
/// `Wait(n)` lets `n` of these pass.
const TICK: Duration = Duration::from_millis(250);
/// How long a step looks for a delivery that may not be there.
const GLANCE: Duration = Duration::from_millis(5);
/// The longest the final settling may take before the model counts messages as lost.
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    Deliver(usize),
    Ack(usize, usize),
    Release(usize, usize),
    Drop(usize, usize),
    Crash(usize),
    Wait(u8),
}

// `Tree: Send`: the tree lives across the awaits of a case, whose future must be `Send`.
fn op() -> impl Strategy<Value = Op, Tree: Send> {
    let c = 0..CONSUMERS;
    prop_oneof![
        2 => (1u8..6).prop_map(Op::Push),
        4 => c.clone().prop_map(Op::Deliver),
        3 => (c.clone(), 0usize..4).prop_map(|(c, k)| Op::Ack(c, k)),
        1 => (c.clone(), 0usize..4).prop_map(|(c, k)| Op::Release(c, k)),
        1 => (c.clone(), 0usize..4).prop_map(|(c, k)| Op::Drop(c, k)),
        1 => c.prop_map(Op::Crash),
        1 => (1u8..8).prop_map(Op::Wait),
    ]
}

struct Worker {
    store: StoreHandle,
    _bus: Bus,
    _queue: Queue,
    consumer: Consumer<u32>,
    held: Vec<Delivery<u32>>,
}

fn options() -> ConsumeOptions {
    let reliable = ReliableOptions {
        visibility_timeout: VISIBILITY,
        max_deliveries: MAX_DELIVERIES,
        ..ReliableOptions::default()
    };
    ConsumeOptions::new().reliable(reliable).prefetch(2)
}

async fn worker(backend: &dyn Backend, name: &str) -> Worker {
    let store = backend.store().await;
    let bus = Bus::builder_from_handle(store.clone()).build().expect("bus");
    bus.connect().await.expect("connect");
    bus.wait_online(crate::support::DEADLINE).await.expect("online");
    let queue = bus.queue(name).expect("name");
    queue.attach().await.expect("attach");
    let consumer = queue.consume_with::<u32>(options()).await.expect("consume");
    Worker { store, _bus: bus, _queue: queue, consumer, held: Vec::new() }
}

/// What the model saw, per value: deliveries, acknowledgements, and the deliveries it gave back
/// (after which another delivery is allowed).
#[derive(Default, Debug)]
struct Log {
    pushed: BTreeSet<u32>,
    acked: BTreeMap<u32, u32>,
    given_back: BTreeMap<u32, u32>,
    delivered: BTreeMap<u32, u32>,
}

impl Log {
    fn give_back(&mut self, value: u32) {
        *self.given_back.entry(value).or_default() += 1;
    }

    fn ack(&mut self, value: u32) {
        *self.acked.entry(value).or_default() += 1;
    }

    fn deliver(&mut self, value: u32) -> Outcome {
        let count = self.delivered.entry(value).or_default();
        *count += 1;
        let allowed = self.given_back.get(&value).copied().unwrap_or(0) + 1;
        let count = *count;
        ensure(count <= allowed, || {
            format!("value {value} delivered again without being given back: {self:?}")
        })
    }
}

/// One sequence in progress: the producer, the consumers, and what the model saw.
struct Run<'a> {
    backend: &'a dyn Backend,
    name: String,
    _bus: Bus,
    producer: Queue,
    workers: Vec<Worker>,
    log: Log,
    next: u32,
}

impl<'a> Run<'a> {
    async fn new(backend: &'a dyn Backend) -> Run<'a> {
        let name = unique("reliable-model");
        let producer_bus = bus(backend).await;
        let producer = producer_bus.queue(&name).expect("name");
        producer.attach().await.expect("attach");
        let mut workers = Vec::with_capacity(CONSUMERS);
        for _ in 0..CONSUMERS {
            workers.push(worker(backend, &name).await);
        }
        Run { backend, name, _bus: producer_bus, producer, workers, log: Log::default(), next: 0 }
    }

    async fn step(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::Push(n) => {
                let values: Vec<u32> = (self.next..self.next + u32::from(n)).collect();
                self.next += u32::from(n);
                self.producer.push_all(&values).await.expect("push_all");
                self.log.pushed.extend(values);
            }
            Op::Deliver(c) => {
                let w = &mut self.workers[c];
                if let Ok(Some(Ok(d))) = timeout(GLANCE, w.consumer.next()).await {
                    self.log.deliver(*d.body())?;
                    w.held.push(d);
                }
            }
            Op::Ack(c, k) | Op::Release(c, k) | Op::Drop(c, k) => {
                let w = &mut self.workers[c];
                if w.held.is_empty() {
                    return Ok(());
                }
                let d = w.held.remove(k % w.held.len());
                let v = *d.body();
                match op {
                    Op::Ack(..) => {
                        if d.ack().await.is_ok() {
                            self.log.ack(v);
                        }
                    }
                    Op::Release(..) => {
                        self.log.give_back(v);
                        let _ = d.nack().await;
                    }
                    _ => {
                        self.log.give_back(v);
                        drop(d);
                    }
                }
            }
            Op::Crash(c) => {
                let fresh = worker(self.backend, &self.name).await;
                let dead = std::mem::replace(&mut self.workers[c], fresh);
                // Only the deliveries the model holds count as given back: what the consumer
                // had prefetched was never seen, so its later delivery is a first one.
                for d in &dead.held {
                    self.log.give_back(*d.body());
                }
                dead.store.disconnect().await.expect("disconnect");
                // A crashed process settles nothing: dropping these would give them back.
                for d in dead.held {
                    std::mem::forget(d);
                }
                drop(dead.consumer);
            }
            Op::Wait(n) => sleep(TICK * u32::from(n)).await,
        }
        Ok(())
    }

    /// The consumers ack everything they get, and time passes (so that what crashed consumers
    /// held comes back), until every value is acknowledged or in the dead-letter queue.
    async fn settle_everything(&mut self) -> Outcome {
        let dlq = self._bus.queue(format!("{}.dlq", self.name)).expect("name");
        let mut dead: BTreeSet<u32> = BTreeSet::new();
        let deadline = Instant::now() + SETTLE_DEADLINE;
        loop {
            let settled: BTreeSet<u32> =
                self.log.acked.keys().copied().chain(dead.iter().copied()).collect();
            if settled == self.log.pushed {
                break;
            }
            ensure(Instant::now() < deadline, || {
                format!(
                    "not settled after {SETTLE_DEADLINE:?}: {settled:?} of {:?}",
                    self.log.pushed
                )
            })?;
            for w in &mut self.workers {
                for d in w.held.drain(..) {
                    let v = *d.body();
                    if d.ack().await.is_ok() {
                        self.log.ack(v);
                    }
                }
                while let Ok(Some(Ok(d))) = timeout(GLANCE, w.consumer.next()).await {
                    let v = *d.body();
                    if d.ack().await.is_ok() {
                        self.log.ack(v);
                    }
                }
            }
            let letters = dlq.count().await.expect("count");
            if letters > 0 {
                dlq.attach().await.ok();
                let mut reader = dlq
                    .consume_with::<u32>(ConsumeOptions::new().remove(false))
                    .await
                    .expect("replay the dead letters");
                for d in take(&mut reader, letters as usize, "the dead letters").await {
                    dead.insert(*d.expect("a dead letter decodes").body());
                }
                drop(reader);
                dlq.stop().await.expect("stop");
            }
            sleep(TICK).await;
        }
        for (v, n) in &self.log.acked {
            ensure(*n == 1 || self.log.given_back.contains_key(v), || {
                format!("value {v} acknowledged {n} times without being given back")
            })?;
        }
        Ok(())
    }
}

async fn run(backend: &dyn Backend, ops: Vec<Op>) -> Outcome {
    let mut run = Run::new(backend).await;
    for (i, op) in ops.iter().enumerate() {
        run.step(op).await.map_err(|e| format!("step {i} ({op:?}): {e}"))?;
    }
    run.settle_everything().await.map_err(|e| format!("after the last step: {e}"))
}

/// Q13 (property model): however pushes, deliveries, acks, releases, drops, consumer crashes
/// and the passing of time interleave over three consumers, nothing is lost (every message
/// ends acknowledged or dead-lettered) and nothing is delivered again unless it was given back
/// (released, dropped, or held by a consumer that crashed).
pub async fn model_reliable_consumption_loses_nothing(backend: &dyn Backend) {
    let sequences = proptest::collection::vec(op(), 1..60);
    check("reliable consumption", backend.model_cases(), sequences, |ops| run(backend, ops)).await;
}
