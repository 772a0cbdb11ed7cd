//! From samples to report rows: each scenario's rounds are combined (median rate, merged
//! latency histograms, CPU and commands per message over all rounds), and its ratio to its
//! baseline is taken: for rates the median of per-round ratios when both ran in the same
//! rounds (so a slow moment hurts both sides of a pair), else the ratio of medians.

use super::catalog::SCENARIOS;
use super::commands::Commands;
use super::figure::{Figure, Scenario};
use super::measure::Sample;
use super::stats::Histogram;
use super::support::median;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(crate) struct Series {
    samples: Vec<Sample>,
    errors: Vec<String>,
    notes: Vec<String>,
    details: Vec<String>,
}

impl Series {
    fn rates(&self) -> Vec<f64> {
        self.samples.iter().map(Sample::rate).collect()
    }

    pub(crate) fn rate(&self) -> Option<f64> {
        median(&self.rates())
    }

    fn latency(&self) -> Histogram {
        let mut all = Histogram::default();
        for sample in &self.samples {
            all.merge(&sample.latency);
        }
        all
    }

    fn messages(&self) -> u64 {
        self.samples.iter().map(|s| s.messages).sum()
    }

    fn bytes_per_msg(&self) -> Option<f64> {
        median(&self.samples.iter().filter_map(|s| s.bytes_per_msg).collect::<Vec<_>>())
    }

    fn figure(&self, figure: Figure) -> Option<f64> {
        match figure {
            Figure::Rate => self.rate(),
            Figure::P50 => self.latency().quantile_us(0.5),
            Figure::P99 => self.latency().quantile_us(0.99),
            Figure::Memory => self.bytes_per_msg(),
            Figure::ClientCpu => self.per_message(|s| Some(s.cpu.as_secs_f64() * 1e6)),
            Figure::RedisCpu => self.per_message(|s| s.redis_cpu.map(|d| d.as_secs_f64() * 1e6)),
        }
    }

    fn commands(&self) -> Option<Commands> {
        let mut total = Commands::default();
        for sample in &self.samples {
            total.add(sample.commands.as_ref()?);
        }
        Some(total)
    }

    fn per_message(&self, of: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        let mut sum = 0.0;
        for sample in &self.samples {
            sum += of(sample)?;
        }
        let messages = self.messages();
        (messages > 0 && !self.samples.is_empty()).then(|| sum / messages as f64)
    }
}

/// Every scenario's samples, errors and notes so far.
#[derive(Debug, Default)]
pub(crate) struct Results {
    series: BTreeMap<&'static str, Series>,
}

impl Results {
    /// Adds one measurement (or its failure) and prints a progress line.
    pub(crate) fn record(&mut self, name: &'static str, result: Result<Sample, String>) {
        let series = self.series.entry(name).or_default();
        match result {
            Ok(sample) => {
                let latency = sample.latency.quantile_us(0.5).map_or(String::new(), |p50| {
                    format!(
                        ", p50 {p50:.0} us, p99 {:.0} us",
                        sample.latency.quantile_us(0.99).unwrap_or(0.0)
                    )
                });
                let memory =
                    sample.bytes_per_msg.map_or(String::new(), |b| format!(", {b:.1} B/msg"));
                println!(
                    "  {name:<24} {:>9} msgs in {:>6.2} s: {:>10.0} msg/s{latency}{memory}",
                    sample.messages,
                    sample.elapsed.as_secs_f64(),
                    sample.rate()
                );
                if let Some(detail) = &sample.detail {
                    println!("  {name:<24} {detail}");
                    series.details.push(detail.clone());
                }
                if let Some(faults) = &sample.faults {
                    println!("  {name:<24} LIBRARY FAULT: {faults}");
                    if !series.notes.contains(faults) {
                        series.notes.push(faults.clone());
                    }
                }
                series.samples.push(sample);
            }
            Err(error) => {
                println!("  {name:<24} FAILED: {error}");
                series.errors.push(error);
            }
        }
    }

    pub(crate) fn note(&mut self, name: &'static str, text: &str) {
        let series = self.series.entry(name).or_default();
        if !series.notes.iter().any(|n| n == text) {
            series.notes.push(text.to_string());
        }
    }

    pub(crate) fn failed(&self, name: &str) -> bool {
        self.series.get(name).is_some_and(|s| !s.errors.is_empty())
    }

    pub(crate) fn rate(&self, name: &str) -> Option<f64> {
        self.series.get(name)?.rate()
    }

    /// A scenario's `figure` over all its rounds (not a ratio).
    pub(crate) fn figure(&self, name: &str, figure: Figure) -> Option<f64> {
        self.series.get(name)?.figure(figure)
    }

    pub(crate) fn commands(&self, name: &str) -> Option<(Commands, u64)> {
        let series = self.series.get(name)?;
        Some((series.commands()?, series.messages()))
    }

    fn ratio(&self, scenario: &Scenario, figure: Figure) -> Option<f64> {
        let mine = self.series.get(scenario.name)?;
        let base = self.series.get(scenario.baseline?)?;
        if figure == Figure::Rate && mine.samples.len() == base.samples.len() {
            let pairs: Vec<f64> =
                mine.rates().iter().zip(base.rates()).map(|(m, b)| m / b).collect();
            return median(&pairs);
        }
        Some(mine.figure(figure)? / base.figure(figure)?)
    }

    /// One row per scenario that ran, in catalog order.
    pub(crate) fn rows(&self) -> Vec<Row> {
        SCENARIOS
            .iter()
            .filter_map(|s| self.series.get(s.name).map(|series| self.row(s, series)))
            .collect()
    }

    fn row(&self, scenario: &Scenario, series: &Series) -> Row {
        let latency = series.latency();
        let has_latency = latency.count() > 0;
        let memory = series.bytes_per_msg();
        let ratio = self.ratio(scenario, scenario.figure);
        let targets: Vec<TargetRow> = scenario
            .targets
            .iter()
            .map(|(figure, goal)| {
                let ratio = self.ratio(scenario, *figure);
                TargetRow {
                    scenario: scenario.name,
                    baseline: scenario.baseline.unwrap_or(""),
                    figure: figure.key(),
                    ratio,
                    goal: goal.text(),
                    met: ratio.map(|r| goal.met(r)),
                }
            })
            .collect();
        let messages = series.messages();
        let commands = series.commands();
        Row {
            name: scenario.name,
            msgs_per_s: if memory.is_some() { None } else { series.rate() },
            p50_us: has_latency.then(|| latency.quantile_us(0.5)).flatten(),
            p99_us: has_latency.then(|| latency.quantile_us(0.99)).flatten(),
            p999_us: has_latency.then(|| latency.quantile_us(0.999)).flatten(),
            cpu_us_per_msg: series.per_message(|s| Some(s.cpu.as_secs_f64() * 1e6)),
            baseline: scenario.baseline.unwrap_or(""),
            ratio,
            ratio_of: scenario.figure.key(),
            target: targets.first().map(|t| t.goal.clone()),
            target_met: if targets.is_empty() {
                None
            } else {
                targets
                    .iter()
                    .map(|t| t.met)
                    .collect::<Option<Vec<bool>>>()
                    .map(|m| m.iter().all(|x| *x))
            },
            latency: if has_latency { scenario.latency } else { "" },
            messages,
            rounds: series.samples.len(),
            mb_per_s: median(
                &series
                    .samples
                    .iter()
                    .map(|s| s.bytes as f64 / s.elapsed.as_secs_f64().max(1e-9) / 1e6)
                    .collect::<Vec<_>>(),
            ),
            bytes_per_msg: memory,
            redis_cpu_us_per_msg: series
                .per_message(|s| s.redis_cpu.map(|d| d.as_secs_f64() * 1e6)),
            round_trips_per_msg: commands
                .as_ref()
                .map(|c| c.round_trips() as f64 / messages.max(1) as f64),
            commands: commands.map(|c| c.breakdown(messages)),
            about: scenario.about,
            notes: series.notes.iter().chain(&series.details).cloned().collect(),
            errors: series.errors.clone(),
            targets,
        }
    }
}

/// One target (issues 7 and 14) and whether this run met it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TargetRow {
    pub(crate) scenario: &'static str,
    pub(crate) baseline: &'static str,
    pub(crate) figure: &'static str,
    pub(crate) ratio: Option<f64>,
    pub(crate) goal: String,
    pub(crate) met: Option<bool>,
}

/// One scenario in the report (and in the JSON).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) name: &'static str,
    pub(crate) msgs_per_s: Option<f64>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) p999_us: Option<f64>,
    pub(crate) cpu_us_per_msg: Option<f64>,
    pub(crate) baseline: &'static str,
    pub(crate) ratio: Option<f64>,
    /// Which figure `ratio` divides.
    pub(crate) ratio_of: &'static str,
    pub(crate) target: Option<String>,
    pub(crate) target_met: Option<bool>,
    /// What the percentiles measure.
    pub(crate) latency: &'static str,
    pub(crate) messages: u64,
    pub(crate) rounds: usize,
    pub(crate) mb_per_s: Option<f64>,
    pub(crate) bytes_per_msg: Option<f64>,
    pub(crate) redis_cpu_us_per_msg: Option<f64>,
    /// Commands the clients sent to Redis per message.
    pub(crate) round_trips_per_msg: Option<f64>,
    /// Every command Redis ran, per message.
    pub(crate) commands: Option<String>,
    pub(crate) about: &'static str,
    pub(crate) notes: Vec<String>,
    pub(crate) errors: Vec<String>,
    #[serde(skip)]
    pub(crate) targets: Vec<TargetRow>,
}
