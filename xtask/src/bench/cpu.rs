//! CPU time of a process (this one or redis-server), read from /proc: the first field of every
//! thread's `task/<tid>/schedstat` (nanoseconds on CPU) summed; where the kernel keeps no
//! schedstats, `utime + stime` of `stat` (clock ticks of 10 ms) instead. Threads that exit
//! during a measurement take their time with them, which is why the runtime's threads are
//! created before anything is measured.

use std::fs;
use std::time::Duration;

/// Where CPU times come from, for the report.
pub(crate) fn source() -> &'static str {
    if schedstat("self").is_some_and(|ns| ns > 0) {
        "/proc/<pid>/task/*/schedstat (ns on CPU, summed over the threads)"
    } else {
        "/proc/<pid>/stat utime+stime (10 ms ticks)"
    }
}

/// The CPU time used so far by `pid` (`None`: this process).
pub(crate) fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let dir = pid.map_or_else(|| "self".to_string(), |p| p.to_string());
    match schedstat(&dir) {
        Some(ns) if ns > 0 => Some(Duration::from_nanos(ns)),
        _ => ticks(&dir),
    }
}

fn schedstat(dir: &str) -> Option<u64> {
    let mut total = 0u64;
    for task in fs::read_dir(format!("/proc/{dir}/task")).ok()?.flatten() {
        // A thread may exit between listing and reading: it then counts as nothing.
        let Ok(text) = fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn ticks(dir: &str) -> Option<Duration> {
    let text = fs::read_to_string(format!("/proc/{dir}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = cpu_time(None).expect("readable");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert_ne!(x, 1);
        let after = cpu_time(None).expect("readable");
        assert!(after > before, "{before:?} -> {after:?}");
        assert!(ticks("self").is_some());
    }
}
