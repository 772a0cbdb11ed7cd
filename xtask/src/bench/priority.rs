//! priority-mix (SPEC P12): a queue filled with messages at levels 0..=9 (runs of 100
//! consecutive messages per level, so that pushes of a level coalesce), then drained by one
//! at-most-once consumer; the rate is the drain's. Next to drain-1x1, the same fill and drain
//! at level 0, in interleaved rounds. The drain must come out by level, highest first, and in
//! push order within a level: anything else is a library fault.

use super::Env;
use super::backend::{Backend, on_two_buses};
use super::measure::{Meter, Sample};
use super::payload;
use super::produce::{PUSH_WINDOW, Producer, produce};
use super::server::Server;
use super::summary::Results;
use super::support::{Ctx, Progress};
use super::throughput::SIZE;
use busmq_core::{Bus, ConsumeOptions};
use futures::StreamExt;
use std::sync::Arc;

pub(crate) const MIXED: &str = "priority-mix";
pub(crate) const PLAIN: &str = "drain-1x1";
/// Consecutive messages per level.
pub(crate) const RUN: u64 = 100;
/// Messages per round: enough for every level to hold many runs.
const MESSAGES: u64 = 50_000;

/// The level of message `seq`.
pub(crate) fn level(seq: u64) -> u8 {
    ((seq / RUN) % 10) as u8
}

pub(crate) async fn run(env: &Env, results: &mut Results) {
    let mut order = [(PLAIN, false), (MIXED, true)];
    for _ in 0..env.budget.rounds {
        for (name, levels) in order {
            if env.wants(name) && !results.failed(name) {
                results.record(
                    name,
                    fill_and_drain(&env.redis(), Some(&env.server), levels, MESSAGES).await,
                );
            }
        }
        order.reverse();
    }
    if let (Some(mixed), Some(queue)) = (results.rate(MIXED), results.rate("queue-1x1")) {
        let note = format!("drain rate {:.2}x queue-1x1's (push and take together)", mixed / queue);
        results.note(MIXED, &note);
    }
}

/// Fills a fresh queue with `n` messages (at levels 0..=9 when `levels`), then drains it; the
/// sample is the drain's.
pub(crate) async fn fill_and_drain(
    backend: &Backend,
    server: Option<&Server>,
    levels: bool,
    n: u64,
) -> Result<Sample, String> {
    on_two_buses(backend, "the priority drain", n, |producers, consumers, progress| async move {
        measure(&producers, &consumers, server, levels, n, &progress).await
    })
    .await
}

async fn measure(
    producers: &Bus,
    consumers: &Bus,
    server: Option<&Server>,
    levels: bool,
    n: u64,
    progress: &Arc<Progress>,
) -> Result<Sample, String> {
    let name = super::support::unique("priority");
    let producer = producers.queue(&name).ctx("queue")?;
    producer.attach().await.ctx("attach")?;
    let how = if levels {
        Producer::Leveled { window: PUSH_WINDOW, run: RUN }
    } else {
        Producer::Push { window: PUSH_WINDOW }
    };
    produce(&producer, how, SIZE, n, progress).await?;
    let consumer = consumers.queue(&name).ctx("queue")?;
    consumer.attach().await.ctx("attach")?;
    let meter = Meter::start(server).await?;
    let mut stream = consumer.consume_raw(ConsumeOptions::new().max(n)).await.ctx("consume")?;
    let mut check = Order::default();
    for _ in 0..n {
        let delivery = stream.next().await.ok_or("the consumer ended early")?.ctx("consume")?;
        let seq = payload::read(delivery.body()).ok_or("a message without the header")?.seq;
        check.next(if levels { level(seq) } else { 0 }, seq);
        progress.received(1);
    }
    let mut sample = meter.stop(n, SIZE).await?;
    sample.faults = check.faults();
    producer.close().await.ctx("close")?;
    Ok(sample)
}

/// Whether deliveries come by level (highest first), then in push order.
#[derive(Debug, Default)]
struct Order {
    last: Option<(u8, u64)>,
    wrong: u64,
}

impl Order {
    fn next(&mut self, level: u8, seq: u64) {
        if let Some((before, before_seq)) = self.last {
            if level > before || (level == before && seq < before_seq) {
                self.wrong += 1;
            }
        }
        self.last = Some((level, seq));
    }

    fn faults(&self) -> Option<String> {
        (self.wrong > 0).then(|| format!("{} deliveries out of level-then-push order", self.wrong))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_by_level_then_push_order() {
        let mut o = Order::default();
        for (level, seq) in [(9, 900), (9, 901), (5, 500), (0, 0), (0, 1)] {
            o.next(level, seq);
        }
        assert_eq!(o.faults(), None);
        o.next(3, 300);
        o.next(0, 2);
        o.next(0, 1);
        assert_eq!(o.faults().unwrap(), "2 deliveries out of level-then-push order");
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_drain_comes_by_level_on_memory() {
        let backend = Backend::Memory(busmq_memory::Memory::new());
        let sample = fill_and_drain(&backend, None, true, 5_000).await.unwrap();
        assert_eq!(sample.faults, None);
        assert_eq!(sample.messages, 5_000);
    }
}
