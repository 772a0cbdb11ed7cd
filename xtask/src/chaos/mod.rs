//! `cargo xtask chaos [--quick] [--only FAULT]... [--occurrences N] [--no-wait-cost]
//! [--report-only] [--trace]`: runs producers and consumers against real Redis deployments while faults
//! are injected, then counts per delivery mode and fault what was pushed, acknowledged,
//! delivered, lost, duplicated and reordered, and how long delivery took to resume. Prints a
//! table, writes `target/chaos.json` (and `target/chaos-wait-cost.json`), and fails when a
//! target of issue 5 is missed (see `report.rs`), unless `--report-only`.
//!
//! Bounded by time and message count: `--quick` (CI) takes about four minutes, the default
//! (local) schedule about ten, both as a release build (a debug build re-runs itself as one).
//! Modules: `schedule` (what runs), `deploy` (Redis processes), `faults` (injection), `connect`
//! (what workers connect with), `workers`, `batched` and `child` (producers and consumers),
//! `service` (the service mode's servers and requesters), `history`, `checker` and `keyed`
//! (what happened and what it means), `report`, `wait_cost`.

mod batched;
mod checker;
mod child;
mod connect;
mod deploy;
mod fault;
mod faults;
mod history;
mod keyed;
mod pace;
mod report;
mod scenario;
mod schedule;
mod service;
mod wait_cost;
mod workers;

use fault::Fault;
use schedule::Plan;
use tokio::time::Instant;

pub(crate) use child::run as worker;

struct Options {
    plan: Plan,
    wait_cost: bool,
    report_only: bool,
    trace: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut options = Options {
        plan: if quick { Plan::quick() } else { Plan::long() },
        wait_cost: true,
        report_only: false,
        trace: false,
    };
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {}
            "--only" => {
                let name = it.next().ok_or("--only needs a fault name")?;
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                only.push(
                    Fault::parse(name)
                        .ok_or(format!("unknown fault {name:?} (known: {})", names.join(", ")))?,
                );
            }
            "--occurrences" => {
                let n = it.next().ok_or("--occurrences needs a number")?;
                options.plan.occurrences =
                    n.parse().map_err(|_| format!("--occurrences: {n:?} is not a number"))?;
            }
            "--no-wait-cost" => options.wait_cost = false,
            "--report-only" => options.report_only = true,
            "--trace" => options.trace = true,
            other => return Err(format!("chaos: unknown option {other:?}")),
        }
    }
    if !only.is_empty() {
        options.plan.faults = only;
    }
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    if busmq_testkit::redis::redis_available().is_none() {
        return Err("chaos needs redis-server (and redis-sentinel's mode of it) on PATH".into());
    }
    if cfg!(debug_assertions) {
        // The workers of every mode share this process: a debug build saturated its CPU, so
        // that an awaited ack took ~7 ms, reliable consumers fell 500-1,400 messages behind
        // their producers, and "recovery" measured that backlog (seconds) instead of the
        // store (tens of milliseconds in a release build).
        return crate::release::rerun_in_release("chaos", args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(run_plan(options))
}

async fn run_plan(options: Options) -> Result<(), String> {
    let plan = &options.plan;
    let started = Instant::now();
    let mut rows = Vec::new();
    for fault in &plan.faults {
        let at = Instant::now();
        let found = scenario::run(*fault, plan, options.trace)
            .await
            .map_err(|e| format!("{}: {e}", fault.name()))?;
        println!("{:<24} {} occurrences in {:.1?}", fault.name(), plan.occurrences, at.elapsed());
        rows.extend(found);
    }
    let costs =
        if options.wait_cost { wait_cost::measure(plan.wait_cost).await? } else { Vec::new() };
    println!(
        "\nchaos ({} schedule, {:.0?})\n{}",
        plan.name,
        started.elapsed(),
        report::table(&rows)
    );
    let target = crate::target_dir();
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    write_json(&target.join("chaos.json"), &rows)?;
    if !costs.is_empty() {
        println!("{}", wait_cost::table(&costs));
        write_json(&target.join("chaos-wait-cost.json"), &costs)?;
    }
    let missed = report::violations(&rows);
    if missed.is_empty() {
        println!("every target met");
        return Ok(());
    }
    let list = missed.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n");
    if options.report_only {
        println!("targets missed (--report-only):\n{list}");
        Ok(())
    } else {
        Err(format!("targets missed:\n{list}"))
    }
}

fn write_json<T: serde::Serialize>(path: &std::path::Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
