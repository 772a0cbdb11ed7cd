//! The wire frames inside a channel's queues. The first byte says what a frame is, so control
//! frames and user messages cannot be confused (SPEC C4 fix: node busmq used string prefixes and
//! sent objects as "[object Object]"); the rest of a message frame is the codec's bytes.

use bytes::Bytes;

const CONNECT: u8 = b'C';
const MESSAGE: u8 = b'M';
const DISCONNECT: u8 = b'D';
const END: u8 = b'E';

/// A decoded frame. Sessions identify one `connect` of one peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    Connect(String),
    Message(Bytes),
    Disconnect(String),
    End,
}

pub(crate) fn connect(session: &str) -> Bytes {
    control(CONNECT, session)
}

pub(crate) fn disconnect(session: &str) -> Bytes {
    control(DISCONNECT, session)
}

pub(crate) fn end() -> Bytes {
    Bytes::from_static(&[END])
}

fn control(kind: u8, session: &str) -> Bytes {
    let mut out = Vec::with_capacity(1 + session.len());
    out.push(kind);
    out.extend_from_slice(session.as_bytes());
    out.into()
}

/// The buffer a message frame is encoded into: the kind byte, then the codec appends the body.
pub(crate) fn message_buffer() -> Vec<u8> {
    vec![MESSAGE]
}

/// Parses a frame; the error says what was wrong, for a `ForeignData` report.
pub(crate) fn parse(bytes: &Bytes) -> Result<Frame, String> {
    let Some(&kind) = bytes.first() else {
        return Err("an empty channel frame".into());
    };
    let session = || {
        std::str::from_utf8(&bytes[1..])
            .map(str::to_owned)
            .map_err(|_| "a channel control frame with a non-UTF-8 session".to_string())
    };
    match kind {
        CONNECT => Ok(Frame::Connect(session()?)),
        DISCONNECT => Ok(Frame::Disconnect(session()?)),
        MESSAGE => Ok(Frame::Message(bytes.slice(1..))),
        END if bytes.len() == 1 => Ok(Frame::End),
        other => Err(format!("an unknown channel frame kind 0x{other:02x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_never_mix() {
        assert_eq!(parse(&connect("s1")).unwrap(), Frame::Connect("s1".into()));
        assert_eq!(parse(&disconnect("s1")).unwrap(), Frame::Disconnect("s1".into()));
        assert_eq!(parse(&end()).unwrap(), Frame::End);
        let mut m = message_buffer();
        m.extend_from_slice(b"{\"a\":1}");
        // A user message that looks like a control frame stays a message.
        assert_eq!(parse(&m.into()).unwrap(), Frame::Message(Bytes::from_static(b"{\"a\":1}")));
        let mut m = message_buffer();
        m.extend_from_slice(b"E");
        assert_eq!(parse(&m.into()).unwrap(), Frame::Message(Bytes::from_static(b"E")));
    }

    #[test]
    fn foreign_frames_are_reported() {
        assert!(parse(&Bytes::new()).unwrap_err().contains("empty"));
        assert!(parse(&Bytes::from_static(b"hello")).unwrap_err().contains("0x68"));
        assert!(parse(&Bytes::from_static(b"C\xff")).unwrap_err().contains("non-UTF-8"));
    }
}
