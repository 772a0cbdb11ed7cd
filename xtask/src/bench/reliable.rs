//! At-least-once scenarios: one queue, one producer (`push`, 256 in flight, as queue-1x1), and
//! one or several reliable consumers on another bus that acknowledge every delivery. Afterwards
//! the queue must hold nothing, ready or pending: anything left is a library fault.

use super::backend::{Backend, on_two_buses};
use super::consume::{self, Team};
use super::measure::{Meter, Sample};
use super::produce::{PUSH_WINDOW, Producer, produce};
use super::receiver::Receiver;
use super::server::Server;
use super::support::{Ctx, Progress, Tasks, unique};
use busmq_core::{Bus, ConsumeOptions, ReliableOptions};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) consumers: usize,
    /// Acks awaiting the store per consumer (1: each ack is awaited before the next message).
    pub(crate) ack_window: usize,
}

pub(crate) async fn reliable(
    backend: &Backend,
    server: Option<&Server>,
    shape: Shape,
    size: usize,
    n: u64,
) -> Result<Sample, String> {
    on_two_buses(backend, "the reliable queue", n, |producers, consumers, progress| async move {
        measure(&producers, &consumers, server, shape, size, n, &progress).await
    })
    .await
}

async fn measure(
    producers: &Bus,
    consumers: &Bus,
    server: Option<&Server>,
    shape: Shape,
    size: usize,
    n: u64,
    progress: &Arc<Progress>,
) -> Result<Sample, String> {
    let name = unique("reliable");
    let producer = producers.queue(&name).ctx("queue")?;
    producer.attach().await.ctx("attach")?;
    let mut streams = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..shape.consumers.max(1) {
        let queue = consumers.queue(&name).ctx("queue")?;
        queue.attach().await.ctx("attach")?;
        let options = ConsumeOptions::new().reliable(ReliableOptions::default());
        streams.push(queue.consume_raw(options).await.ctx("consume")?);
        handles.push(queue);
    }
    let team = Team::new(n);
    let meter = Meter::start(server).await?;
    let mut receiving = Tasks::new();
    for stream in streams {
        // One consumer alone must see the producer's order; several share it out.
        let receiver =
            if shape.consumers <= 1 { Receiver::ordered() } else { Receiver::unordered() };
        receiving.spawn(consume::reliable(
            stream,
            team.clone(),
            shape.ack_window,
            receiver,
            progress.clone(),
        ));
    }
    let push = Producer::Push { window: PUSH_WINDOW };
    produce(&producer, push, size, n, progress).await?;
    let mut receiver = Receiver::unordered();
    let mut faults = Vec::new();
    for received in receiving.join().await? {
        let received = received?;
        faults.extend(received.faults());
        receiver.merge(&received);
    }
    let mut sample = meter.stop(n, size).await?.with_receiver(&receiver);
    let stat = producer.stat().await.ctx("stat")?;
    if stat.count > 0 || stat.pending > 0 {
        faults.push(format!(
            "after {n} deliveries were acknowledged the queue still holds {} ready and {} pending",
            stat.count, stat.pending
        ));
    }
    if receiver.count != n {
        faults.push(format!("{} deliveries for {n} messages", receiver.count));
    }
    sample.faults = (!faults.is_empty()).then(|| faults.join("; "));
    producer.close().await.ctx("close")?;
    drop(handles);
    Ok(sample)
}
