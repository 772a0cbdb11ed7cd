//! A minimal RESP PING over a blocking socket, so readiness checks need no Redis client crate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Where a server listens.
#[derive(Debug, Clone)]
pub(crate) enum Address<'a> {
    Tcp(u16),
    Unix(&'a Path),
}

/// What one PING attempt saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pong {
    /// The server answered `+PONG`: ready.
    Ready,
    /// The server answered something else (e.g. `-LOADING`): up, not ready yet.
    NotReady(String),
    /// Nothing listens, or the connection failed.
    Unreachable,
}

const STEP: Duration = Duration::from_millis(500);

fn exchange<S: Read + Write>(mut s: S, password: Option<&str>) -> std::io::Result<String> {
    let mut request = Vec::new();
    if let Some(pw) = password {
        request
            .extend_from_slice(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n", pw.len()).as_bytes());
    }
    request.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    s.write_all(&request)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    let lines = if password.is_some() { 2 } else { 1 };
    while answer.iter().filter(|b| **b == b'\n').count() < lines {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    Ok(text.lines().last().unwrap_or("").to_string())
}

/// Sends one PING (after AUTH when a password is given).
pub(crate) fn ping(addr: &Address<'_>, password: Option<&str>) -> Pong {
    let answer = match addr {
        Address::Tcp(port) => {
            let sock = ([127, 0, 0, 1], *port).into();
            TcpStream::connect_timeout(&sock, STEP).and_then(|s| {
                s.set_read_timeout(Some(STEP))?;
                s.set_write_timeout(Some(STEP))?;
                exchange(s, password)
            })
        }
        Address::Unix(path) => UnixStream::connect(path).and_then(|s| {
            s.set_read_timeout(Some(STEP))?;
            s.set_write_timeout(Some(STEP))?;
            exchange(s, password)
        }),
    };
    match answer {
        Ok(line) if line == "+PONG" => Pong::Ready,
        Ok(line) if line.is_empty() => Pong::Unreachable,
        Ok(line) => Pong::NotReady(line),
        Err(_) => Pong::Unreachable,
    }
}
