//! `busmq`: the busmq command-line tool. Look at queues without changing them (`ls`, `stat`,
//! `peek`, `tail`), push and consume, move dead letters back (`dlq`), publish and subscribe,
//! talk on a channel, and measure (`bench`). See README.md for the user documentation and the
//! exit codes.

mod cli;
mod commands;
mod connect;
mod exit;
mod headers;
mod output;
mod secrets;
mod signal;

use clap::Parser;
use cli::Cli;
use connect::{DEFAULT_URL, Target, split_urls};
use output::Out;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut urls = split_urls(&cli.url);
    if urls.is_empty() {
        urls.push(DEFAULT_URL.to_string());
    }
    let target = Target { urls, namespace: cli.namespace.clone(), timeout: cli.timeout };
    let out = Out::new(cli.json, target.secrets());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            out.note(format!("error: cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli.command, &target, &out));
    // Background tasks of a disconnected bus end by themselves; nothing is worth waiting for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.reader_gone => ExitCode::SUCCESS,
        Err(error) => {
            out.note(format!("error: {}", error.message));
            ExitCode::from(error.exit as u8)
        }
    }
}
