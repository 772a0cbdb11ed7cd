//! Redis `INFO commandstats` deltas: how many commands a scenario made Redis run, per message.
//! Commands run by Lua scripts are counted there too, so the commands a client sent (its round
//! trips) are told apart by name: scripts never call EVALSHA, PING or SCRIPT.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Commands only a client sends (never a busmq script): for busmq scenarios these are the round
/// trips.
const CLIENT_ONLY: &[&str] = &[
    "evalsha",
    "eval",
    "evalsha_ro",
    "eval_ro",
    "script|load",
    "script|exists",
    "ping",
    "blmpop",
    "client|unblock",
    "client|id",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "hello",
    "select",
    "auth",
];

/// Commands of the bench's own admin connection, left out of every figure.
const ADMIN: &[&str] = &["info", "flushall", "config|set", "config|resetstat"];

/// Calls and server microseconds per command name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Commands {
    by_name: BTreeMap<String, (u64, u64)>,
}

impl Commands {
    /// Parses the `cmdstat_<name>:calls=N,usec=U,...` lines of `INFO commandstats`.
    pub(crate) fn parse(info: &str) -> Commands {
        let mut by_name = BTreeMap::new();
        for line in info.lines() {
            let Some((name, fields)) =
                line.trim().strip_prefix("cmdstat_").and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            by_name.insert(name.to_string(), (field("calls"), field("usec")));
        }
        Commands { by_name }
    }

    /// What happened between `before` and `self`, without the bench's own admin commands.
    pub(crate) fn since(&self, before: &Commands) -> Commands {
        let mut by_name = BTreeMap::new();
        for (name, (calls, usec)) in &self.by_name {
            if ADMIN.contains(&name.as_str()) {
                continue;
            }
            let (c0, u0) = before.by_name.get(name).copied().unwrap_or((0, 0));
            if *calls > c0 {
                by_name.insert(name.clone(), (calls - c0, usec.saturating_sub(u0)));
            }
        }
        Commands { by_name }
    }

    pub(crate) fn add(&mut self, other: &Commands) {
        for (name, (calls, usec)) in &other.by_name {
            let entry = self.by_name.entry(name.clone()).or_default();
            entry.0 += calls;
            entry.1 += usec;
        }
    }

    fn scripted(&self) -> bool {
        self.by_name.keys().any(|n| n.starts_with("eval"))
    }

    /// Commands the clients sent: with scripts in play only [`CLIENT_ONLY`] ones, else all.
    pub(crate) fn round_trips(&self) -> u64 {
        let scripted = self.scripted();
        self.by_name
            .iter()
            .filter(|(name, _)| !scripted || CLIENT_ONLY.contains(&name.as_str()))
            .map(|(_, (calls, _))| calls)
            .sum()
    }

    /// `name calls/msg` for the client's commands, then for those run inside scripts.
    pub(crate) fn breakdown(&self, messages: u64) -> String {
        let scripted = self.scripted();
        let per = |calls: u64| calls as f64 / messages.max(1) as f64;
        let (mut sent, mut inside) = (String::new(), String::new());
        for (name, (calls, usec)) in &self.by_name {
            let client = !scripted || CLIENT_ONLY.contains(&name.as_str());
            let out = if client { &mut sent } else { &mut inside };
            let _ = write!(
                out,
                " {name} {:.4} ({:.1} us/call)",
                per(*calls),
                *usec as f64 / (*calls).max(1) as f64
            );
        }
        if scripted {
            format!("sent:{sent}; inside scripts:{inside}")
        } else {
            format!("sent:{sent}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_count_only_what_clients_sent() {
        let before = Commands::parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=100,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=3,usec=9\r\n",
        );
        let after = Commands::parse(
            "cmdstat_evalsha:calls=30,usec=300\ncmdstat_rpush:calls=20,usec=40\ncmdstat_ping:calls=1,usec=1\ncmdstat_info:calls=5,usec=15\ncmdstat_script|load:calls=2,usec=4\n",
        );
        let delta = after.since(&before);
        assert_eq!(delta.round_trips(), 20 + 1 + 2);
        let text = delta.breakdown(100);
        assert!(text.contains("evalsha 0.2000 (10.0 us/call)"), "{text}");
        assert!(text.contains("inside scripts: rpush 0.2000"), "{text}");
        assert!(!text.contains("info"));
        let raw = Commands::parse("cmdstat_lpop:calls=4,usec=4\ncmdstat_rpush:calls=2,usec=2\n");
        assert_eq!(raw.since(&Commands::default()).round_trips(), 6);
    }
}
