//! `cargo xtask bench`: starts its own redis-server, pins it and this process to CPUs, runs
//! every scenario of issues 7 and 14 with its raw baseline in the same run, prints a table and
//! writes JSON (default `target/bench.json`). A debug build re-runs itself as a release build.

mod backend;
mod baseline;
mod catalog;
mod channel;
mod cluster;
mod commands;
mod consume;
mod cpu;
mod dedupe;
mod delayed;
mod figure;
mod floor;
mod footprint;
mod idfloor;
mod keyorder;
mod large;
mod listfloor;
mod lowrate;
mod measure;
mod memory;
mod paced;
mod payload;
mod pin;
mod priority;
mod produce;
mod queue;
mod receiver;
mod reliable;
mod replay;
mod report;
mod server;
mod service;
mod stats;
mod summary;
mod support;
mod throughput;

use backend::Backend;
use pin::{Placement, Plan};
use report::Report;
use server::Server;
use std::path::PathBuf;
use std::time::Instant;
use summary::Results;

const USAGE: &str = "usage: cargo xtask bench [--quick] [--json PATH] [--pin split|same|none] [--only SCENARIO[,SCENARIO..]] [--list]
      run the benchmark (release build) against its own redis-server, print a table and
      write target/bench.json; --quick for a short run";

#[derive(Debug)]
struct Options {
    quick: bool,
    json: PathBuf,
    pin: Placement,
    only: Option<String>,
    list: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        json: crate::target_dir().join("bench.json"),
        pin: Placement::Split,
        only: None,
        list: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or(format!("{arg} needs {what}"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--json" => options.json = value("a path")?.into(),
            "--pin" => options.pin = Placement::parse(&value("split, same or none")?)?,
            "--only" => {
                let name = value("a scenario name")?;
                catalog::needed(&name)?;
                options.only = Some(name);
            }
            "--list" => options.list = true,
            other => return Err(format!("bench: unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// How long each part runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// Seconds per measured round of a throughput scenario.
    pub(crate) secs: f64,
    /// Rounds of the interleaved groups.
    pub(crate) rounds: usize,
    /// Measured round trips of each ping-pong scenario.
    pub(crate) rtt: u64,
    /// Seconds of each paced run.
    pub(crate) paced_secs: f64,
    /// Timed reads at each replay position.
    pub(crate) replay_reads: u64,
    /// Messages of the memory footprint scenarios.
    pub(crate) footprint: u64,
}

const FULL: Budget = Budget {
    secs: 2.0,
    rounds: 3,
    rtt: 10_000,
    paced_secs: 3.0,
    replay_reads: 300,
    footprint: 1_000_000,
};
const QUICK: Budget = Budget {
    secs: 0.5,
    rounds: 2,
    rtt: 4_000,
    paced_secs: 1.0,
    replay_reads: 100,
    footprint: 200_000,
};

/// What every scenario gets: the server, the budget and the selection.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) server: Server,
    /// The Redis Cluster of cluster-100 (or why there is none).
    cluster: Result<cluster::BenchCluster, String>,
    pub(crate) budget: Budget,
    selected: Option<Vec<&'static str>>,
}

impl Env {
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.selected.as_ref().is_none_or(|s| s.contains(&name))
    }

    pub(crate) fn redis(&self) -> Backend {
        Backend::Redis(self.server.url())
    }

    pub(crate) fn cluster(&self) -> Result<Backend, String> {
        self.cluster.as_ref().map(|c| Backend::Redis(c.url())).map_err(Clone::clone)
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    if options.list {
        for s in catalog::SCENARIOS {
            println!("{:<w$} {}", s.name, s.about, w = catalog::NAME_WIDTH);
        }
        return Ok(());
    }
    if cfg!(debug_assertions) {
        // A debug build measures nothing worth having.
        return crate::release::rerun_in_release("bench", args);
    }
    let plan = Plan::new(options.pin)?;
    // Before the runtime exists, so that every thread it starts inherits the CPU mask.
    let pinned = plan.pin_client();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.client_threads())
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let report = runtime.block_on(async move {
        // The whole bench runs on the runtime's workers, not on this blocked main thread.
        tokio::spawn(bench(options.quick, options.only, plan, pinned))
            .await
            .map_err(|e| format!("the bench panicked: {e}"))?
    })?;
    report::print(&report);
    report::write(&report, &options.json)?;
    println!("wrote {}", options.json.display());
    report::verdict(&report.scenarios)
}

async fn bench(
    quick: bool,
    only: Option<String>,
    plan: Plan,
    pinned: Result<(), String>,
) -> Result<Report, String> {
    let started = Instant::now();
    let budget = if quick { QUICK } else { FULL };
    let selected = only.as_deref().map(catalog::needed).transpose()?;
    let server = Server::start().await?;
    let redis_pid = server.pid().ok_or("redis-server has no pid")?;
    let pinning = pinned.and_then(|()| plan.pin_redis(redis_pid));
    let redis_version = server.version().await?;
    let wants_cluster = selected.as_ref().is_none_or(|s| s.contains(&"cluster-100"));
    let cluster = if wants_cluster {
        cluster::BenchCluster::start(&plan).await
    } else {
        Err("not selected".to_string())
    };
    if let (true, Err(error)) = (wants_cluster, &cluster) {
        println!("cluster-100: no cluster: {error}");
    }
    let env = Env { server, budget, selected, cluster };
    println!(
        "busmq bench ({}), redis {redis_version}, {}, client CPU from {}",
        if quick { "quick" } else { "full" },
        plan.describe(),
        cpu::source()
    );
    if let Err(error) = &pinning {
        println!("pinning failed, running unpinned: {error}");
    }
    let mut results = Results::default();
    println!("throughput (interleaved rounds):");
    throughput::run(&env, &mut results).await;
    if env.wants(priority::MIXED) || env.wants(priority::PLAIN) {
        println!("priorities (fill, then drain):");
        priority::run(&env, &mut results).await;
    }
    println!("round trips:");
    channel::run(&env, &mut results).await;
    println!("services:");
    service::run(&env, &mut results).await;
    if env.wants("latency-paced") || env.wants("baseline-paced") {
        println!("paced:");
        paced::run(&env, &mut results).await;
    }
    println!("low rate and runtime variants:");
    lowrate::run(&env, &mut results).await;
    if env.wants("dedupe-push") || env.wants("dedupe-push/plain") {
        println!("producer dedupe, paced:");
        dedupe::run(&env, &mut results).await;
    }
    if env.wants("delayed-lateness") {
        println!("delayed messages:");
        delayed::run(&env, &mut results).await;
    }
    println!("large messages:");
    large::run(&env, &mut results).await;
    println!("in memory:");
    memory::run(&env, &mut results).await;
    println!("replay:");
    replay::run(&env, &mut results).await;
    println!("memory footprint:");
    footprint::run(&env, &mut results).await;
    // Checked at the end as well, so that threads started during the run are covered.
    let (placement, pinning) = match pinning.and_then(|()| plan.verify(redis_pid)) {
        Ok(()) if plan.placement == Placement::Free => (plan.describe(), "not pinned".to_string()),
        Ok(()) => (
            plan.describe(),
            "taskset -a -p -c; every thread's Cpus_allowed_list checked".to_string(),
        ),
        Err(error) => (
            format!("unknown: --pin {} was asked for but failed", plan.placement.name()),
            format!("FAILED: {error}"),
        ),
    };
    let scenarios = results.rows();
    let targets = scenarios.iter().flat_map(|r| r.targets.clone()).collect();
    let queue_1x1_commands = [
        "baseline-list",
        "queue-1x1",
        "queue-1x1/push_all",
        "baseline-pingpong",
        "baseline-pingpong-scripted",
        "channel-rtt",
        "service-rtt",
        "service-throughput",
        "baseline-paced-2k",
        "paced-2k",
    ]
    .iter()
    .filter_map(|name| {
        let (commands, messages) = results.commands(name)?;
        Some(format!(
            "{name}: {:.4} round trips per message over {messages} messages; {}",
            commands.round_trips() as f64 / messages.max(1) as f64,
            commands.breakdown(messages)
        ))
    })
    .collect();
    Ok(Report {
        scenarios,
        targets,
        placement,
        pinning,
        redis_version,
        cpu_source: cpu::source(),
        latency_source: "end to end: send timestamp carried in the message, monotonic clock of this process, log-bucket histogram (<0.4% error); round trip and read: timed per operation",
        round_trips_source: "INFO commandstats deltas: EVALSHA, SCRIPT, PING and other commands Lua scripts never send, per message",
        quick,
        rounds: budget.rounds,
        seconds: started.elapsed().as_secs_f64(),
        queue_1x1_commands,
    })
}
