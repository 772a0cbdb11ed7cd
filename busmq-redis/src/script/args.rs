//! How values become script arguments: durations in milliseconds, optional numbers as empty
//! strings, flags as `'1'`/`'0'`, and a queue spec as the five arguments every creating script
//! takes (see `lua/attach.lua`).

use busmq_core::store::QueueSpec;
use busmq_core::{Error, Result};
use redis::Cmd;
use std::time::Duration;

/// Milliseconds, rounded up so that a positive duration never becomes zero.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// An optional number: empty when absent (the scripts read `''` as none).
pub(crate) fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

pub(crate) fn flag(yes: bool) -> &'static str {
    if yes { "1" } else { "0" }
}

/// ttl ms, maxsize, retention max_len, retention max_age ms, page size.
pub(crate) fn spec_args(cmd: &mut Cmd, spec: &QueueSpec, page_size: u32) {
    cmd.arg(millis(spec.ttl).max(1))
        .arg(opt(spec.maxsize))
        .arg(opt(spec.retention.max_len))
        .arg(opt(spec.retention.max_age.map(|d| millis(d).max(1))))
        .arg(page_size);
}

/// A spec a queue can be created from: a zero ttl would expire it at once.
pub(crate) fn check_spec(spec: &QueueSpec) -> Result<()> {
    if spec.ttl.is_zero() {
        return Err(Error::invalid_option("ttl", "must be greater than zero"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_milliseconds() {
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_micros(1501)), 2);
        assert_eq!(millis(Duration::ZERO), 0);
    }
}
