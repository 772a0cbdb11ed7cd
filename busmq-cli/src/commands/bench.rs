//! `busmq bench`: a quick throughput and latency run: pushes `-n` messages to a fresh queue as
//! fast as the bus takes them while a second client consumes them, with a progress bar, then
//! a table of rates and latencies. `--memory` runs it on the embedded store, without Redis.
//!
//! Each message carries the time it was pushed (microseconds since the run began, in its first
//! 8 bytes), so the consumer measures end-to-end latency: push call to delivery, queueing
//! behind earlier messages included (the producer does not wait for the consumer). The queue
//! is closed at the end, so a run leaves nothing behind. For careful measurements use
//! `cargo xtask bench`.

use crate::connect::Connected;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::Out;
use busmq::memory::Memory;
use busmq::support::random_u64;
use busmq::{Bus, ConsumeOptions, Push, ReliableOptions};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::time::{Duration, Instant};

/// Pushes awaited together, and acknowledgements in flight at most.
const WINDOW: usize = 1000;

/// What `bench` was asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) messages: u64,
    pub(crate) size: usize,
    pub(crate) reliable: bool,
}

/// What one run measured.
struct Measured {
    pushed_in: Duration,
    total: Duration,
    /// End-to-end latencies in microseconds, sorted.
    latencies: Vec<u64>,
}

pub(crate) async fn on_memory(out: &Out, options: Options) -> CliResult {
    let bus = Bus::new(Memory::new().store());
    bus.connect().await?;
    let result = measure(&bus, "memory", out, options).await;
    bus.disconnect().await?;
    result
}

pub(crate) async fn run(connected: Connected, out: &Out, options: Options) -> CliResult {
    measure(&connected.bus, "redis", out, options).await
}

async fn measure(bus: &Bus, backend: &str, out: &Out, o: Options) -> CliResult {
    if o.size < 8 || o.messages == 0 {
        return Err(CliError::new(
            Exit::Usage,
            "bench needs --size of at least 8 and -n of at least 1",
        ));
    }
    let name = format!("busmq-bench-{:08x}", random_u64() as u32);
    let producer = bus.queue(&name)?;
    let consumer = bus.queue(&name)?;
    producer.attach().await?;
    consumer.attach().await?;
    let bar = progress(o.messages, out.json);
    let measured = run_load(&producer, &consumer, o, &bar).await;
    bar.finish_and_clear();
    let closed = producer.close().await;
    let _ = consumer.detach().await;
    let measured = measured?;
    closed?;
    report(out, backend, o, &measured)
}

fn progress(len: u64, hidden: bool) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if hidden {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} consumed  {per_sec}  {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

async fn run_load(
    producer: &busmq::Queue,
    consumer: &busmq::Queue,
    o: Options,
    bar: &ProgressBar,
) -> CliResult<Measured> {
    let started = Instant::now();
    let mut options = ConsumeOptions::new().max(o.messages);
    if o.reliable {
        options = options.reliable(ReliableOptions::default());
    }
    let mut deliveries = consumer.consume_raw(options).await?;
    let consume = async {
        let mut latencies = Vec::with_capacity(o.messages as usize);
        let mut acks = FuturesUnordered::new();
        while let Some(delivery) = deliveries.next().await {
            let delivery = delivery?;
            let mut sent = [0u8; 8];
            sent.copy_from_slice(&delivery.payload()[..8]);
            let now = started.elapsed().as_micros() as u64;
            latencies.push(now.saturating_sub(u64::from_le_bytes(sent)));
            acks.push(delivery.ack());
            if acks.len() >= WINDOW {
                if let Some(acked) = acks.next().await {
                    acked?;
                }
            }
            bar.inc(1);
        }
        while let Some(acked) = acks.next().await {
            acked?;
        }
        Ok::<_, busmq::Error>(latencies)
    };
    let produce = async {
        let mut window: Vec<Push> = Vec::with_capacity(WINDOW);
        for _ in 0..o.messages {
            let mut payload = vec![0u8; o.size];
            let now = started.elapsed().as_micros() as u64;
            payload[..8].copy_from_slice(&now.to_le_bytes());
            window.push(producer.push_raw(payload));
            if window.len() == WINDOW {
                for pushed in futures::future::join_all(window.drain(..)).await {
                    pushed?;
                }
            }
        }
        for pushed in futures::future::join_all(window).await {
            pushed?;
        }
        Ok::<_, busmq::Error>(started.elapsed())
    };
    let (pushed_in, mut latencies) = tokio::try_join!(produce, consume)?;
    let total = started.elapsed();
    if (latencies.len() as u64) < o.messages {
        return Err(CliError::new(
            Exit::Failure,
            format!("the consumer stopped after {} of {} messages", latencies.len(), o.messages),
        ));
    }
    latencies.sort_unstable();
    Ok(Measured { pushed_in, total, latencies })
}

/// The `p`-th percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(out: &Out, backend: &str, o: Options, m: &Measured) -> CliResult {
    let n = o.messages as f64;
    let push_rate = n / m.pushed_in.as_secs_f64().max(1e-9);
    let rate = n / m.total.as_secs_f64().max(1e-9);
    let (p50, p99) = (percentile(&m.latencies, 0.50), percentile(&m.latencies, 0.99));
    let max = m.latencies.last().copied().unwrap_or(0);
    let mode = if o.reliable { "reliable" } else { "at most once" };
    if out.json {
        return out.document(&json!({
            "backend": backend,
            "mode": mode,
            "messages": o.messages,
            "size": o.size,
            "seconds": m.total.as_secs_f64(),
            "push_per_sec": push_rate,
            "end_to_end_per_sec": rate,
            "latency_us": { "p50": p50, "p99": p99, "max": max },
        }));
    }
    let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
    let mut table = out.table(&["MEASURE", "VALUE"]);
    let rows = [
        ("backend", backend.to_string()),
        ("mode", mode.to_string()),
        ("messages", format!("{} x {} bytes", o.messages, o.size)),
        ("time", format!("{:.3} s", m.total.as_secs_f64())),
        ("push rate", format!("{push_rate:.0} msg/s")),
        ("end-to-end rate", format!("{rate:.0} msg/s")),
        ("latency p50", ms(p50)),
        ("latency p99", ms(p99)),
        ("latency max", ms(max)),
    ];
    for (what, value) in rows {
        table.add_row(vec![what.to_string(), value]);
    }
    out.line(table.to_string())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
    }
}
