//! The per-message work of baseline-list-ids: the id and delivery count busmq's SPEC gives every
//! message, stored in the header busmq-redis writes before the payload
//! (`<id>:<count>:<attribute length>:`), written straight into the `RPUSH` buffer and read back
//! on the consumer's side. Plain digit loops, with neither `fmt` nor any check busmq makes beyond
//! the header's shape, so that the floor it gives stays a floor.

use bytes::{Buf, Bytes};
use redis::{RedisWrite, ToRedisArgs};
use std::io::Write;

/// A message as the writer stores it: `body` after its header.
pub(crate) struct Stamped<'a> {
    pub(crate) id: u64,
    pub(crate) body: &'a [u8],
}

impl ToRedisArgs for Stamped<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = self.id;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut w = out.writer_for_next_arg();
        // Writing into the command's in-memory buffer cannot fail.
        let _ = w.write_all(&digits[at..]);
        let _ = w.write_all(b":0:0:");
        let _ = w.write_all(self.body);
    }
}

/// Reads a stored message back: its id, and its payload as owned bytes (the buffer the reply
/// gave, advanced past the header, as busmq hands payloads out). `None` for anything without
/// the header.
pub(crate) fn read(raw: Vec<u8>) -> Option<(u64, Bytes)> {
    let mut pos = 0;
    let id = number(&raw, &mut pos)?;
    let _deliveries = number(&raw, &mut pos)?;
    let attrs = usize::try_from(number(&raw, &mut pos)?).ok()?;
    let start = pos.checked_add(attrs).filter(|&start| start <= raw.len())?;
    let mut body = Bytes::from(raw);
    body.advance(start);
    Some((id, body))
}

/// A decimal number ended by ':' at `pos`, which is moved past the colon.
fn number(raw: &[u8], pos: &mut usize) -> Option<u64> {
    let start = *pos;
    let mut value: u64 = 0;
    while let Some(&b) = raw.get(*pos) {
        *pos += 1;
        match b {
            b'0'..=b'9' => value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?,
            b':' if *pos - 1 > start => return Some(value),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(id: u64, body: &[u8]) -> Vec<u8> {
        let mut args = Stamped { id, body }.to_redis_args();
        assert_eq!(args.len(), 1);
        args.remove(0)
    }

    #[test]
    fn a_stamped_message_reads_back_with_its_id_and_payload() {
        for id in [0, 7, 1_733_500_000_123_456, u64::MAX] {
            let raw = written(id, b"hello");
            assert_eq!(raw, format!("{id}:0:0:hello").into_bytes());
            let (got, body) = read(raw).expect("a stamped message");
            assert_eq!(got, id);
            assert_eq!(&body[..], b"hello");
        }
        assert_eq!(read(written(3, b"")).map(|(id, body)| (id, body.len())), Some((3, 0)));
    }

    #[test]
    fn anything_without_the_header_is_refused() {
        for raw in [&b""[..], b"hello", b"12:0", b":0:0:x", b"1:0:9:short", b"1:x:0:"] {
            assert_eq!(read(raw.to_vec()), None, "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(read(b"99999999999999999999:0:0:x".to_vec()), None, "overflow");
    }
}
