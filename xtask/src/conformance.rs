//! `cargo xtask conformance`: runs every conformance case against every backend, prints a table
//! (backend, passed, failed, skipped) and writes the same to `target/conformance.json`.
//!
//! `redis-acl` runs the cases as a least-privilege ACL user (see `conformance/acl.rs`);
//! `valkey` and `valkey-cluster` run them against `valkey-server` (see `conformance/valkey.rs`);
//! `redis-restricted` against a server without `RENAME` and `SORT` (see
//! `conformance/restricted.rs`); `redis-tls` over mutual TLS with a verified server certificate
//! (see `conformance/tls.rs`).
//!
//! `--docker` adds Redis in containers started by testcontainers (`redis-docker`, one container,
//! and `redis-docker-sharded-3`), from `--image NAME`, else `redis:7-alpine` when the engine has
//! it, else an image built from the local `redis-server` (no registry needed).

mod acl;
mod restricted;
mod tls;
mod valkey;

#[cfg(feature = "docker")]
use busmq_testkit::docker::{self, DockerServers};
use busmq_testkit::{Backend, Case, FnBackend, SharedCluster, SharedServers, all_cases, run_case};
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
    /// The image of a Docker row.
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
}

/// Property-model sequences per model on the Redis rows: each runs in real time over the
/// network, so they get far fewer than memory (which follows tokio's paused clock).
const REDIS_MODEL_CASES: u32 = 8;

/// Wide enough for `redis-docker-sharded-3`.
const NAME_WIDTH: usize = 24;

/// A Docker row: its containers live (and are removed on drop) inside `logs`.
struct DockerRow {
    name: &'static str,
    urls: Vec<String>,
    image: String,
    logs: Box<dyn Fn() -> String>,
}

/// Every row `--only` may name.
const ROWS: &[&str] = &[
    "memory",
    "redis",
    "redis-sharded-3",
    "redis-cluster",
    "redis-acl",
    "redis-restricted",
    "valkey",
    "valkey-cluster",
    tls::ROW,
    "redis-docker",
    "redis-docker-sharded-3",
];

struct Options {
    /// The rows to run (`--only a,b`); `None`: every row.
    only: Option<Vec<String>>,
    jobs: usize,
    docker: bool,
    image: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options { only: None, jobs: 4, docker: false, image: None };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--only" => {
                let list = it.next().ok_or("--only needs a row name")?;
                let mut names = Vec::new();
                for name in list.split(',') {
                    if !ROWS.contains(&name) {
                        return Err(format!(
                            "--only: no row {name:?}; the rows are: {}",
                            ROWS.join(", ")
                        ));
                    }
                    names.push(name.to_string());
                }
                options.only.get_or_insert_with(Vec::new).extend(names);
            }
            "--jobs" => {
                let n = it.next().ok_or("--jobs needs a number")?;
                options.jobs = n.parse().map_err(|_| format!("--jobs: {n:?} is not a number"))?;
            }
            "--docker" => options.docker = true,
            "--image" => {
                options.image = Some(it.next().ok_or("--image needs an image name")?.clone());
                options.docker = true;
            }
            other => return Err(format!("conformance: unknown option {other:?}")),
        }
    }
    Ok(options)
}

impl Options {
    fn wants(&self, row: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|name| name == row))
    }
}

fn backends(docker: &[DockerRow], options: &Options) -> Vec<Arc<dyn Backend>> {
    static SINGLE: OnceLock<Option<SharedServers>> = OnceLock::new();
    static SHARDED: OnceLock<Option<SharedServers>> = OnceLock::new();
    // One Memory per worker thread, not one for the whole run: each case runs on its own runtime
    // with its own paused clock, and a Memory shared by cases running at the same time swept
    // every queue with whichever case's clock had run furthest ahead, expiring the queues and
    // leases of the others (cases then waited for messages that were gone). A thread runs one
    // case at a time, and every store of a case is made on the case's thread.
    thread_local! {
        static MEMORY: busmq_memory::Memory = busmq_memory::Memory::new();
    }
    let memory = || Arc::new(MEMORY.with(busmq_memory::Memory::store)) as _;
    let mut backends = vec![
        Arc::new(FnBackend::new("memory", memory).paused_clock()) as _,
        redis("redis", SharedServers::get(1, &SINGLE)),
        redis("redis-sharded-3", SharedServers::get(3, &SHARDED)),
    ];
    // Six processes: started only when the row runs.
    if options.wants("redis-cluster") {
        backends.push(cluster());
    }
    if options.wants("redis-acl") {
        backends.push(acl::backend(REDIS_MODEL_CASES));
    }
    if options.wants(restricted::ROW) {
        backends.push(restricted::backend(REDIS_MODEL_CASES));
    }
    if options.wants(valkey::ROW) {
        backends.push(valkey::backend(REDIS_MODEL_CASES));
    }
    if options.wants(valkey::CLUSTER_ROW) {
        backends.push(valkey::cluster(REDIS_MODEL_CASES));
    }
    if options.wants(tls::ROW) {
        backends.push(tls::backend(REDIS_MODEL_CASES));
    }
    for row in docker {
        let urls = row.urls.clone();
        let backend = FnBackend::new(row.name, move || {
            Arc::new(busmq_redis::RedisStore::from_urls(urls.clone()).expect("valid urls")) as _
        });
        backends.push(Arc::new(backend.model_cases(REDIS_MODEL_CASES)));
    }
    backends
}

/// The Docker rows and their containers (removed when the list is dropped, at the end of the
/// run). Started before any row runs, so that a missing engine fails the run at once.
#[cfg(feature = "docker")]
fn docker_servers(options: &Options) -> Result<Vec<DockerRow>, String> {
    let rows = [("redis-docker", 1), ("redis-docker-sharded-3", 3)];
    let wanted: Vec<_> = rows.into_iter().filter(|(name, _)| options.wants(name)).collect();
    if !options.docker || wanted.is_empty() {
        return Ok(Vec::new());
    }
    let engine = docker::engine_version().map_err(|e| format!("--docker: {e}"))?;
    let image = docker::resolve_image(options.image.as_deref()).map_err(|e| e.to_string())?;
    println!("docker: engine {engine}, image {} ({})", image.name, image.origin);
    let mut servers = Vec::new();
    for (name, count) in wanted {
        let started = Instant::now();
        let set = DockerServers::start(count, &image.name).map_err(|e| e.to_string())?;
        println!("{name:<NAME_WIDTH$} {count} container(s) ready in {:.1?}", started.elapsed());
        let (urls, image) = (set.urls().to_vec(), set.image().to_string());
        servers.push(DockerRow { name, urls, image, logs: Box::new(move || set.logs()) });
    }
    Ok(servers)
}

/// Without the feature (`cargo test --workspace` builds xtask so, to stay lean), `--docker` is
/// an error that says how to get it.
#[cfg(not(feature = "docker"))]
fn docker_servers(options: &Options) -> Result<Vec<DockerRow>, String> {
    if options.docker {
        return Err("--docker: this xtask was built without its `docker` feature; \
                    run it through the `cargo xtask` alias, which enables it"
            .into());
    }
    Ok(Vec::new())
}

fn redis(name: &str, servers: Option<&'static SharedServers>) -> Arc<dyn Backend> {
    let missing = servers.is_none().then(|| "redis-server is not installed".to_string());
    let backend = FnBackend::new(name, move || {
        let urls = servers.expect("available").urls().to_vec();
        Arc::new(busmq_redis::RedisStore::from_urls(urls).expect("valid urls")) as _
    });
    Arc::new(backend.model_cases(REDIS_MODEL_CASES).unavailable_because(missing))
}

/// A Redis Cluster of six nodes (three masters, three replicas).
fn cluster() -> Arc<dyn Backend> {
    static CLUSTER: OnceLock<Option<SharedCluster>> = OnceLock::new();
    let cluster = SharedCluster::get(&CLUSTER);
    let missing = cluster.is_none().then(|| "redis-server or redis-cli is missing".to_string());
    let backend = FnBackend::new("redis-cluster", move || {
        let url = cluster.expect("available").url().to_string();
        Arc::new(busmq_redis::RedisStore::open(url).expect("valid url")) as _
    });
    Arc::new(backend.model_cases(REDIS_MODEL_CASES).unavailable_because(missing))
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let docker = docker_servers(&options)?;
    let cases = all_cases();
    let mut rows = Vec::new();
    for backend in backends(&docker, &options) {
        if !options.wants(&backend.name()) {
            continue;
        }
        let started = Instant::now();
        let mut row = run_backend(backend, &cases, options.jobs.max(1));
        if row.backend == acl::ROW {
            acl::check_refusals(&mut row.failed_cases);
            row.failed = row.failed_cases.len();
        }
        let servers = docker.iter().find(|d| d.name == row.backend);
        row.image = servers.map(|s| s.image.clone());
        println!(
            "{:<NAME_WIDTH$} {:>4} cases in {:.1?}",
            row.backend,
            cases.len(),
            started.elapsed()
        );
        if let Some(servers) = servers.filter(|_| row.failed > 0) {
            // The server's side of a failure is in the containers, which go away with the run.
            println!("{}", log_tail(&(servers.logs)(), 40));
        }
        rows.push(row);
    }
    println!("\n{:<NAME_WIDTH$} {:>7} {:>7} {:>8}", "backend", "passed", "failed", "skipped");
    for row in &rows {
        println!(
            "{:<NAME_WIDTH$} {:>7} {:>7} {:>8}",
            row.backend, row.passed, row.failed, row.skipped
        );
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
            image: None,
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
        image: None,
    }
}

/// The last `lines` lines of each container's log (the section headers are always kept).
fn log_tail(logs: &str, lines: usize) -> String {
    let mut out = Vec::new();
    let mut section: Vec<&str> = Vec::new();
    let flush = |section: &mut Vec<&str>, out: &mut Vec<String>| {
        let skip = section.len().saturating_sub(lines);
        out.extend(section.drain(..).skip(skip).map(str::to_string));
    };
    for line in logs.lines() {
        if line.starts_with("---- ") && !line.starts_with("---- stderr") {
            flush(&mut section, &mut out);
            out.push(line.to_string());
        } else {
            section.push(line);
        }
    }
    flush(&mut section, &mut out);
    out.join("\n")
}
