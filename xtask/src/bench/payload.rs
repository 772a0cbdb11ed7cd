//! The messages every scenario moves: ASCII text of exactly the size asked for, starting with a
//! sequence number and the time it was made (16 hex digits each), so that the receiver checks
//! order and measures end-to-end latency without a side table. Being text, the same bytes go
//! through raw Redis lists, busmq's raw codec and a tokio channel.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::Instant;

/// The header: sequence number and timestamp.
pub(crate) const HEADER: usize = 32;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds on this process's monotonic clock.
pub(crate) fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Message `seq`, stamped now, `size` bytes long (at least the header).
pub(crate) fn make(seq: u64, size: usize) -> String {
    let mut text = String::with_capacity(size.max(HEADER));
    let _ = write!(text, "{seq:016x}{:016x}", now_ns());
    text.extend(std::iter::repeat_n('x', size.saturating_sub(HEADER)));
    text
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) seq: u64,
    pub(crate) made_ns: u64,
}

/// Reads the header back; `None` for anything the bench did not write.
pub(crate) fn read(body: &[u8]) -> Option<Stamp> {
    let hex = |from: usize| {
        let digits = std::str::from_utf8(body.get(from..from + 16)?).ok()?;
        u64::from_str_radix(digits, 16).ok()
    };
    Some(Stamp { seq: hex(0)?, made_ns: hex(16)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_size_asked_and_read_back() {
        let m = make(42, 100);
        assert_eq!(m.len(), 100);
        let stamp = read(m.as_bytes()).unwrap();
        assert_eq!(stamp.seq, 42);
        assert!(stamp.made_ns <= now_ns());
        assert_eq!(make(1, 10).len(), HEADER);
        assert_eq!(read(b"not a bench message at all, no header here"), None);
    }
}
