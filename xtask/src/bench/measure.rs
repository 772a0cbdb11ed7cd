//! One measurement: wall time, client CPU, and (for Redis scenarios) redis-server CPU and the
//! commands it ran, between a start and a stop; the result is a [`Sample`].

use super::commands::Commands;
use super::cpu::cpu_time;
use super::receiver::Receiver;
use super::server::Server;
use super::stats::Histogram;
use std::time::{Duration, Instant};

/// What one measurement found.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sample {
    pub(crate) messages: u64,
    /// Payload bytes moved, for MB/s.
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
    pub(crate) cpu: Duration,
    pub(crate) latency: Histogram,
    pub(crate) redis_cpu: Option<Duration>,
    pub(crate) commands: Option<Commands>,
    /// Redis memory per message, for the footprint scenarios.
    pub(crate) bytes_per_msg: Option<f64>,
    /// Anything odd the library did, in words.
    pub(crate) faults: Option<String>,
    /// A further figure of this measurement, in words.
    pub(crate) detail: Option<String>,
}

impl Sample {
    pub(crate) fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Takes the receiving side's latency and faults.
    pub(crate) fn with_receiver(mut self, receiver: &Receiver) -> Sample {
        self.latency = receiver.latency.clone();
        self.faults = receiver.faults();
        self
    }
}

#[derive(Debug)]
pub(crate) struct Meter<'a> {
    server: Option<&'a Server>,
    redis_pid: Option<u32>,
    commands: Option<Commands>,
    redis_cpu: Option<Duration>,
    cpu: Duration,
    started: Instant,
}

impl<'a> Meter<'a> {
    /// Starts measuring; with a server, its CPU and commandstats are measured too.
    pub(crate) async fn start(server: Option<&'a Server>) -> Result<Meter<'a>, String> {
        let commands = match server {
            Some(s) => Some(s.commands().await?),
            None => None,
        };
        let redis_pid = server.and_then(Server::pid);
        let redis_cpu = redis_pid.and_then(|pid| cpu_time(Some(pid)));
        Ok(Meter {
            server,
            redis_pid,
            commands,
            redis_cpu,
            cpu: cpu_time(None).unwrap_or_default(),
            started: Instant::now(),
        })
    }

    /// Stops measuring after `messages` messages of `size` bytes.
    pub(crate) async fn stop(self, messages: u64, size: usize) -> Result<Sample, String> {
        let elapsed = self.started.elapsed();
        let cpu = cpu_time(None).unwrap_or_default().saturating_sub(self.cpu);
        let redis_cpu = match (self.redis_pid.and_then(|pid| cpu_time(Some(pid))), self.redis_cpu) {
            (Some(after), Some(before)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        let commands = match (self.server, &self.commands) {
            (Some(server), Some(before)) => Some(server.commands().await?.since(before)),
            _ => None,
        };
        Ok(Sample {
            messages,
            bytes: messages * size as u64,
            elapsed,
            cpu,
            latency: Histogram::default(),
            redis_cpu,
            commands,
            bytes_per_msg: None,
            faults: None,
            detail: None,
        })
    }
}
