//! TLS settings of a store: the certificate authority that server certificates must chain to
//! (instead of the system's roots) and the client certificate of mutual TLS, as PEM; and the
//! redis crate's clients made with them. Server verification is always on for `rediss://`
//! unless the URL itself asks otherwise (the redis crate's `#insecure`).

use redis::{Client, ConnectionAddr, ConnectionInfo, RedisResult};
use std::fmt;
use std::sync::Arc;

/// The PEM of a client certificate and of its private key.
#[derive(Clone)]
pub(crate) struct ClientIdentity {
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) key_pem: Vec<u8>,
}

/// A store's TLS settings; cheap to clone (every session's connections use them).
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    pub(crate) ca_pem: Option<Arc<Vec<u8>>>,
    pub(crate) client: Option<Arc<ClientIdentity>>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Certificates are public, keys are not; neither is worth printing whole.
        f.debug_struct("TlsSettings")
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.as_ref().map(|_| "(key: ***)"))
            .finish()
    }
}

impl TlsSettings {
    /// Whether anything was set (otherwise the redis crate's defaults apply: system roots, no
    /// client certificate).
    pub(crate) fn is_set(&self) -> bool {
        self.ca_pem.is_some() || self.client.is_some()
    }

    #[cfg(feature = "tls")]
    fn certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self.client.as_ref().map(|c| redis::ClientTlsConfig {
                client_cert: c.cert_pem.clone(),
                client_key: c.key_pem.clone(),
            }),
            root_cert: self.ca_pem.as_ref().map(|ca| ca.to_vec()),
        }
    }

    /// A client for `info` with these settings where its address uses TLS.
    pub(crate) fn client(&self, info: ConnectionInfo) -> RedisResult<Client> {
        #[cfg(feature = "tls")]
        if self.is_set() && matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
            return Client::build_with_tls(info, self.certificates());
        }
        Client::open(info)
    }

    /// The same for the redis crate's cluster client.
    pub(crate) fn cluster(
        &self,
        builder: redis::cluster::ClusterClientBuilder,
    ) -> redis::cluster::ClusterClientBuilder {
        #[cfg(feature = "tls")]
        if self.is_set() {
            return builder.certs(self.certificates());
        }
        builder
    }

    /// Checks that the PEM parses, so that a bad file is an error of the builder rather than of
    /// every connection attempt. The messages name what is wrong, never the key's content.
    pub(crate) fn check(&self) -> Result<(), String> {
        #[cfg(feature = "tls")]
        if self.is_set() {
            let probe = ConnectionAddr::TcpTls {
                host: "localhost".into(),
                port: 6379,
                insecure: false,
                tls_params: None,
            };
            let info = redis::IntoConnectionInfo::into_connection_info(probe)
                .map_err(|e| e.to_string())?;
            Client::build_with_tls(info, self.certificates()).map_err(|e| {
                let what = e.detail().unwrap_or("the PEM does not parse");
                format!("the CA or client certificate cannot be used: {what}")
            })?;
            return Ok(());
        }
        if self.is_set() {
            return Err("TLS support is not compiled in (enable the \"tls\" feature)".into());
        }
        Ok(())
    }
}
