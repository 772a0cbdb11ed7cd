//! The frames of a service: a request (in `service:<name>`) and a reply (in the requester's
//! reply queue). A kind byte first, so that foreign bytes are told apart from busmq frames,
//! then length-prefixed fields, then the codec's bytes of the body. Headers travel beside the
//! frame, as the message's headers.

use bytes::Bytes;

const REQUEST: u8 = b'Q';
const PARTIAL: u8 = b'P';
const FINAL: u8 = b'F';
const FAILED: u8 = b'X';
const END: u8 = b'E';

/// What a reply frame is: a partial reply, or one of the three final outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    /// One of any number of replies before the final outcome.
    Partial,
    /// The final reply, with a body.
    Final,
    /// The final outcome is a failure; the body is the server's message (UTF-8).
    Failed,
    /// The final outcome without a body: a stream of partial replies ends here.
    End,
}

impl ReplyKind {
    fn byte(self) -> u8 {
        match self {
            ReplyKind::Partial => PARTIAL,
            ReplyKind::Final => FINAL,
            ReplyKind::Failed => FAILED,
            ReplyKind::End => END,
        }
    }

    /// Whether this reply ends the request.
    pub(crate) fn is_final(self) -> bool {
        self != ReplyKind::Partial
    }
}

/// A decoded request frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestFrame {
    pub(crate) id: String,
    pub(crate) reply_to: String,
    pub(crate) body: Bytes,
}

/// A decoded reply frame. `seq` numbers the replies of one request from 0, so that a requester
/// can drop the partial replies a second server repeats after a redelivery.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ReplyFrame {
    pub(crate) kind: ReplyKind,
    pub(crate) id: String,
    pub(crate) seq: u32,
    pub(crate) body: Bytes,
}

/// The header of a request frame; the codec appends the body.
pub(crate) fn request_buffer(id: &str, reply_to: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + id.len() + reply_to.len());
    out.push(REQUEST);
    put(&mut out, id.as_bytes());
    put(&mut out, reply_to.as_bytes());
    out
}

/// The header of a reply frame; the body (codec bytes, or a failure's message) follows.
pub(crate) fn reply_buffer(kind: ReplyKind, id: &str, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + id.len());
    out.push(kind.byte());
    put(&mut out, id.as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    // Ids and queue names are at most 1 KiB (the name limit), far below u16::MAX.
    out.extend_from_slice(&(field.len() as u16).to_be_bytes());
    out.extend_from_slice(field);
}

/// Reads fields off a frame; every failure says what was wrong, for a report.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("a service frame cut short in its {what}"))?;
        let field = &self.bytes[self.at..end];
        self.at = end;
        Ok(field)
    }

    fn text(&mut self, what: &str) -> Result<String, String> {
        let len = self.take(2, what)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let field = self.take(len, what)?;
        String::from_utf8(field.to_vec())
            .map_err(|_| format!("a service frame with a non-UTF-8 {what}"))
    }

    fn rest(&self) -> Bytes {
        self.bytes.slice(self.at..)
    }
}

/// Parses a request frame.
pub(crate) fn parse_request(bytes: &Bytes) -> Result<RequestFrame, String> {
    match bytes.first() {
        Some(&REQUEST) => {}
        Some(other) => return Err(format!("an unknown service request kind 0x{other:02x}")),
        None => return Err("an empty service request".into()),
    }
    let mut reader = Reader { bytes, at: 1 };
    let id = reader.text("request id")?;
    let reply_to = reader.text("reply queue")?;
    Ok(RequestFrame { id, reply_to, body: reader.rest() })
}

/// Parses a reply frame.
pub(crate) fn parse_reply(bytes: &Bytes) -> Result<ReplyFrame, String> {
    let kind = match bytes.first() {
        Some(&PARTIAL) => ReplyKind::Partial,
        Some(&FINAL) => ReplyKind::Final,
        Some(&FAILED) => ReplyKind::Failed,
        Some(&END) => ReplyKind::End,
        Some(other) => return Err(format!("an unknown service reply kind 0x{other:02x}")),
        None => return Err("an empty service reply".into()),
    };
    let mut reader = Reader { bytes, at: 1 };
    let id = reader.text("request id")?;
    let seq = reader.take(4, "sequence number")?;
    let seq = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
    Ok(ReplyFrame { kind, id, seq, body: reader.rest() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut request = request_buffer("r1", "service:math:r:00");
        request.extend_from_slice(b"{\"a\":1}");
        let parsed = parse_request(&request.into()).unwrap();
        assert_eq!((parsed.id.as_str(), parsed.reply_to.as_str()), ("r1", "service:math:r:00"));
        assert_eq!(parsed.body, Bytes::from_static(b"{\"a\":1}"));
        for kind in [ReplyKind::Partial, ReplyKind::Final, ReplyKind::Failed, ReplyKind::End] {
            let mut reply = reply_buffer(kind, "r1", 7);
            reply.extend_from_slice(b"x");
            let parsed = parse_reply(&reply.into()).unwrap();
            assert_eq!((parsed.kind, parsed.id.as_str(), parsed.seq), (kind, "r1", 7));
            assert_eq!(parsed.body, Bytes::from_static(b"x"));
        }
    }

    #[test]
    fn foreign_frames_are_reported() {
        assert!(parse_request(&Bytes::new()).unwrap_err().contains("empty"));
        assert!(parse_request(&Bytes::from_static(b"hello")).unwrap_err().contains("0x68"));
        assert!(parse_request(&Bytes::from_static(b"Q\x00\x09r")).unwrap_err().contains("short"));
        assert!(parse_reply(&Bytes::from_static(b"F\x00\x01\xff")).unwrap_err().contains("UTF-8"));
        assert!(parse_reply(&Bytes::from_static(b"F\x00\x01r\x00")).unwrap_err().contains("short"));
    }
}
