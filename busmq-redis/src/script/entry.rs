//! How an entry is stored in Redis: `<id>:<deliveries>:<attr length>:<attrs><payload>`.
//!
//! The header costs about 21 bytes for an ordinary message (a 16-digit id and two zeros);
//! attrs are JSON dead-letter information and are empty for ordinary messages. Arguments are
//! written straight into the command buffer, and decoded payloads are slices of the reply
//! buffer, so a payload is not copied on its way in or out beyond what the redis crate does.

use busmq_core::store::{DeadLetter, Entry, NewEntry, Receipt};
use bytes::Bytes;
use redis::{RedisWrite, ToRedisArgs};
use std::io::Write;
use std::sync::Arc;

fn attrs(dead: Option<&Arc<DeadLetter>>) -> Vec<u8> {
    // Serializing a plain struct of strings and integers cannot fail.
    dead.map(|d| serde_json::to_vec(d.as_ref()).unwrap_or_default()).unwrap_or_default()
}

/// A new entry as a push argument, with the id the client proposes for it (the script keeps
/// it, or rewrites the header when the proposal is refused).
#[derive(Debug)]
pub(crate) struct PushArg<'a> {
    entry: &'a NewEntry,
    id: u64,
    attrs: Vec<u8>,
}

impl<'a> PushArg<'a> {
    pub(crate) fn new(entry: &'a NewEntry, id: u64) -> Self {
        PushArg { entry, id, attrs: attrs(entry.dead.as_ref()) }
    }
}

impl ToRedisArgs for PushArg<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut w = out.writer_for_next_arg();
        // Writing into the command's in-memory buffer cannot fail.
        let _ = write!(w, "{}:0:{}:", self.id, self.attrs.len());
        let _ = w.write_all(&self.attrs);
        let _ = w.write_all(&self.entry.payload);
    }
}

/// A complete entry as an argument (for restore).
#[derive(Debug)]
pub(crate) struct EntryArg<'a> {
    entry: &'a Entry,
    attrs: Vec<u8>,
}

impl<'a> EntryArg<'a> {
    pub(crate) fn new(entry: &'a Entry) -> Self {
        EntryArg { entry, attrs: attrs(entry.dead.as_ref()) }
    }
}

impl ToRedisArgs for EntryArg<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut w = out.writer_for_next_arg();
        let _ = write!(w, "{}:{}:{}:", self.entry.id, self.entry.deliveries, self.attrs.len());
        let _ = w.write_all(&self.attrs);
        let _ = w.write_all(&self.entry.payload);
    }
}

fn number<T: std::str::FromStr>(raw: &[u8], pos: &mut usize) -> Option<T> {
    let start = *pos;
    while *pos < raw.len() && raw[*pos].is_ascii_digit() {
        *pos += 1;
    }
    if *pos == start || raw.get(*pos) != Some(&b':') {
        return None;
    }
    let value = std::str::from_utf8(&raw[start..*pos]).ok()?.parse().ok()?;
    *pos += 1;
    Some(value)
}

/// Decodes a stored entry (the payload is a slice of `raw`), or says why busmq did not write
/// it.
pub(crate) fn parse(raw: Bytes) -> Result<Entry, String> {
    let mut pos = 0;
    let header = (|| {
        let id = number::<u64>(&raw, &mut pos)?;
        let deliveries = number::<u32>(&raw, &mut pos)?;
        let attr_len = number::<usize>(&raw, &mut pos)?;
        Some((id, deliveries, attr_len))
    })();
    let Some((id, deliveries, attr_len)) = header else {
        return Err("an entry does not start with a busmq header".to_string());
    };
    if raw.len() - pos < attr_len {
        return Err(format!("entry {id} is shorter than its busmq header says"));
    }
    let dead = if attr_len == 0 {
        None
    } else {
        let info: DeadLetter = serde_json::from_slice(&raw[pos..pos + attr_len])
            .map_err(|e| format!("entry {id} has unreadable dead-letter attributes: {e}"))?;
        Some(Arc::new(info))
    };
    let start = pos + attr_len;
    let payload = raw.slice(start..);
    Ok(Entry { id, deliveries, payload, dead, receipt: Receipt::none() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use busmq_core::Error;

    fn decode(raw: Vec<u8>, queue: &str) -> Result<Entry, Error> {
        parse(Bytes::from(raw))
            .map_err(|detail| Error::ForeignData { queue: queue.to_string(), detail })
    }

    fn packed<T: ToRedisArgs>(arg: T) -> Vec<u8> {
        let mut args = arg.to_redis_args();
        assert_eq!(args.len(), 1);
        args.remove(0)
    }

    #[test]
    fn round_trip_with_and_without_dead_letter_info() {
        let plain = NewEntry::new(&b"hello:world"[..]);
        let stored = packed(PushArg::new(&plain, 1700000000000001));
        assert_eq!(&stored, b"1700000000000001:0:0:hello:world");
        let e = decode(stored, "q").unwrap();
        assert_eq!(
            (e.id, e.deliveries, &e.payload[..]),
            (1700000000000001, 0, &b"hello:world"[..])
        );

        let dead = Arc::new(DeadLetter {
            queue: "jobs".into(),
            id: 7,
            deliveries: 3,
            reason: "max_deliveries".into(),
        });
        let entry = Entry { dead: Some(dead), ..Entry::new(42, 2, Bytes::from_static(b"x")) };
        let back = decode(packed(EntryArg::new(&entry)), "q").unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn foreign_entries_are_typed_errors_naming_the_queue() {
        for raw in [&b"hello"[..], b"12:x:0:", b"12:0:", b"12:0:99:short", b"12:0:3:{x}"] {
            match decode(raw.to_vec(), "jobs") {
                Err(Error::ForeignData { queue, .. }) => assert_eq!(queue, "jobs"),
                other => panic!("{raw:?}: {other:?}"),
            }
        }
    }
}
