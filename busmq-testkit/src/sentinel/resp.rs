//! A minimal async RESP2 client for the harness: one command per connection, with a deadline,
//! so that driving sentinels and servers (`SENTINEL FAILOVER`, `CLIENT KILL`, `ROLE`) needs no
//! Redis client crate.

use crate::redis::HarnessError;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one command may take, connection included.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...` (the whole line after `-`).
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$n` (None for `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*n` (None for `*-1`).
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The reply as text, for simple strings, bulk strings and integers.
    pub fn text(&self) -> Option<String> {
        match self {
            Resp::Simple(s) => Some(s.clone()),
            Resp::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Resp::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The items of an array reply (empty for anything else).
    pub fn items(&self) -> &[Resp] {
        match self {
            Resp::Array(Some(items)) => items,
            _ => &[],
        }
    }

    /// The value of `field` in a flat field/value array (as `SENTINEL MASTER` returns).
    pub fn field(&self, field: &str) -> Option<String> {
        self.items()
            .chunks(2)
            .find(|pair| pair[0].text().as_deref() == Some(field))
            .and_then(|pair| pair.get(1)?.text())
    }
}

fn err(what: impl Into<String>) -> HarnessError {
    HarnessError::new(what)
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn line(reader: &mut BufReader<TcpStream>) -> Result<String, HarnessError> {
    let mut text = String::new();
    let n = reader.read_line(&mut text).await.map_err(|e| err(format!("read: {e}")))?;
    if n == 0 {
        return Err(err("the server closed the connection"));
    }
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

fn read(
    reader: &mut BufReader<TcpStream>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Resp, HarnessError>> + Send + '_>> {
    Box::pin(async move {
        let head = line(reader).await?;
        let (kind, rest) = head.split_at(head.len().min(1));
        let number = || rest.parse::<i64>().map_err(|_| err(format!("bad reply line {head:?}")));
        match kind {
            "+" => Ok(Resp::Simple(rest.to_string())),
            "-" => Ok(Resp::Error(rest.to_string())),
            ":" => Ok(Resp::Int(number()?)),
            "$" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Resp::Bulk(None));
                }
                let mut buf = vec![0u8; n as usize + 2];
                reader.read_exact(&mut buf).await.map_err(|e| err(format!("read: {e}")))?;
                buf.truncate(n as usize);
                Ok(Resp::Bulk(Some(buf)))
            }
            "*" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Resp::Array(None));
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(read(reader).await?);
                }
                Ok(Resp::Array(Some(items)))
            }
            _ => Err(err(format!("bad reply line {head:?}"))),
        }
    })
}

/// Sends one command to `127.0.0.1:port` (after `AUTH password` when given) and returns the
/// reply. A `-ERR` reply is an `Ok(Resp::Error(..))`; I/O failures and the deadline are errors.
pub async fn command(
    port: u16,
    password: Option<&str>,
    args: &[&str],
) -> Result<Resp, HarnessError> {
    let exchange = async {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| err(format!("connect to 127.0.0.1:{port}: {e}")))?;
        let mut reader = BufReader::new(stream);
        let mut request = Vec::new();
        if let Some(pw) = password {
            request.extend(encode(&["AUTH", pw]));
        }
        request.extend(encode(args));
        reader.get_mut().write_all(&request).await.map_err(|e| err(format!("write: {e}")))?;
        if password.is_some() {
            if let Resp::Error(e) = read(&mut reader).await? {
                return Err(err(format!("AUTH on 127.0.0.1:{port} failed: {e}")));
            }
        }
        read(&mut reader).await
    };
    tokio::time::timeout(COMMAND_TIMEOUT, exchange).await.map_err(|_| {
        err(format!("{} on 127.0.0.1:{port}: no answer within {COMMAND_TIMEOUT:?}", args.join(" ")))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_encoded_as_bulk_arrays() {
        assert_eq!(encode(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(encode(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn fields_of_flat_arrays() {
        let bulk = |s: &str| Resp::Bulk(Some(s.as_bytes().to_vec()));
        let reply = Resp::Array(Some(vec![bulk("ip"), bulk("h"), bulk("port"), bulk("1")]));
        assert_eq!(reply.field("port").as_deref(), Some("1"));
        assert_eq!(reply.field("nope"), None);
        assert_eq!(Resp::Int(3).text().as_deref(), Some("3"));
    }
}
