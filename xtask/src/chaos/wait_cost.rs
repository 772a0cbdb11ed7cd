//! What `WAIT` costs: push latency (sequential pushes) and throughput (concurrent pushers, one
//! queue each) on a Sentinel set with two replicas, without and with `replicas_ack(1, 1 s)`.

use super::connect::{attach, online_bus, store};
use super::deploy::Deployment;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

const PUSHERS: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cost {
    pub(crate) setting: String,
    pub(crate) latency_p50_us: u64,
    pub(crate) latency_p99_us: u64,
    pub(crate) pushes_per_second: u64,
}

pub(crate) async fn measure(duration: Duration) -> Result<Vec<Cost>, String> {
    let deployment = Deployment::sentinel().await?;
    let url = deployment.url();
    let mut out = Vec::new();
    for (setting, wait) in [("no WAIT", false), ("WAIT 1 replica", true)] {
        let namespace = format!("cost-{:08x}", busmq_core::support::random_u64() as u32);
        let bus = online_bus(store(&url, &namespace, wait)?).await?;
        let queue = bus.queue("latency").map_err(|e| e.to_string())?;
        attach(&queue).await?;
        let mut latencies = Vec::new();
        let until = Instant::now() + duration;
        while Instant::now() < until {
            let started = Instant::now();
            queue.push(&1u64).await.map_err(|e| e.to_string())?;
            latencies.push(started.elapsed().as_micros() as u64);
        }
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        let mut pushers = Vec::new();
        for i in 0..PUSHERS {
            let queue = bus.queue(format!("throughput-{i}")).map_err(|e| e.to_string())?;
            attach(&queue).await?;
            pushers.push(tokio::spawn(async move {
                let until = Instant::now() + duration;
                let mut n = 0u64;
                while Instant::now() < until {
                    if queue.push(&n).await.is_ok() {
                        n += 1;
                    }
                }
                n
            }));
        }
        let mut total = 0;
        for pusher in pushers {
            total += pusher.await.map_err(|e| e.to_string())?;
        }
        out.push(Cost {
            setting: setting.into(),
            latency_p50_us: at(0.5),
            latency_p99_us: at(0.99),
            pushes_per_second: (total as f64 / duration.as_secs_f64()) as u64,
        });
        let _ = bus.disconnect().await;
    }
    Ok(out)
}

pub(crate) fn table(costs: &[Cost]) -> String {
    let mut out =
        format!("{:<16} {:>14} {:>14} {:>12}\n", "push", "latency p50", "latency p99", "pushes/s");
    for c in costs {
        out.push_str(&format!(
            "{:<16} {:>11} µs {:>11} µs {:>12}\n",
            c.setting, c.latency_p50_us, c.latency_p99_us, c.pushes_per_second
        ));
    }
    out.push_str(&format!("({PUSHERS} concurrent pushers for the throughput, one queue each)\n"));
    out
}
