//! From the command line to a connected bus: the URLs (`--url`, repeated or comma-separated,
//! or `BUSMQ_URL`), the namespace, and a bounded wait for Redis. The bus itself keeps
//! reconnecting in the background forever, which is right for a service and wrong for a
//! command someone waits for at a terminal: here the command gives up after `--timeout`.

use crate::exit::{CliError, CliResult, Exit};
use crate::secrets::Secrets;
use busmq::redis::RedisStore;
use busmq::{Bus, BusState, Error};
use std::time::Duration;

/// The URL used when neither `--url` nor `BUSMQ_URL` gives one.
pub(crate) const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The schemes that start a new URL in a comma-separated list.
const SCHEMES: [&str; 6] =
    ["redis://", "rediss://", "redis+unix://", "unix://", "redis+sentinel://", "redis+cluster://"];

/// Splits each argument at the commas that start another URL. Sentinel and Cluster URLs list
/// their hosts with commas themselves (`redis+sentinel://h1,h2/master`): a comma splits only
/// when a scheme follows it.
pub(crate) fn split_urls(args: &[String]) -> Vec<String> {
    let mut urls = Vec::new();
    for arg in args {
        let mut current = String::new();
        for (i, piece) in arg.split(',').enumerate() {
            if piece.trim().is_empty() {
                continue;
            }
            let starts_url = SCHEMES.iter().any(|s| piece.trim_start().starts_with(s));
            if i > 0 && !starts_url {
                current.push(',');
                current.push_str(piece);
                continue;
            }
            if !current.trim().is_empty() {
                urls.push(current.trim().to_string());
            }
            current = piece.to_string();
        }
        if !current.trim().is_empty() {
            urls.push(current.trim().to_string());
        }
    }
    urls
}

/// Where and how to connect, from the global options.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) urls: Vec<String>,
    pub(crate) namespace: String,
    pub(crate) timeout: Duration,
}

/// A connected bus and what the commands need to know about its store.
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) bus: Bus,
    pub(crate) namespace: String,
}

impl Target {
    /// The secrets of every URL, so that no output can carry them.
    pub(crate) fn secrets(&self) -> Secrets {
        Secrets::of_urls(&self.urls)
    }

    /// Builds the Redis store (a bad URL is exit 3) and connects within `timeout`.
    pub(crate) async fn connect(&self) -> CliResult<Connected> {
        let store = RedisStore::builder()
            .urls(self.urls.iter().cloned())
            .namespace(self.namespace.clone())
            .connect_timeout(self.timeout)
            .build()?;
        let instances = store.instances().join(", ");
        let bus = Bus::new(store);
        connect_within(&bus, self.timeout, &instances).await?;
        Ok(Connected { bus, namespace: self.namespace.clone() })
    }
}

/// Connects `bus` and waits until some instance answers, at most `timeout`.
pub(crate) async fn connect_within(bus: &Bus, timeout: Duration, instances: &str) -> CliResult {
    let unreachable = || {
        CliError::new(
            Exit::Unreachable,
            format!(
                "redis is unreachable: no answer from {instances} within {timeout:?} (is the \
                 server running, and are the URL and port right? --timeout waits longer)"
            ),
        )
    };
    let started = tokio::time::Instant::now();
    let state = match tokio::time::timeout(timeout, bus.connect()).await {
        Err(_) => return Err(unreachable()),
        Ok(result) => result?,
    };
    if state == BusState::Offline {
        let left = timeout.saturating_sub(started.elapsed());
        match bus.wait_online(left).await {
            Ok(()) => {}
            Err(Error::Timeout { .. }) => return Err(unreachable()),
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// Parses `5s`, `500ms`, `2m` or a bare number of seconds (`1.5`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 5s, 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (ms, s, m or h)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{text:?} must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(args: &[&str]) -> Vec<String> {
        split_urls(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn commas_split_only_where_a_url_starts() {
        assert_eq!(split(&["redis://a:1,redis://b:2"]), ["redis://a:1", "redis://b:2"]);
        assert_eq!(split(&["redis://a:1", "rediss://b"]), ["redis://a:1", "rediss://b"]);
        assert_eq!(
            split(&["redis+sentinel://h1:26379,h2:26379/m,redis://c"]),
            ["redis+sentinel://h1:26379,h2:26379/m", "redis://c"]
        );
        assert_eq!(
            split(&["redis+cluster://h1:7000,h2:7000"]),
            ["redis+cluster://h1:7000,h2:7000"]
        );
        assert_eq!(
            split(&["redis://a, redis+unix:///tmp/r.sock,"]),
            ["redis://a", "redis+unix:///tmp/r.sock"]
        );
    }

    #[test]
    fn durations_take_a_unit_or_seconds() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
