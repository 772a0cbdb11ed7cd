//! Where redis-server and the client run (`--pin split|same|none`). On a 2-vCPU machine a round
//! trip costs about 9 us when both share a CPU and about 63 us when they do not, and the
//! scheduler picks either: pinning makes the figures of one run comparable with each other.
//! Pinning goes through `taskset -a -p -c` (every thread of the process; threads created later
//! inherit the mask) and is checked by reading every thread's `Cpus_allowed_list`.

use std::fs;
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// redis-server on one CPU, the client on another.
    Split,
    /// Both on the same CPU.
    Same,
    /// Wherever the scheduler puts them.
    Free,
}

impl Placement {
    pub(crate) fn parse(text: &str) -> Result<Placement, String> {
        match text {
            "split" => Ok(Placement::Split),
            "same" => Ok(Placement::Same),
            "none" => Ok(Placement::Free),
            other => Err(format!("--pin: {other:?} is not one of split, same, none")),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Placement::Split => "split",
            Placement::Same => "same",
            Placement::Free => "none",
        }
    }
}

/// The CPUs chosen for one run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) placement: Placement,
    redis_cpu: Option<u32>,
    client_cpu: Option<u32>,
    allowed: Vec<u32>,
}

impl Plan {
    pub(crate) fn new(placement: Placement) -> Result<Plan, String> {
        let allowed = own_cpus()?;
        let (first, last) = match (allowed.first(), allowed.last()) {
            (Some(first), Some(last)) => (*first, *last),
            _ => return Err("this process may run on no CPU at all".into()),
        };
        let (redis_cpu, client_cpu) = match placement {
            Placement::Split if first == last => {
                return Err(format!(
                    "--pin split needs two CPUs, this process may use only cpu {first}"
                ));
            }
            Placement::Split => (Some(first), Some(last)),
            Placement::Same => (Some(last), Some(last)),
            Placement::Free => (None, None),
        };
        Ok(Plan { placement, redis_cpu, client_cpu, allowed })
    }

    /// How many runtime worker threads the client should have: one per CPU it may use.
    pub(crate) fn client_threads(&self) -> usize {
        if self.client_cpu.is_some() { 1 } else { self.allowed.len().max(1) }
    }

    /// Pins every thread of this process (call before the runtime starts its threads).
    pub(crate) fn pin_client(&self) -> Result<(), String> {
        match self.client_cpu {
            Some(cpu) => taskset(cpu, std::process::id()),
            None => Ok(()),
        }
    }

    pub(crate) fn pin_redis(&self, pid: u32) -> Result<(), String> {
        match self.redis_cpu {
            Some(cpu) => taskset(cpu, pid),
            None => Ok(()),
        }
    }

    /// Checks that every thread of both processes is where the plan put it.
    pub(crate) fn verify(&self, redis_pid: u32) -> Result<(), String> {
        for (who, pid, cpu) in [
            ("client", std::process::id(), self.client_cpu),
            ("redis-server", redis_pid, self.redis_cpu),
        ] {
            let Some(cpu) = cpu else {
                continue;
            };
            for (tid, list) in thread_cpus(pid)? {
                if list != cpu.to_string() {
                    return Err(format!(
                        "{who} thread {tid} may run on cpus {list}, not only on cpu {cpu}"
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn describe(&self) -> String {
        match (self.redis_cpu, self.client_cpu) {
            (Some(r), Some(c)) => {
                format!("{}: redis-server on cpu {r}, client on cpu {c}", self.placement.name())
            }
            _ => format!("none: not pinned (cpus {:?} for both)", self.allowed),
        }
    }
}

fn taskset(cpu: u32, pid: u32) -> Result<(), String> {
    let output = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()
        .map_err(|e| format!("cannot run taskset: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset -a -p -c {cpu} {pid} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn own_cpus() -> Result<Vec<u32>, String> {
    let status =
        fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .ok_or("/proc/self/status has no Cpus_allowed_list")?;
    parse_list(list.trim())
}

/// Expands a kernel CPU list such as `0-2,5`.
fn parse_list(list: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("cannot read the CPU list {list:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(cpus)
}

fn thread_cpus(pid: u32) -> Result<Vec<(String, String)>, String> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for task in fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?.flatten() {
        let Ok(status) = fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        if let Some(list) = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) {
            out.push((task.file_name().to_string_lossy().into_owned(), list.trim().to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand() {
        assert_eq!(parse_list("0-1").unwrap(), vec![0, 1]);
        assert_eq!(parse_list("0,2-3,7").unwrap(), vec![0, 2, 3, 7]);
        assert!(parse_list("x").is_err());
        assert_eq!(Placement::parse("none").unwrap(), Placement::Free);
        assert!(Placement::parse("both").is_err());
    }
}
