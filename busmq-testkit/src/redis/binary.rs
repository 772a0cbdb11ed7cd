//! Finding the `redis-server` binary, and the skip-or-fail rule when it is missing.

use std::path::{Path, PathBuf};

/// The environment variable naming the `redis-server` binary to use.
pub const SERVER_ENV: &str = "BUSMQ_REDIS_SERVER";
/// When set to `1`, a missing binary fails the tests instead of skipping them (CI sets it).
pub const REQUIRE_ENV: &str = "BUSMQ_REQUIRE_REDIS";

fn executable(path: &Path) -> bool {
    path.is_file()
}

/// The `redis-server` binary: `$BUSMQ_REDIS_SERVER` if set (and present), else the first
/// `redis-server` on `PATH`.
pub fn redis_available() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os(SERVER_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(explicit);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("redis-server")).find(|p| executable(p))
}

fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Returns the binary, or prints one skip line naming `test` and returns `None` so the test can
/// return early. With `BUSMQ_REQUIRE_REDIS=1` a missing binary panics instead.
#[allow(clippy::print_stderr)] // The skip line is the whole point: tests must say they skipped.
pub fn require_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(path) = redis_available() {
        return Some(path);
    }
    let hint = match std::env::var_os(SERVER_ENV) {
        Some(v) if !v.is_empty() => format!("{SERVER_ENV}={} does not exist", v.to_string_lossy()),
        _ => format!("redis-server is not on PATH and {SERVER_ENV} is not set"),
    };
    if required() {
        panic!("{test}: {hint}, and {REQUIRE_ENV}=1 requires Redis tests to run");
    }
    eprintln!("SKIPPED {test}: {hint} (set {REQUIRE_ENV}=1 to fail instead)");
    None
}
