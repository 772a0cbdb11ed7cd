//! Re-running a task as a release build: what `bench` and `chaos` measure (rates, latencies,
//! recovery times) is only worth having from the build users run, not from a debug build.

/// Builds the release xtask and runs `task` with `args` in it; fails when that run fails.
pub(crate) fn rerun_in_release(task: &str, args: &[String]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    println!("{task}: building and running the release build");
    let status = std::process::Command::new(cargo)
        .args(["run", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .args(["--bin", "xtask", "--", task])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the release {task} failed ({status})")) }
}
