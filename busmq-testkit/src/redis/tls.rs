//! A server's TLS listener: the configuration lines of `tls-port` and its certificates, and
//! whether clients must present a certificate of their own (mutual TLS).

use crate::tls::TestCerts;
use std::path::PathBuf;

/// Whether a TLS server asks clients for a certificate (`tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// No client certificate is asked for.
    No,
    /// A client may present one (it must then be valid).
    Optional,
    /// Every client must present one signed by the test CA (mutual TLS).
    Required,
}

/// The TLS side of a server: its certificate files and client policy.
#[derive(Debug, Clone)]
pub(crate) struct TlsListener {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    clients: ClientCerts,
    /// Keep the plain port as well (for the harness's own commands: `redis-cli --cluster`,
    /// the Sentinel checks); clients of the tests use the TLS port.
    pub(crate) plain_too: bool,
    /// The TLS port once chosen.
    pub(crate) port: u16,
}

impl TlsListener {
    pub(crate) fn new(certs: &TestCerts, clients: ClientCerts, plain_too: bool) -> TlsListener {
        TlsListener {
            cert: certs.server.cert_file.clone(),
            key: certs.server.key_file.clone(),
            ca: certs.ca_file.clone(),
            clients,
            plain_too,
            port: 0,
        }
    }

    /// The configuration lines after `port`/`bind`. Replication and the cluster bus go over
    /// TLS as well (they only matter for replicas, sentinels and cluster nodes), with the
    /// server's certificate as the client certificate they present.
    pub(crate) fn lines(&self) -> String {
        let auth = match self.clients {
            ClientCerts::No => "no",
            ClientCerts::Optional => "optional",
            ClientCerts::Required => "yes",
        };
        format!(
            "tls-port {}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
             tls-auth-clients {auth}\ntls-replication yes\ntls-cluster yes\n",
            self.port,
            self.cert.display(),
            self.key.display(),
            self.ca.display()
        )
    }
}
