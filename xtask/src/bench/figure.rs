//! What a bench scenario is: its baseline, the figure its ratio compares, its targets (ratios
//! measured in the same run) and what its latency measures; the scenarios are `catalog.rs`.

/// The figure a ratio compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Figure {
    /// Messages per second (higher is better).
    Rate,
    /// Median latency (lower is better).
    P50,
    /// 99th percentile latency (lower is better).
    P99,
    /// Redis memory per message (lower is better).
    Memory,
    /// The client's CPU time per message (lower is better).
    ClientCpu,
    /// redis-server's CPU time per message (lower is better).
    RedisCpu,
}

impl Figure {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Figure::Rate => "msgs_per_s",
            Figure::P50 => "p50_us",
            Figure::P99 => "p99_us",
            Figure::Memory => "bytes_per_msg",
            Figure::ClientCpu => "cpu_us_per_msg",
            Figure::RedisCpu => "redis_cpu_us_per_msg",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    pub(crate) fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtLeast(limit) => ratio >= limit,
            Goal::AtMost(limit) => ratio <= limit,
        }
    }

    /// Whether ratio `a` does better than ratio `b` against this goal.
    pub(crate) fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::AtLeast(_) => a > b,
            Goal::AtMost(_) => a < b,
        }
    }

    pub(crate) fn text(self) -> String {
        match self {
            Goal::AtLeast(limit) => format!(">= {limit}x"),
            Goal::AtMost(limit) => format!("<= {limit}x"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) baseline: Option<&'static str>,
    /// The figure of the row's ratio.
    pub(crate) figure: Figure,
    pub(crate) targets: &'static [(Figure, Goal)],
    /// Other scenarios whose results this one needs (beyond its baseline).
    pub(crate) needs: &'static [&'static str],
    /// A raw client doing what this scenario asks of Redis and of the client, without busmq
    /// (same baseline). The report gives its ratio next to each target: a target the floor
    /// misses is beyond what a client doing only that work reached in the run. It is a bound
    /// only as far as busmq does not beat it; the report says when busmq did (noise, or a
    /// figure the floor does not bound).
    pub(crate) floor: Option<&'static str>,
    /// What its latency percentiles measure.
    pub(crate) latency: &'static str,
    pub(crate) about: &'static str,
}

pub(crate) const fn scenario(
    name: &'static str,
    baseline: Option<&'static str>,
    figure: Figure,
    targets: &'static [(Figure, Goal)],
    latency: &'static str,
    about: &'static str,
) -> Scenario {
    Scenario { name, baseline, figure, targets, needs: &[], floor: None, latency, about }
}
