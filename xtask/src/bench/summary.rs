//! From samples to report rows: each scenario's rounds are combined (median rate, merged
//! latency histograms, CPU and commands per message over all rounds), and its ratio to its
//! baseline is taken: for rates the median of per-round ratios when both ran in the same
//! rounds (so a slow moment hurts both sides of a pair), else the ratio of medians.

use super::catalog::{SCENARIOS, find};
use super::commands::Commands;
use super::figure::{Figure, Scenario};
use super::measure::Sample;
use super::stats::Histogram;
use super::support::median;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The width of a scenario's name in the progress lines.
const W: usize = super::catalog::NAME_WIDTH;

#[derive(Debug, Default)]
pub(crate) struct Series {
    samples: Vec<Sample>,
    errors: Vec<String>,
    /// Library faults in this row (see `Row::faults`): they fail the run.
    faults: Vec<String>,
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

    /// How busy a side was while the rounds ran: its CPU time over their wall time, as a share
    /// of one CPU. Near 1 under `--pin split`, that side bounded the row; both sides well below
    /// it, the row waited on round trips instead (then a CPU floor says little about it).
    fn busy(&self, of: impl Fn(&Sample) -> Option<Duration>) -> Option<f64> {
        let (mut cpu, mut wall) = (0.0, 0.0);
        for sample in &self.samples {
            cpu += of(sample)?.as_secs_f64();
            wall += sample.elapsed.as_secs_f64();
        }
        (wall > 0.0).then(|| cpu / wall)
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
                    "  {name:<W$} {:>9} msgs in {:>6.2} s: {:>10.0} msg/s{latency}{memory}",
                    sample.messages,
                    sample.elapsed.as_secs_f64(),
                    sample.rate()
                );
                if let Some(detail) = &sample.detail {
                    println!("  {name:<W$} {detail}");
                    series.details.push(detail.clone());
                }
                if let Some(faults) = &sample.faults {
                    println!("  {name:<W$} LIBRARY FAULT: {faults}");
                    if !series.faults.contains(faults) {
                        series.faults.push(faults.clone());
                    }
                }
                series.samples.push(sample);
            }
            Err(error) => {
                println!("  {name:<W$} FAILED: {error}");
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
                let floor = scenario.floor.and_then(find);
                let floor_ratio = floor.and_then(|floor| self.ratio(floor, *figure));
                TargetRow {
                    scenario: scenario.name,
                    baseline: scenario.baseline.unwrap_or(""),
                    figure: figure.key(),
                    ratio,
                    goal: goal.text(),
                    met: ratio.map(|r| goal.met(r)),
                    floor: scenario.floor.unwrap_or(""),
                    floor_ratio,
                    floor_met: floor_ratio.map(|r| goal.met(r)),
                    floor_beaten: ratio
                        .zip(floor_ratio)
                        .map(|(mine, floor)| goal.better(mine, floor)),
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
            cpu_us_per_msg: series.figure(Figure::ClientCpu),
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
            redis_cpu_us_per_msg: series.figure(Figure::RedisCpu),
            client_busy: series.busy(|s| Some(s.cpu)),
            redis_busy: series.busy(|s| s.redis_cpu),
            round_trips_per_msg: commands
                .as_ref()
                .map(|c| c.round_trips() as f64 / messages.max(1) as f64),
            commands: commands.map(|c| c.breakdown(messages)),
            about: scenario.about,
            notes: series.notes.iter().chain(&series.details).cloned().collect(),
            errors: series.errors.clone(),
            faults: series.faults.clone(),
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
    /// The scenario's floor (see `Scenario::floor`; empty without one), its ratio for the same
    /// figure to the same baseline, whether it meets the goal, and whether busmq did better
    /// than it (then it bounds nothing in this run).
    pub(crate) floor: &'static str,
    pub(crate) floor_ratio: Option<f64>,
    pub(crate) floor_met: Option<bool>,
    pub(crate) floor_beaten: Option<bool>,
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
    /// The share of one CPU the client and redis-server were busy during the rounds (see
    /// `Series::busy`).
    pub(crate) client_busy: Option<f64>,
    pub(crate) redis_busy: Option<f64>,
    /// Commands the clients sent to Redis per message.
    pub(crate) round_trips_per_msg: Option<f64>,
    /// Every command Redis ran, per message.
    pub(crate) commands: Option<String>,
    pub(crate) about: &'static str,
    pub(crate) notes: Vec<String>,
    pub(crate) errors: Vec<String>,
    /// Library faults the row saw: messages out of order, after a gap or without the bench's
    /// header, or delayed messages scheduled too slowly to measure their lateness.
    pub(crate) faults: Vec<String>,
    #[serde(skip)]
    pub(crate) targets: Vec<TargetRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One round of `messages` in a second, with `cpu_ms` of client CPU.
    fn round(messages: u64, cpu_ms: u64) -> Sample {
        Sample {
            messages,
            elapsed: Duration::from_secs(1),
            cpu: Duration::from_millis(cpu_ms),
            ..Sample::default()
        }
    }

    fn queue_targets(floor: (u64, u64)) -> Vec<TargetRow> {
        let mut results = Results::default();
        results.record("baseline-list", Ok(round(1_000, 100)));
        results.record("baseline-list-ids", Ok(round(floor.0, floor.1)));
        results.record("queue-1x1", Ok(round(500, 200)));
        let row = results.rows().into_iter().find(|r| r.name == "queue-1x1").unwrap();
        row.targets
    }

    #[test]
    fn each_target_carries_its_floor_and_whether_busmq_beat_it() {
        // The floor moves 0.6x with 1.7x the CPU per message: it misses both targets, and
        // busmq (0.5x, 4x) does worse than it.
        let targets = queue_targets((600, 102));
        assert_eq!(targets.len(), 2);
        for t in &targets {
            assert_eq!(t.floor, "baseline-list-ids");
            assert_eq!(
                (t.met, t.floor_met, t.floor_beaten),
                (Some(false), Some(false), Some(false))
            );
        }
        assert!((targets[0].floor_ratio.unwrap() - 0.6).abs() < 1e-9);
        assert!((targets[1].floor_ratio.unwrap() - 1.7).abs() < 1e-9);
        // A floor within both targets: busmq's misses are its own.
        let targets = queue_targets((900, 120));
        assert!(targets.iter().all(|t| t.met == Some(false) && t.floor_met == Some(true)));
        // A floor busmq did better than (0.4x, 5x): it bounds nothing in this run.
        let targets = queue_targets((400, 200));
        assert!(targets.iter().all(|t| t.floor_met == Some(false) && t.floor_beaten == Some(true)));
    }

    #[test]
    fn a_row_says_how_busy_each_side_was() {
        let mut results = Results::default();
        let mut a = round(1_000, 450);
        a.redis_cpu = Some(Duration::from_millis(200));
        let mut b = round(1_000, 950);
        b.elapsed = Duration::from_secs(3);
        b.redis_cpu = Some(Duration::from_millis(400));
        results.record("queue-1x1", Ok(a));
        results.record("queue-1x1", Ok(b));
        let row = results.rows().into_iter().find(|r| r.name == "queue-1x1").unwrap();
        // CPU time over wall time across both rounds, not a mean of the rounds' shares.
        assert!((row.client_busy.unwrap() - 0.35).abs() < 1e-9);
        assert!((row.redis_busy.unwrap() - 0.15).abs() < 1e-9);
        // A round without Redis's figure leaves Redis's share unknown.
        let mut results = Results::default();
        results.record("queue-1x1", Ok(round(1_000, 500)));
        let row = results.rows().into_iter().find(|r| r.name == "queue-1x1").unwrap();
        assert_eq!((row.client_busy, row.redis_busy), (Some(0.5), None));
    }

    #[test]
    fn a_library_fault_fails_the_run_and_a_clean_run_passes() {
        let mut results = Results::default();
        results.record("queue-1x1", Ok(round(1_000, 100)));
        assert_eq!(super::super::report::verdict(&results.rows()), Ok(()));
        let mut faulty = round(1_000, 100);
        faulty.faults = Some("3 messages out of order (or after a gap)".into());
        results.record("queue-1x1", Ok(faulty));
        results.record("reliable-1", Err("hung".into()));
        let rows = results.rows();
        let row = rows.iter().find(|r| r.name == "queue-1x1").unwrap();
        assert_eq!(row.faults, ["3 messages out of order (or after a gap)"]);
        assert!(row.notes.is_empty(), "a fault is not a note: {:?}", row.notes);
        let error = super::super::report::verdict(&rows).unwrap_err();
        assert_eq!(
            error,
            "scenarios failed: reliable-1; \
             library faults: queue-1x1 (3 messages out of order (or after a gap))"
        );
    }

    #[test]
    fn a_target_without_a_floor_says_nothing_of_one() {
        let mut results = Results::default();
        results.record("reliable-1", Ok(round(1_000, 100)));
        results.record("reliable-4", Ok(round(1_100, 100)));
        let row = results.rows().into_iter().find(|r| r.name == "reliable-4").unwrap();
        let t = &row.targets[0];
        assert_eq!((t.floor, t.floor_ratio, t.floor_met, t.met), ("", None, None, Some(true)));
        assert_eq!(t.floor_beaten, None);
    }
}
