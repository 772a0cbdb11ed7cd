//! memory-1x1: queue-1x1 on the in-memory backend (producer and consumer on two stores of one
//! `Memory`), next to a bounded `tokio::sync::mpsc` channel moving the same messages with the
//! same number in flight; interleaved in rounds. Neither touches Redis.

use super::Env;
use super::backend::Backend;
use super::measure::{Meter, Sample};
use super::payload;
use super::produce::{PUSH_WINDOW, Producer};
use super::queue::{self, Flow};
use super::receiver::Receiver;
use super::summary::Results;
use super::support::{HUNG, Progress, Tasks, deadline};
use super::throughput::{SIZE, messages_for};

const FLOW: Flow = Flow { producer: Producer::Push { window: PUSH_WINDOW }, size: SIZE, queues: 1 };

pub(crate) async fn run(env: &Env, results: &mut Results) {
    let backend = Backend::Memory(busmq_memory::Memory::new());
    let warm = 20_000;
    let mut n = None;
    if env.wants("baseline-mpsc") {
        match mpsc(warm).await {
            Ok(sample) => n = Some(messages_for(sample.rate(), env.budget.secs)),
            Err(error) => results.record("baseline-mpsc", Err(format!("warm-up: {error}"))),
        }
    }
    let mut own = None;
    if env.wants("memory-1x1") {
        match queue::fan(&backend, None, FLOW, warm).await {
            Ok(sample) => own = Some(messages_for(sample.rate(), env.budget.secs)),
            Err(error) => results.record("memory-1x1", Err(format!("warm-up: {error}"))),
        }
    }
    for _ in 0..env.budget.rounds {
        if let Some(n) = n {
            if !results.failed("baseline-mpsc") {
                results.record("baseline-mpsc", mpsc(n).await);
            }
        }
        if let Some(n) = own {
            if !results.failed("memory-1x1") {
                results.record("memory-1x1", queue::fan(&backend, None, FLOW, n).await);
            }
        }
    }
}

/// `n` messages through a bounded tokio channel, one producer task and one consumer task.
async fn mpsc(n: u64) -> Result<Sample, String> {
    let progress = Progress::new();
    let run = deadline(HUNG, "the tokio mpsc channel", &progress, n, async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(PUSH_WINDOW);
        let meter = Meter::start(None).await?;
        let mut receiving = Tasks::new();
        let counted = progress.clone();
        receiving.spawn(async move {
            let mut receiver = Receiver::ordered();
            while receiver.count < n {
                let message = rx.recv().await.ok_or("the channel closed early")?;
                receiver.on_message(message.as_bytes());
                counted.received(1);
            }
            Ok::<Receiver, String>(receiver)
        });
        for seq in 0..n {
            tx.send(payload::make(seq, SIZE)).await.map_err(|_| "the receiver is gone")?;
        }
        progress.sent(n);
        let receiver = receiving.join().await?.pop().ok_or("no receiver")??;
        Ok(meter.stop(n, SIZE).await?.with_receiver(&receiver))
    });
    Box::pin(run).await
}
