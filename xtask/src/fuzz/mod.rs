//! `cargo xtask fuzz [--budget SECS] [--only TARGET] [--seed N]`: the fuzz targets on the stable
//! toolchain, for CI. Each target first replays its committed corpus (`fuzz/corpus/<target>/`,
//! grown and minimized by cargo-fuzz on a nightly toolchain), then runs mutations of it (see
//! `mutate.rs`) until its share of the budget is spent. A panic (a broken invariant) or an
//! input slower than [`SLOW`] is a finding: the input is written to
//! `target/fuzz-findings/<target>-<n>` and the task fails.

mod mutate;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A target: its name (the corpus folder and the cargo-fuzz binary) and its body.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("entry", busmq_redis::fuzzing::entry),
    ("url", busmq_redis::fuzzing::url),
    ("script_reply", busmq_redis::fuzzing::script_reply),
    ("object_reply", busmq_redis::fuzzing::object_reply),
    ("channel_frame", busmq_core::fuzzing::channel_frame),
    ("service_frame", busmq_core::fuzzing::service_frame),
    ("persisted_notice", busmq_core::fuzzing::persisted_notice),
    ("headers", busmq_core::fuzzing::headers),
    ("traceparent", busmq_core::fuzzing::traceparent),
    ("codecs", busmq_core::fuzzing::codecs),
];

/// One input taking this long is a finding: a decoder that is slow on hostile bytes stalls
/// the consumer that reads them (SPEC S4). Generous, for a shared 2-core machine.
const SLOW: Duration = Duration::from_secs(2);

struct Options {
    budget: Duration,
    only: Option<String>,
    seed: u64,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut out = Options { budget: Duration::from_secs(30), only: None, seed: 0 };
    let mut seed = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--budget" => {
                let secs = value("--budget")?;
                let secs: u64 =
                    secs.parse().map_err(|_| format!("--budget {secs:?}: not seconds"))?;
                out.budget = Duration::from_secs(secs);
            }
            "--only" => out.only = Some(value("--only")?),
            "--seed" => {
                let n = value("--seed")?;
                seed = Some(n.parse().map_err(|_| format!("--seed {n:?}: not a number"))?);
            }
            other => return Err(format!("fuzz: unknown option {other:?}")),
        }
    }
    out.seed = seed.unwrap_or_else(busmq_core::support::random_u64);
    if let Some(only) = &out.only {
        if !TARGETS.iter().any(|(name, _)| name == only) {
            let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
            return Err(format!("fuzz: no target {only:?} (targets: {})", names.join(", ")));
        }
    }
    Ok(out)
}

fn corpus(name: &str) -> Result<Vec<Vec<u8>>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(name);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    let inputs: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if inputs.is_empty() {
        return Err(format!("{}: an empty corpus", dir.display()));
    }
    Ok(inputs)
}

/// Runs one input; a panic or a slow run is a finding, described.
fn run_one(body: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    let started = Instant::now();
    let result = panic::catch_unwind(AssertUnwindSafe(|| body(input)));
    let took = started.elapsed();
    match result {
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())),
        Ok(()) if took > SLOW => Err(format!("one input took {took:?} (over {SLOW:?})")),
        Ok(()) => Ok(()),
    }
}

fn save(name: &str, n: usize, input: &[u8]) -> PathBuf {
    let dir = crate::target_dir().join("fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{n}"));
    let _ = std::fs::write(&path, input);
    path
}

/// What one target did.
struct Tally {
    replayed: usize,
    mutated: u64,
    findings: Vec<String>,
}

fn fuzz_target(
    name: &'static str,
    body: fn(&[u8]),
    share: Duration,
    seed: u64,
) -> Result<Tally, String> {
    let inputs = corpus(name)?;
    let mut tally = Tally { replayed: 0, mutated: 0, findings: Vec::new() };
    let report = |tally: &mut Tally, input: &[u8], what: String| {
        let path = save(name, tally.findings.len(), input);
        tally.findings.push(format!("{name}: {what} (input in {})", path.display()));
    };
    for input in &inputs {
        tally.replayed += 1;
        if let Err(what) = run_one(body, input) {
            report(&mut tally, input, what);
        }
    }
    let mut rng = mutate::Rng::new(seed ^ mutate::hash(name.as_bytes()));
    let deadline = Instant::now() + share;
    while tally.findings.is_empty() && Instant::now() < deadline {
        // Checking the clock per batch keeps it out of the loop's cost.
        for _ in 0..64 {
            let input = mutate::mutate(&mut rng, &inputs);
            tally.mutated += 1;
            if let Err(what) = run_one(body, &input) {
                report(&mut tally, &input, what);
                break;
            }
        }
    }
    Ok(tally)
}

/// Runs the task.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = options(args)?;
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|(name, _)| options.only.as_deref().is_none_or(|only| only == *name))
        .collect();
    let share = options.budget / targets.len() as u32;
    println!(
        "fuzz: seed {} (repeat with --seed {}), {share:?} per target",
        options.seed, options.seed
    );
    // The targets' panics are caught and reported here; the default hook would print each.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut findings = Vec::new();
    let mut result = Ok(());
    for (name, body) in targets {
        match fuzz_target(name, *body, share, options.seed) {
            Ok(tally) => {
                println!(
                    "{name:<18} corpus {:>5} replayed   {:>9} mutated   {} findings",
                    tally.replayed,
                    tally.mutated,
                    tally.findings.len()
                );
                findings.extend(tally.findings);
            }
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    panic::set_hook(hook);
    result?;
    if findings.is_empty() {
        return Ok(());
    }
    for finding in &findings {
        eprintln!("finding: {finding}");
    }
    Err(format!("{} fuzz finding(s); each input is a regression test to add", findings.len()))
}
