//! The report: a table on the terminal (every figure, the ratio to the baseline and whether the
//! target is met), the targets of issues 7 and 14, the commands per message of queue-1x1, and the same
//! in JSON.

use super::summary::{Row, TargetRow};
use serde::Serialize;
use std::path::Path;

/// The JSON document.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) scenarios: Vec<Row>,
    pub(crate) targets: Vec<TargetRow>,
    pub(crate) placement: String,
    pub(crate) pinning: String,
    pub(crate) redis_version: String,
    pub(crate) cpu_source: &'static str,
    pub(crate) latency_source: &'static str,
    pub(crate) round_trips_source: &'static str,
    pub(crate) quick: bool,
    pub(crate) rounds: usize,
    pub(crate) seconds: f64,
    /// Round trips per message of queue-1x1 (push and push_all), channel-rtt (per round trip)
    /// and paced-2k, and of their raw baselines, with every command Redis ran per message.
    pub(crate) queue_1x1_commands: Vec<String>,
}

fn num(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "-".into(),
    }
}

fn met(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "",
    }
}

/// The width of a scenario's name in the tables.
const W: usize = super::catalog::NAME_WIDTH;

/// What a row's ratio compares with: "baseline (figure)", or nothing for a baseline.
fn against(row: &Row) -> String {
    if row.baseline.is_empty() {
        String::new()
    } else {
        format!("{} ({})", row.baseline, row.ratio_of)
    }
}

pub(crate) fn print(report: &Report) {
    let widest = report.scenarios.iter().map(|r| against(r).len()).max().unwrap_or(0);
    let a = widest.max("ratio to baseline (figure)".len());
    println!(
        "\n{:<w$} {:>10} {:>8} {:>8} {:>9} {:>7} {:>7} {:>4} {:>4} {:>7}  {:<a$} {:>6} {:>8} {:>4}",
        "scenario",
        "msgs/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "cpu us",
        "srv us",
        "cli",
        "srv",
        "rt/msg",
        "ratio to baseline (figure)",
        "ratio",
        "target",
        "met",
        w = W,
    );
    for row in &report.scenarios {
        println!(
            "{:<w$} {:>10} {:>8} {:>8} {:>9} {:>7} {:>7} {:>4} {:>4} {:>7}  {:<a$} {:>6} {:>8} {:>4}",
            row.name,
            num(row.msgs_per_s, 0),
            num(row.p50_us, 0),
            num(row.p99_us, 0),
            num(row.p999_us, 0),
            num(row.cpu_us_per_msg, 2),
            num(row.redis_cpu_us_per_msg, 2),
            num(row.client_busy, 2),
            num(row.redis_busy, 2),
            num(row.round_trips_per_msg, 3),
            against(row),
            num(row.ratio, 2),
            row.target.as_deref().unwrap_or(""),
            met(row.target_met),
            w = W,
        );
    }
    println!(
        "\ncpu us = client CPU per message, srv us = redis-server CPU per message, cli and srv = \
         the share of one CPU the client and redis-server were busy during the row (near 1 under \
         --pin split: that side was the limit; both well below 1: round trips were, and a CPU \
         floor says little about the row), rt/msg = commands the clients sent per message \
         (round trips)"
    );
    for row in report.scenarios.iter().filter(|r| r.mb_per_s.is_some() && r.name.contains("large"))
    {
        println!("{:<W$} {:>8} MB/s", row.name, num(row.mb_per_s, 1));
    }
    for row in report.scenarios.iter().filter(|r| r.bytes_per_msg.is_some()) {
        println!(
            "{:<W$} {:>8} bytes of used_memory per message",
            row.name,
            num(row.bytes_per_msg, 1)
        );
    }
    println!("\ntargets (issues 7 and 14):");
    for target in &report.targets {
        let ratio = num(target.floor_ratio, 2);
        let floor = match (target.floor, target.floor_met, target.floor_beaten) {
            ("", ..) | (_, None, _) => String::new(),
            (name, _, Some(true)) => format!("; floor {name} {ratio}, beaten: no bound here"),
            (name, Some(false), _) => format!("; floor {name} {ratio} misses it too"),
            (name, Some(true), _) => format!("; floor {name} {ratio} meets it"),
        };
        println!(
            "  {:<W$} {:<20} / {:<W$} = {:>6}  {:<8} {}{floor}",
            target.scenario,
            target.figure,
            target.baseline,
            num(target.ratio, 2),
            target.goal,
            match target.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            }
        );
    }
    println!("\nround trips per message (INFO commandstats deltas over the measured rounds):");
    for line in &report.queue_1x1_commands {
        println!("  {line}");
    }
    let problems: Vec<&Row> = report
        .scenarios
        .iter()
        .filter(|r| !r.errors.is_empty() || !r.faults.is_empty() || !r.notes.is_empty())
        .collect();
    if !problems.is_empty() {
        println!("\nnotes and failures:");
        for row in problems {
            for note in &row.notes {
                println!("  {}: {note}", row.name);
            }
            for fault in &row.faults {
                println!("  {}: LIBRARY FAULT: {fault}", row.name);
            }
            for error in &row.errors {
                println!("  {}: FAILED: {error}", row.name);
            }
        }
    }
    println!(
        "\nplacement: {} ({}); redis {}; client CPU from {}; {:.0} s",
        report.placement, report.pinning, report.redis_version, report.cpu_source, report.seconds
    );
}

/// How the run ends: an error names the rows that failed to run and those with library faults
/// (see `Row::faults`). A fault fails the run however fast the row was: its figures measure a
/// library that did not do what the SPEC says.
pub(crate) fn verdict(rows: &[Row]) -> Result<(), String> {
    let failed: Vec<&str> = rows.iter().filter(|r| !r.errors.is_empty()).map(|r| r.name).collect();
    let faulty: Vec<String> = rows
        .iter()
        .filter(|r| !r.faults.is_empty())
        .map(|r| format!("{} ({})", r.name, r.faults.join("; ")))
        .collect();
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!("scenarios failed: {}", failed.join(", ")));
    }
    if !faulty.is_empty() {
        parts.push(format!("library faults: {}", faulty.join(", ")));
    }
    if parts.is_empty() { Ok(()) } else { Err(parts.join("; ")) }
}

pub(crate) fn write(report: &Report, path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(path, json).map_err(|e| format!("writing {}: {e}", path.display()))
}
