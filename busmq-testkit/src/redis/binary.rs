//! Finding a server binary (`redis-server`, or another such as `valkey-server`), and the
//! skip-or-fail rule when it is missing.

use std::path::{Path, PathBuf};

/// The environment variable naming the `redis-server` binary to use.
pub const SERVER_ENV: &str = "BUSMQ_REDIS_SERVER";
/// The environment variable naming the `valkey-server` binary of the Valkey tests and rows.
pub const VALKEY_SERVER_ENV: &str = "BUSMQ_VALKEY_SERVER";
/// When set to `1`, a missing binary fails the tests instead of skipping them (CI sets it).
pub const REQUIRE_ENV: &str = "BUSMQ_REQUIRE_REDIS";

fn executable(path: &Path) -> bool {
    path.is_file()
}

/// The binary that `$env` names if set (and present), else the first `name` on `PATH`.
pub fn find_binary(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(explicit);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| executable(p))
}

/// The `redis-server` binary: `$BUSMQ_REDIS_SERVER` if set (and present), else the first
/// `redis-server` on `PATH`.
pub fn redis_available() -> Option<PathBuf> {
    find_binary(SERVER_ENV, "redis-server")
}

/// The `valkey-server` binary: `$BUSMQ_VALKEY_SERVER` if set (and present), else the first
/// `valkey-server` on `PATH` (Debian: `apt-get install -t bookworm-backports valkey-server`).
pub fn valkey_available() -> Option<PathBuf> {
    find_binary(VALKEY_SERVER_ENV, "valkey-server")
}

pub(crate) fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Returns the binary, or prints one skip line naming `test` and returns `None` so the test can
/// return early. With `BUSMQ_REQUIRE_REDIS=1` a missing binary panics instead.
pub fn require_or_skip(test: &str) -> Option<PathBuf> {
    require_binary_or_skip(test, SERVER_ENV, "redis-server")
}

/// [`require_or_skip`] for the binary `$env` names, else `name` on `PATH`.
#[allow(clippy::print_stderr)] // The skip line is the whole point: tests must say they skipped.
pub fn require_binary_or_skip(test: &str, env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = find_binary(env, name) {
        return Some(path);
    }
    let hint = match std::env::var_os(env) {
        Some(v) if !v.is_empty() => format!("{env}={} does not exist", v.to_string_lossy()),
        _ => format!("{name} is not on PATH and {env} is not set"),
    };
    if required() {
        panic!("{test}: {hint}, and {REQUIRE_ENV}=1 requires Redis tests to run");
    }
    eprintln!("SKIPPED {test}: {hint} (set {REQUIRE_ENV}=1 to fail instead)");
    None
}
