//! The W3C `traceparent` header's text form, read and written without OpenTelemetry types, so
//! that the parser (which reads what other processes wrote) is fuzzed in every build; `w3c.rs`
//! turns it into an OpenTelemetry span context.

/// A parsed `traceparent`: the ids as lower-case hex, as the header carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TraceParent<'a> {
    /// 32 lower-case hex digits, not all zero.
    pub(crate) trace_id: &'a str,
    /// 16 lower-case hex digits, not all zero.
    pub(crate) span_id: &'a str,
    /// The flags byte (only its `sampled` bit is used).
    pub(crate) flags: u8,
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// Parses `value` as the W3C recommendation says: version 00 has exactly four fields; a later
/// version (up to fe) may add fields after them, which are ignored; all-zero ids are invalid.
pub(crate) fn parse(value: &str) -> Option<TraceParent<'_>> {
    let value = value.trim();
    let mut parts = value.split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let more = parts.next().is_some();
    if !lower_hex(version, 2) || version == "ff" || (version == "00" && more) {
        return None;
    }
    if !(lower_hex(trace_id, 32) && lower_hex(span_id, 16) && lower_hex(flags, 2)) {
        return None;
    }
    if zero(trace_id) || zero(span_id) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceParent { trace_id, span_id, flags })
}

/// The version-00 header of `parent` (55 characters).
pub(crate) fn format(parent: &TraceParent<'_>) -> String {
    format!("00-{}-{}-{:02x}", parent.trace_id, parent.span_id, parent.flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_reads_and_writes_back() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = parse(text).expect("a parent");
        assert_eq!(parent.flags, 1);
        assert_eq!(format(&parent), text);
        let later = parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-more");
        assert_eq!(later.map(|p| p.flags), Some(9));
    }

    #[test]
    fn malformed_parents_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
