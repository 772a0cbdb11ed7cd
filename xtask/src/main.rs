//! `cargo xtask <task>`: the project's tasks that are more than one cargo command.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on the terminal"
)]

mod bench;
mod chaos;
mod conformance;
mod fuzz;
mod release;
mod tidy;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task> [options]

tasks:
  conformance [--only NAME] [--jobs N] [--docker [--image NAME]]
      run the conformance suite against every backend, print a table and write
      target/conformance.json; --docker adds Redis in containers (testcontainers)
  bench [--quick] [--json PATH] [--pin split|same|none] [--only SCENARIO[,SCENARIO..]] [--list]
      build in release, start a redis-server, run every benchmark scenario next to its
      baseline, print a table and write target/bench.json
  chaos [--quick] [--only FAULT]... [--occurrences N] [--no-wait-cost] [--report-only] [--trace]
      build in release, inject faults (consumer kills, CLIENT KILL, Redis restart, Sentinel
      failover, partitions, slow consumers) under load, count lost/duplicated/reordered
      messages and recovery times per delivery mode, print a table and write
      target/chaos.json; --quick is the CI schedule
  fuzz [--budget SECS] [--only TARGET] [--seed N]
      replay the committed fuzz corpus (fuzz/corpus/) through every decoder's fuzz
      target, then mutate it for the budget (default 30 s over all targets) on the
      stable toolchain; a panic or a slow input fails and is saved under
      target/fuzz-findings/";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("conformance") => conformance::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("chaos") => chaos::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        // Hidden: a consumer process that `chaos` starts and kills with SIGKILL.
        Some("chaos-worker") => chaos::worker(&rest),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace's `target/` directory.
pub(crate) fn target_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    std::env::var_os("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|| root.join("target"))
}
