//! Telling TLS problems apart when a connection cannot be opened (SPEC E1 for TLS): an
//! untrusted certificate, one for another host name, a client certificate the server refused,
//! and the two mismatches that TLS itself cannot name, because one side does not speak it:
//!
//! * a plain client against a TLS-only port sees the connection reset (Redis drops what is not
//!   a ClientHello), which any crash would also cause; so the port is asked again with a
//!   ClientHello, and a TLS record in answer names the problem;
//! * a TLS client against a plain port waits for a ServerHello that never comes (Redis waits
//!   for the end of an inline command) until the connect timeout; so the port is asked a plain
//!   `PING`, and a RESP answer names the problem.
//!
//! These are configuration errors: retrying cannot help, so they end `connect` like a refused
//! password does.

use busmq_core::TlsProblem;
use redis::{ConnectionAddr, RedisError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The TLS problem behind a failed connection attempt to `addr`, if it is one.
pub(crate) async fn explain(
    e: &RedisError,
    addr: &ConnectionAddr,
    timeout: Duration,
) -> Option<(TlsProblem, String)> {
    #[cfg(feature = "tls")]
    if let Some(found) = rustls_error(e).and_then(|r| from_rustls(r, addr)) {
        return Some(found);
    }
    // Only the two signatures of a mismatch are worth a probe: a stopped or unreachable
    // server (a refusal, a plain connect timeout) must not make every reconnection slower.
    let mismatch = match addr {
        ConnectionAddr::TcpTls { .. } => e.is_timeout() || e.is_connection_dropped(),
        _ => e.is_connection_dropped() && !e.is_connection_refusal(),
    };
    if !mismatch {
        return None;
    }
    match addr {
        ConnectionAddr::TcpTls { host, port, .. } => {
            let answer = ask(host, *port, b"PING\r\n", timeout).await?;
            matches!(answer.first(), Some(b'+' | b'-')).then(|| {
                let reason = format!(
                    "{host}:{port} answers plain Redis, not TLS: use redis:// for it, or the \
                     server's tls-port"
                );
                (TlsProblem::ServerWithoutTls, reason)
            })
        }
        #[cfg(feature = "tls")]
        ConnectionAddr::Tcp(host, port) => {
            let hello = client_hello()?;
            let answer = ask(host, *port, &hello, timeout).await?;
            // A TLS record: handshake (22) or alert (21), version 3.x.
            matches!(answer.as_slice(), [21 | 22, 3, ..]).then(|| {
                let reason = format!(
                    "{host}:{port} speaks only TLS: use rediss:// (with the server's CA) for it"
                );
                (TlsProblem::ServerRequiresTls, reason)
            })
        }
        _ => None,
    }
}

/// Sends `request` on a fresh connection and returns the first bytes of the answer.
async fn ask(host: &str, port: u16, request: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(request).await.ok()?;
        let mut buf = vec![0u8; 16];
        let n = stream.read(&mut buf).await.ok()?;
        buf.truncate(n);
        Some(buf)
    };
    tokio::time::timeout(timeout.min(Duration::from_secs(2)), exchange).await.ok().flatten()
}

#[cfg(feature = "tls")]
fn rustls_error(e: &RedisError) -> Option<&rustls::Error> {
    use std::error::Error;
    use std::sync::Arc;
    let source = e.source()?;
    let io = match source.downcast_ref::<Arc<dyn Error + Send + Sync>>() {
        Some(inner) => inner.downcast_ref::<std::io::Error>(),
        None => source.downcast_ref::<std::io::Error>(),
    }?;
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(feature = "tls")]
fn from_rustls(e: &rustls::Error, addr: &ConnectionAddr) -> Option<(TlsProblem, String)> {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error as E};
    let host = match addr {
        ConnectionAddr::TcpTls { host, .. } | ConnectionAddr::Tcp(host, _) => host.as_str(),
        _ => "the host",
    };
    let found = match e {
        E::InvalidCertificate(Cert::UnknownIssuer) => (
            TlsProblem::UnknownAuthority,
            "the server's certificate is not signed by a trusted CA (give the CA that signed it \
             with tls_ca_pem)"
                .to_string(),
        ),
        E::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => (
            TlsProblem::WrongHostName,
            format!(
                "the server's certificate is not valid for {host:?} (connect with a name or \
                 address it carries): {e}"
            ),
        ),
        E::InvalidCertificate(_) => (TlsProblem::BadCertificate, e.to_string()),
        E::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::UnsupportedCertificate
            | Alert::AccessDenied,
        ) => (
            TlsProblem::ClientCertificateRefused,
            format!(
                "the server refused this client's certificate, or wants one (mutual TLS: see \
                 tls_client_cert): {e}"
            ),
        ),
        E::InvalidMessage(_) => (
            TlsProblem::ServerWithoutTls,
            format!("the server's answer is not TLS (is this its tls-port?): {e}"),
        ),
        _ => (TlsProblem::Handshake, e.to_string()),
    };
    Some(found)
}

/// The first flight of a TLS client, to see whether a port answers TLS.
#[cfg(feature = "tls")]
fn client_hello() -> Option<Vec<u8>> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let mut out = Vec::new();
    conn.write_tls(&mut out).ok()?;
    Some(out)
}
