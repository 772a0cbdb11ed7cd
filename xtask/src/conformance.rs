//! `cargo xtask conformance`: runs every conformance case against every backend, prints a table
//! (backend, passed, failed, skipped) and writes the same to `target/conformance.json`.

use busmq_testkit::{Backend, Case, FnBackend, SharedServers, all_cases, run_case};
use serde::Serialize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

#[derive(Serialize)]
struct Row {
    backend: String,
    passed: usize,
    failed: usize,
    skipped: usize,
    /// The cases that passed.
    cases: Vec<String>,
    failed_cases: Vec<String>,
}

struct Options {
    only: Option<String>,
    jobs: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options { only: None, jobs: 4 };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--only" => {
                options.only = Some(it.next().ok_or("--only needs a backend name")?.clone())
            }
            "--jobs" => {
                let n = it.next().ok_or("--jobs needs a number")?;
                options.jobs = n.parse().map_err(|_| format!("--jobs: {n:?} is not a number"))?;
            }
            other => return Err(format!("conformance: unknown option {other:?}")),
        }
    }
    Ok(options)
}

fn backends() -> Vec<Arc<dyn Backend>> {
    static SINGLE: OnceLock<Option<SharedServers>> = OnceLock::new();
    static SHARDED: OnceLock<Option<SharedServers>> = OnceLock::new();
    let memory = busmq_memory::Memory::new();
    vec![
        Arc::new(FnBackend::new("memory", true, move || Arc::new(memory.store()))),
        redis("redis", SharedServers::get(1, &SINGLE)),
        redis("redis-sharded-3", SharedServers::get(3, &SHARDED)),
    ]
}

fn redis(name: &str, servers: Option<&'static SharedServers>) -> Arc<dyn Backend> {
    let missing = servers.is_none().then(|| "redis-server is not installed".to_string());
    let backend = FnBackend::new(name, false, move || {
        let urls = servers.expect("available").urls().to_vec();
        Arc::new(busmq_redis::RedisStore::from_urls(urls).expect("valid urls")) as _
    });
    Arc::new(backend.unavailable_because(missing))
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let cases = all_cases();
    let mut rows = Vec::new();
    for backend in backends() {
        if options.only.as_ref().is_some_and(|only| *only != backend.name()) {
            continue;
        }
        let started = Instant::now();
        rows.push(run_backend(backend, &cases, options.jobs.max(1)));
        println!(
            "{:<18} {:>4} cases in {:.1?}",
            rows.last().map_or("", |r: &Row| &r.backend),
            cases.len(),
            started.elapsed()
        );
    }
    println!("\n{:<18} {:>7} {:>7} {:>8}", "backend", "passed", "failed", "skipped");
    for row in &rows {
        println!("{:<18} {:>7} {:>7} {:>8}", row.backend, row.passed, row.failed, row.skipped);
        for name in &row.failed_cases {
            println!("    failed: {name}");
        }
    }
    let path = crate::target_dir().join("conformance.json");
    std::fs::create_dir_all(path.parent().expect("target dir")).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("\nwrote {}", path.display());
    if rows.iter().any(|r| r.failed > 0) {
        return Err("some conformance cases failed".into());
    }
    Ok(())
}

/// Runs the cases on `jobs` threads, each case on its own single-threaded runtime (so that a
/// case may pause the clock), catching panics as failures.
fn run_backend(backend: Arc<dyn Backend>, cases: &[Case], jobs: usize) -> Row {
    if let Some(reason) = backend.unavailable() {
        println!("{}: skipped ({reason})", backend.name());
        return Row {
            backend: backend.name(),
            passed: 0,
            failed: 0,
            skipped: cases.len(),
            cases: Vec::new(),
            failed_cases: Vec::new(),
        };
    }
    let queue = Arc::new(Mutex::new(cases.to_vec()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (queue, results, backend) = (queue.clone(), results.clone(), backend.clone());
            std::thread::spawn(move || {
                loop {
                    let Some(case) = queue.lock().expect("queue").pop() else {
                        return;
                    };
                    let backend = backend.clone();
                    let outcome = std::thread::spawn(move || {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("runtime");
                        runtime.block_on(run_case(&*backend, case.name, case.run));
                    })
                    .join();
                    results.lock().expect("results").push((case.name, outcome.is_ok()));
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let mut results = std::mem::take(&mut *results.lock().expect("results"));
    results.sort_unstable();
    let cases: Vec<String> =
        results.iter().filter(|(_, ok)| *ok).map(|(n, _)| n.to_string()).collect();
    let failed_cases: Vec<String> =
        results.iter().filter(|(_, ok)| !*ok).map(|(n, _)| n.to_string()).collect();
    Row {
        backend: backend.name(),
        passed: cases.len(),
        failed: failed_cases.len(),
        skipped: 0,
        cases,
        failed_cases,
    }
}
