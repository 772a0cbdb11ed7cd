//! How an entry is stored in Redis: `<id>:<deliveries>:<attr length>:<attrs><payload>`.
//!
//! The header costs about 21 bytes for an ordinary message (a 16-digit id and two zeros).
//! Attrs are empty (length 0) for a message without dead-letter information and without
//! headers, so such a message stores exactly what it did before headers existed. Otherwise they
//! are one JSON object: the dead-letter fields (`queue`, `id`, `deliveries`, `reason`, all or
//! none, as dead letters were always written) and the headers as `"h": {key: value, ...}` in
//! their order, and for an entry pushed with a level above 0 or an ordering key (SPEC P11,
//! P12) `"p": level` and `"k": key` (the scripts read those two only for such entries, see
//! "Side entries" in `lua/lib.lua`). Members a reader does not know are ignored, so that a later attribute does not
//! make older readers move entries aside; malformed attrs make the entry foreign data.
//! Arguments are written straight into the command buffer, and decoded payloads are slices of
//! the reply buffer, so a payload is not copied on its way in or out beyond what the redis
//! crate does.

use busmq_core::Headers;
use busmq_core::store::{DeadLetter, Entry, NewEntry};
use bytes::{Buf, Bytes};
use redis::{RedisWrite, ToRedisArgs};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;

#[derive(Serialize)]
struct AttrsOut<'a> {
    #[serde(flatten)]
    dead: Option<&'a DeadLetter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<&'a Headers>,
    #[serde(skip_serializing_if = "is_zero")]
    p: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<&'a str>,
}

fn is_zero(level: &u8) -> bool {
    *level == 0
}

#[derive(Deserialize)]
struct AttrsIn {
    queue: Option<String>,
    id: Option<u64>,
    deliveries: Option<u32>,
    reason: Option<String>,
    h: Option<Headers>,
    p: Option<u8>,
    k: Option<String>,
}

/// What an entry is pushed with besides its payload: the level and ordering key.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Side<'a> {
    pub(crate) priority: u8,
    pub(crate) key: Option<&'a str>,
}

impl Side<'_> {
    /// Whether the entry goes among the side entries (see `lua/lib.lua`), not the pages.
    pub(crate) fn is_side(&self) -> bool {
        self.priority > 0 || self.key.is_some()
    }
}

fn attrs(
    dead: Option<&Arc<DeadLetter>>,
    headers: Option<&Arc<Headers>>,
    side: Side<'_>,
) -> Vec<u8> {
    if dead.is_none() && headers.is_none() && !side.is_side() {
        return Vec::new();
    }
    let out = AttrsOut {
        dead: dead.map(|d| &**d),
        h: headers.map(|h| &**h),
        p: side.priority,
        k: side.key,
    };
    // Serializing strings and integers into memory cannot fail.
    serde_json::to_vec(&out).unwrap_or_default()
}

struct Attrs {
    dead: Option<Arc<DeadLetter>>,
    headers: Option<Arc<Headers>>,
    priority: u8,
    key: Option<Arc<str>>,
}

fn read_attrs(raw: &[u8]) -> Result<Attrs, String> {
    let attrs: AttrsIn = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let dead = match (attrs.queue, attrs.id, attrs.deliveries, attrs.reason) {
        (Some(queue), Some(id), Some(deliveries), Some(reason)) => {
            Some(Arc::new(DeadLetter { queue, id, deliveries, reason }))
        }
        (None, None, None, None) => None,
        _ => return Err("the dead-letter information is incomplete".to_string()),
    };
    let priority = attrs.p.unwrap_or(0);
    if priority > 9 {
        return Err(format!("priority {priority} is above 9"));
    }
    Ok(Attrs {
        dead,
        headers: attrs.h.and_then(Headers::into_shared),
        priority,
        key: attrs.k.map(Arc::from),
    })
}

/// A new entry as a push argument, with the id the client proposes for it (the script keeps
/// it, or rewrites the header when the proposal is refused).
#[derive(Debug)]
pub(crate) struct PushArg<'a> {
    entry: &'a NewEntry,
    /// `None`: the placeholder `s` of a side entry scheduled for later (see schedule.lua).
    id: Option<u64>,
    attrs: Vec<u8>,
}

impl<'a> PushArg<'a> {
    /// The entry with its own level and ordering key in its attrs.
    pub(crate) fn new(entry: &'a NewEntry, id: u64) -> Self {
        let side = Side { priority: entry.priority, key: entry.ordering_key.as_deref() };
        let attrs = attrs(entry.dead.as_ref(), entry.headers.as_ref(), side);
        PushArg { entry, id: Some(id), attrs }
    }

    /// A message to schedule: its id is a placeholder ('0', or 's' for a routed entry, which
    /// promote() in `lua/lib.lua` routes among the side entries when it comes due).
    pub(crate) fn scheduled(entry: &'a NewEntry) -> Self {
        let id = if entry.is_routed() { None } else { Some(0) };
        PushArg { id, ..Self::new(entry, 0) }
    }
}

/// An entry's route for push.lua (see its ARGV[11..]): '' for a plain entry, else the level
/// digit followed by the ordering key.
#[derive(Debug)]
pub(crate) struct Route<'a>(pub(crate) &'a NewEntry);

impl ToRedisArgs for Route<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut w = out.writer_for_next_arg();
        if self.0.is_routed() {
            // Writing into the command's in-memory buffer cannot fail.
            let _ = write!(w, "{}", self.0.priority);
            let _ = w.write_all(self.0.ordering_key.as_deref().unwrap_or("").as_bytes());
        }
    }
}

impl ToRedisArgs for PushArg<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut w = out.writer_for_next_arg();
        // Written digit by digit rather than with `write!`: this runs for every pushed message,
        // and the formatting machinery cost more than the rest of the argument.
        let mut header = Digits::default();
        match self.id {
            Some(id) => header.number(id),
            None => header.put(b"s"),
        }
        header.put(b":0:");
        header.number(self.attrs.len() as u64);
        header.put(b":");
        // Writing into the command's in-memory buffer cannot fail.
        let _ = w.write_all(header.as_slice());
        let _ = w.write_all(&self.attrs);
        let _ = w.write_all(&self.entry.payload);
    }
}

/// "00", "01", .., "99": the decimal digits of every number below 100.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// An entry header being written: two numbers of at most 20 digits and a few separators.
struct Digits {
    buf: [u8; 48],
    len: usize,
}

impl Default for Digits {
    fn default() -> Self {
        Digits { buf: [0; 48], len: 0 }
    }
}

impl Digits {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Two digits a step: an id has 16, and each step is a division on the critical path.
    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        while n >= 100 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            at -= 2;
            digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if n >= 10 {
            let pair = n as usize * 2;
            at -= 2;
            digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            at -= 1;
            digits[at] = b'0' + n as u8;
        }
        self.put(&digits[at..]);
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
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
        let side = Side { priority: entry.priority, key: entry.ordering_key.as_deref() };
        EntryArg { entry, attrs: attrs(entry.dead.as_ref(), entry.headers.as_ref(), side) }
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

/// A decimal number ended by ':' at `pos` (moved past the colon); `None` when there is none
/// or it overflows. Digits are read directly: this runs three times for every taken message.
fn number(raw: &[u8], pos: &mut usize) -> Option<u64> {
    let start = *pos;
    let mut value: u64 = 0;
    while let Some(&digit) = raw.get(*pos).filter(|b| b.is_ascii_digit()) {
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
        *pos += 1;
    }
    if *pos == start || raw.get(*pos) != Some(&b':') {
        return None;
    }
    *pos += 1;
    Some(value)
}

/// Decodes a stored entry (the payload is what follows the header in `raw`), or says why
/// busmq did not write it and gives `raw` back.
pub(crate) fn parse(mut raw: Bytes) -> Result<Entry, (String, Bytes)> {
    let (id, deliveries, start, attrs) = match header(&raw) {
        Ok(header) => header,
        Err(reason) => return Err((reason, raw)),
    };
    // Advancing the buffer the reply gave is free, where a slice of it allocates a shared
    // header (the buffer is a `Vec` turned into `Bytes`): once for every taken message.
    raw.advance(start);
    Ok(Entry {
        dead: attrs.dead,
        headers: attrs.headers,
        priority: attrs.priority,
        ordering_key: attrs.key,
        ..Entry::new(id, deliveries, raw)
    })
}

/// The id, delivery count, payload offset and attributes of a stored entry.
fn header(raw: &[u8]) -> Result<(u64, u32, usize, Attrs), String> {
    let mut pos = 0;
    let header = (|| {
        let id = number(raw, &mut pos)?;
        let deliveries = u32::try_from(number(raw, &mut pos)?).ok()?;
        let attr_len = usize::try_from(number(raw, &mut pos)?).ok()?;
        Some((id, deliveries, attr_len))
    })();
    let Some((id, deliveries, attr_len)) = header else {
        return Err("an entry does not start with a busmq header".to_string());
    };
    if raw.len() - pos < attr_len {
        return Err(format!("entry {id} is shorter than its busmq header says"));
    }
    let attrs = if attr_len == 0 {
        Attrs { dead: None, headers: None, priority: 0, key: None }
    } else {
        read_attrs(&raw[pos..pos + attr_len])
            .map_err(|e| format!("entry {id} has unreadable busmq attributes: {e}"))?
    };
    Ok((id, deliveries, pos + attr_len, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use busmq_core::Error;

    fn decode(raw: Vec<u8>, queue: &str) -> Result<Entry, Error> {
        parse(Bytes::from(raw))
            .map_err(|(detail, _)| Error::ForeignData { queue: queue.to_string(), detail })
    }

    fn packed<T: ToRedisArgs>(arg: T) -> Vec<u8> {
        let mut args = arg.to_redis_args();
        assert_eq!(args.len(), 1);
        args.remove(0)
    }

    fn dead_letter() -> Arc<DeadLetter> {
        Arc::new(DeadLetter {
            queue: "jobs".into(),
            id: 7,
            deliveries: 3,
            reason: "max_deliveries".into(),
        })
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
        assert!(e.headers.is_none());

        let entry =
            Entry { dead: Some(dead_letter()), ..Entry::new(42, 2, Bytes::from_static(b"x")) };
        let stored = packed(EntryArg::new(&entry));
        // Byte for byte what dead letters were before headers existed: the JSON of the
        // dead-letter information alone.
        let json = r#"{"queue":"jobs","id":7,"deliveries":3,"reason":"max_deliveries"}"#;
        assert_eq!(stored, format!("42:2:{}:{json}x", json.len()).into_bytes());
        assert_eq!(decode(stored, "q").unwrap(), entry);
    }

    #[test]
    fn headers_round_trip_alone_and_next_to_dead_letter_info() {
        let headers = Headers::new().with("b", "1").with("a", "{\"x\"}:\n").into_shared();
        let pushed = NewEntry { headers: headers.clone(), ..NewEntry::new(&b"p"[..]) };
        let stored = packed(PushArg::new(&pushed, 5));
        let attrs = r#"{"h":{"b":"1","a":"{\"x\"}:\n"}}"#;
        assert_eq!(stored, format!("5:0:{}:{attrs}p", attrs.len()).into_bytes());
        let back = decode(stored, "q").unwrap();
        assert_eq!(
            (back.headers, back.dead, &back.payload[..]),
            (headers.clone(), None, &b"p"[..])
        );

        let entry = Entry {
            dead: Some(dead_letter()),
            headers,
            ..Entry::new(42, 2, Bytes::from_static(b"x"))
        };
        assert_eq!(decode(packed(EntryArg::new(&entry)), "q").unwrap(), entry);
    }

    /// An entry with these attrs, their length computed.
    fn with_attrs(attrs: &str) -> Vec<u8> {
        format!("12:0:{}:{attrs}body", attrs.len()).into_bytes()
    }

    #[test]
    fn header_numbers_are_written_in_decimal() {
        for n in [0, 7, 9, 10, 42, 99, 100, 101, 999, 1000, 12345, 1700000000000001, u64::MAX] {
            let mut digits = Digits::default();
            digits.number(n);
            assert_eq!(digits.as_slice(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn unknown_attributes_are_ignored() {
        let e = decode(with_attrs(r#"{"later":[1],"h":{}}"#), "q").unwrap();
        assert_eq!((e.dead, e.headers, &e.payload[..]), (None, None, &b"body"[..]));
    }

    #[test]
    fn foreign_entries_are_typed_errors_naming_the_queue() {
        let mut bad: Vec<Vec<u8>> =
            [&b"hello"[..], b"12:x:0:", b"12:0:", b"12:0:99:short", b"12:0:3:{x}"]
                .iter()
                .map(|raw| raw.to_vec())
                .collect();
        for attrs in [
            r#"{"h":[]}"#,
            r#"{"h":{"":"v"}}"#,
            r#"{"h":{"a\u0007":"v"}}"#,
            r#"{"h":{"a":1}}"#,
            r#"{"h":{"a":"1","a":"2"}}"#,
            r#"{"queue":"jobs"}"#,
            r#"[]"#,
        ] {
            bad.push(with_attrs(attrs));
        }
        for raw in bad {
            match decode(raw.clone(), "jobs") {
                Err(Error::ForeignData { queue, .. }) => assert_eq!(queue, "jobs"),
                other => panic!("{}: {other:?}", raw.escape_ascii()),
            }
        }
    }
}
