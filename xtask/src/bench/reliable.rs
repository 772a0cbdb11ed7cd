//! At-least-once scenarios: one queue, one producer (`push`, 256 in flight, as queue-1x1), and
//! one or several reliable consumers on another bus that acknowledge every delivery. Afterwards
//! the queue must hold nothing, ready or pending: anything left is a library fault.

use super::backend::{Backend, on_two_buses};
use super::consume::{self, Team};
use super::keyorder::{KeyOrder, Keys};
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
    /// Ordering keys of the pushes, if any (then the consumers check the order per key).
    pub(crate) keys: Option<Keys>,
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
    let order = shape.keys.map(|keys| Arc::new(KeyOrder::new(keys)));
    let meter = Meter::start(server).await?;
    let mut receiving = Tasks::new();
    for stream in streams {
        // One consumer alone must see the producer's order; several share it out.
        let receiver = match &order {
            Some(order) => Receiver::per_key(order.clone()),
            None if shape.consumers <= 1 => Receiver::ordered(),
            None => Receiver::unordered(),
        };
        receiving.spawn(consume::reliable(
            stream,
            team.clone(),
            shape.ack_window,
            receiver,
            progress.clone(),
        ));
    }
    let push = match shape.keys {
        Some(keys) => Producer::Ordered { window: PUSH_WINDOW, keys },
        None => Producer::Push { window: PUSH_WINDOW },
    };
    produce(&producer, push, size, n, progress).await?;
    let mut receiver = Receiver::unordered();
    let mut faults = Vec::new();
    for received in receiving.join().await? {
        let received = received?;
        faults.extend(received.faults());
        receiver.merge(&received);
    }
    faults.extend(order.and_then(|o| o.faults()));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The keyed scenario's consumers on the in-memory backend: few keys, so that messages of
    /// one key are pushed while another of it is held, and four consumers compete for them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyed_consumers_get_each_key_in_push_order_on_memory() {
        let backend = Backend::Memory(busmq_memory::Memory::new());
        let keys = Some(Keys { keys: 10, run: 1 });
        let shape = Shape { consumers: 4, keys, ack_window: 16 };
        let sample = reliable(&backend, None, shape, 100, 5_000).await.unwrap();
        assert_eq!(sample.faults, None);
        assert_eq!(sample.messages, 5_000);
    }
}
