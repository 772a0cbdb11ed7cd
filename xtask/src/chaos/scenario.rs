//! One scenario: a fresh deployment, every mode's workload side by side, the fault injected
//! `occurrences` times with traffic in between, then a drain and the checker's figures.

use super::checker::{check, recovery_per_queue};
use super::connect::Settings;
use super::deploy::Deployment;
use super::fault::Fault;
use super::faults;
use super::report::Row;
use super::schedule::{Plan, modes};
use super::workers::ModeRun;
use std::time::Duration;
use tokio::time::Instant;

/// Runs `fault` under `plan` and returns one row per mode.
pub(crate) async fn run(fault: Fault, plan: &Plan, trace: bool) -> Result<Vec<Row>, String> {
    let mut deployment = if fault.needs_sentinel() {
        Deployment::sentinel().await?
    } else if fault.needs_cluster() {
        Deployment::cluster().await?
    } else {
        Deployment::plain().await?
    };
    let start = Instant::now();
    let settings = Settings {
        url: deployment.url(),
        namespace: format!("chaos-{:08x}", busmq_core::support::random_u64() as u32),
        visibility: plan.visibility,
        trace,
    };
    let mut runs = Vec::new();
    for mode in modes(fault) {
        let run = ModeRun::start(
            mode,
            fault.name(),
            settings.clone(),
            plan,
            start,
            fault.child_consumers(),
        )
        .await?;
        runs.push(run);
    }
    tokio::time::sleep(plan.warmup).await;
    for n in 0..plan.occurrences {
        let (window, killed) =
            faults::inject(fault, n, &mut deployment, &mut runs, plan, start).await?;
        if trace {
            let node = killed.map(|n| format!(" (node {n} killed)")).unwrap_or_default();
            println!(
                "  [{:>7} ms] {} from {} ms{node}",
                window.end_ms,
                fault.name(),
                window.start_ms
            );
        }
        for run in &runs {
            run.rec.fault(window);
        }
        faults::repair(&mut deployment, killed).await?;
        tokio::time::sleep(plan.gap).await;
    }
    tokio::time::sleep(plan.settle).await;
    for run in &mut runs {
        run.stop_producers().await;
    }
    drain(&runs, plan).await;
    if trace {
        trace_windows(&runs);
    }
    let mut rows = Vec::new();
    for run in runs {
        let verdict = check(&run.rec.snapshot());
        if let Some(errors) = run.service_errors().filter(|e| !e.is_empty()) {
            println!("  {} under {}: requests that failed: {errors}", run.mode.name, fault.name());
        }
        rows.push(Row::new(run.mode.name, fault.name(), &verdict, run.rec.notes()));
        run.shutdown().await;
    }
    Ok(rows)
}

/// Waits until every acknowledged push was delivered (and a moment more, for redeliveries), or
/// until nothing has been delivered for longer than a visibility timeout, or `plan.drain`.
async fn drain(runs: &[ModeRun], plan: &Plan) {
    let deadline = Instant::now() + plan.drain;
    let quiet_limit = plan.visibility + Duration::from_secs(2);
    let count = || runs.iter().map(|r| r.rec.delivery_count()).sum::<usize>();
    let mut last = count();
    let mut changed = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = count();
        if now != last {
            last = now;
            changed = Instant::now();
        }
        let quiet = changed.elapsed();
        let complete = runs.iter().all(|r| r.rec.all_acked_delivered());
        if (complete && quiet > Duration::from_secs(1)) || quiet > quiet_limit {
            return;
        }
        if Instant::now() > deadline {
            return;
        }
    }
}

/// With `--trace`: how many acknowledged pushes each fault window saw, per mode (a push
/// acknowledged while replicas are cut off is what a failover can lose), and each queue's
/// recovery from it (the report gives only the median and the slowest over the occurrences).
fn trace_windows(runs: &[ModeRun]) {
    for run in runs {
        let history = run.rec.snapshot();
        for w in &history.faults {
            let during = history
                .pushes
                .iter()
                .filter(|p| p.acked && p.started_ms >= w.start_ms && p.started_ms <= w.end_ms)
                .count();
            let recovered: Vec<String> = recovery_per_queue(&history, w)
                .into_iter()
                .map(|(queue, r)| match r {
                    Some(ms) => format!("queue {queue} {ms} ms"),
                    None => format!("queue {queue} stalled"),
                })
                .collect();
            println!(
                "  {}: {during} acknowledged pushes issued during the fault {}..{} ms; recovery: {}",
                run.mode.name,
                w.start_ms,
                w.end_ms,
                recovered.join(", ")
            );
        }
    }
}
