//! Metrics with Prometheus: installs `metrics-exporter-prometheus` (the application's choice;
//! busmq records through the `metrics` facade and ships no exporter), then runs a producer and
//! a reliable consumer on the embedded in-memory store while `/metrics` is served.
//!
//! ```text
//! cargo run -p busmq --example prometheus              # serves 127.0.0.1:9898 for 30 s
//! cargo run -p busmq --example prometheus -- 127.0.0.1:9100 120
//! curl -s http://127.0.0.1:9898/metrics | grep busmq_
//! ```
//!
//! The recorder is installed before the bus is built: metric handles are made once per queue
//! handle and consumer, and a handle made before any recorder records nothing. Logs go to the
//! terminal through a `tracing` subscriber (`RUST_LOG` is not read; INFO and above).
#![allow(clippy::print_stdout, reason = "an example shows its work on the terminal")]

use busmq::memory::Memory;
use busmq::{Bus, ConsumeOptions, ReliableOptions};
use futures::StreamExt;
use metrics_exporter_prometheus::PrometheusBuilder;
use std::net::SocketAddr;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:9898").parse()?;
    let seconds: u64 = args.next().as_deref().unwrap_or("30").parse()?;
    tracing_subscriber::fmt().with_max_level(tracing_subscriber::filter::LevelFilter::INFO).init();
    PrometheusBuilder::new().with_http_listener(addr).install()?;
    println!("serving http://{addr}/metrics for {seconds} s");

    let bus = Bus::builder(Memory::new().store()).depth_sampling(Duration::from_secs(1)).build()?;
    bus.connect().await?;
    let jobs = bus.queue("jobs")?;
    jobs.attach().await?;

    let producer = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                n += 1;
                if let Err(error) = jobs.push(&format!("job {n}")).await {
                    println!("push failed: {error}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // A second handle consumes, as another process would: every tenth job is refused and
    // lands in the dead-letter queue `jobs.dlq`, the others are acknowledged.
    let worker = bus.queue("jobs")?;
    worker.attach().await?;
    let options = ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut deliveries = worker.consume_with::<String>(options).await?;
    let consumer = tokio::spawn(async move {
        let mut seen = 0u64;
        while let Some(delivery) = deliveries.next().await {
            let Ok(delivery) = delivery else { continue };
            seen += 1;
            let settled = if seen % 10 == 0 {
                delivery.reject("every tenth job is refused").await
            } else {
                delivery.ack().await
            };
            if let Err(error) = settled {
                println!("settle failed: {error}");
            }
        }
    });

    tokio::time::sleep(Duration::from_secs(seconds)).await;
    producer.abort();
    worker.stop().await?;
    let _ = consumer.await;
    bus.disconnect().await?;
    println!("done: {} pushed, {} consumed", jobs.pushed(), worker.consumed());
    Ok(())
}
