//! At-most-once queue scenarios: `queues` queues, each with one producer and one consumer, the
//! producers on one bus and the consumers on another (two clients, as in separate processes).
//! queue-1x1 is one queue, queue-100 is node busmq's benchmark topology; memory-1x1 and the
//! large-message scenarios run the same code.

use super::backend::{Backend, on_two_buses};
use super::consume;
use super::measure::{Meter, Sample};
use super::produce::{Producer, produce};
use super::receiver::Receiver;
use super::server::Server;
use super::support::{Ctx, Progress, Tasks, unique};
use busmq_core::{Bus, ConsumeOptions, Queue};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Flow {
    pub(crate) producer: Producer,
    pub(crate) size: usize,
    pub(crate) queues: usize,
}

/// Moves `n` messages (split evenly over the queues) and measures from the first push to the
/// last delivery. `server` is measured too when given.
pub(crate) async fn fan(
    backend: &Backend,
    server: Option<&Server>,
    flow: Flow,
    n: u64,
) -> Result<Sample, String> {
    on_two_buses(
        backend,
        "the at-most-once queues",
        n,
        |producers, consumers, progress| async move {
            measure(&producers, &consumers, server, flow, n, &progress).await
        },
    )
    .await
}

async fn measure(
    producers: &Bus,
    consumers: &Bus,
    server: Option<&Server>,
    flow: Flow,
    n: u64,
    progress: &std::sync::Arc<Progress>,
) -> Result<Sample, String> {
    let queues = flow.queues.max(1) as u64;
    let per_queue = n / queues;
    let name = unique("q");
    let mut pushing: Vec<Queue> = Vec::new();
    let mut receiving = Tasks::new();
    let mut starts = Vec::new();
    for i in 0..queues {
        let queue_name = format!("{name}-{i}");
        let producer = producers.queue(&queue_name).ctx("queue")?;
        producer.attach().await.ctx("attach")?;
        let consumer = consumers.queue(&queue_name).ctx("queue")?;
        consumer.attach().await.ctx("attach")?;
        let stream =
            consumer.consume_raw(ConsumeOptions::new().max(per_queue)).await.ctx("consume")?;
        starts.push((consumer, stream));
        pushing.push(producer);
    }
    let meter = Meter::start(server).await?;
    let mut kept = Vec::new();
    for (consumer, stream) in starts {
        receiving.spawn(consume::at_most_once(stream, per_queue, progress.clone()));
        kept.push(consumer);
    }
    let mut sending = Tasks::new();
    for producer in &pushing {
        let (producer, progress) = (producer.clone(), progress.clone());
        sending.spawn(async move {
            produce(&producer, flow.producer, flow.size, per_queue, &progress).await
        });
    }
    for sent in sending.join().await? {
        sent?;
    }
    let mut receiver = Receiver::ordered();
    for received in receiving.join().await? {
        receiver.merge(&received?);
    }
    let sample = meter.stop(per_queue * queues, flow.size).await?.with_receiver(&receiver);
    for producer in &pushing {
        producer.close().await.ctx("close")?;
    }
    drop(kept);
    Ok(sample)
}
