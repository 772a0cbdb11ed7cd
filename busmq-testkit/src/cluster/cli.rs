//! Which `redis-cli` (or `valkey-cli`) creates and reshards a test cluster, and the skip rule
//! when there is none.

use std::path::PathBuf;

/// The environment variable naming the `redis-cli` binary (else the one next to
/// `redis-server`, else `PATH`).
pub const CLI_ENV: &str = "BUSMQ_REDIS_CLI";

/// The environment variable naming the `valkey-cli` binary of a Valkey cluster (else the one
/// next to `valkey-server`, else `PATH`; Debian: `valkey-tools`).
pub const VALKEY_CLI_ENV: &str = "BUSMQ_VALKEY_CLI";

/// The `redis-cli` binary, if there is one.
pub fn redis_cli() -> Option<PathBuf> {
    cli(CLI_ENV, "redis-cli", crate::redis::redis_available())
}

/// The `valkey-cli` binary, if there is one.
pub fn valkey_cli() -> Option<PathBuf> {
    cli(VALKEY_CLI_ENV, "valkey-cli", crate::redis::valkey_available())
}

/// `$env`, else `name` beside `server`, else `name` on `PATH`.
fn cli(env: &str, name: &str, server: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(explicit));
    }
    let beside =
        server.and_then(|server| server.parent().map(|dir| dir.join(name))).filter(|p| p.is_file());
    beside.or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
    })
}

/// Returns whether `redis-cli` is there; prints one skip line naming `test` when it is not,
/// or panics with `BUSMQ_REQUIRE_REDIS=1` (it creates the cluster).
#[allow(clippy::print_stderr)] // The skip line is the point.
pub fn require_cli_or_skip(test: &str) -> bool {
    if redis_cli().is_some() {
        return true;
    }
    let required = std::env::var(crate::redis::REQUIRE_ENV)
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if required {
        panic!("{test}: redis-cli is missing (apt: redis-tools), and Redis tests are required");
    }
    eprintln!("SKIPPED {test}: redis-cli is missing (apt: redis-tools)");
    false
}
