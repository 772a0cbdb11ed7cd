//! Certificates for the TLS tests, made at run time with rcgen: a test CA, a server certificate
//! for `127.0.0.1` and `localhost` signed by it, a client certificate signed by it (mutual TLS),
//! and a second, unrelated CA (what a client trusting the wrong authority holds). They are
//! written as PEM files into a directory of their own, which `redis-server` reads
//! (`tls-cert-file`, ...), and kept as text for the clients.

use crate::redis::HarnessError;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// One certificate (chain of one) and its private key, as PEM text and as files.
#[derive(Clone)]
pub struct CertPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// Where the certificate was written.
    pub cert_file: PathBuf,
    /// Where the key was written.
    pub key_file: PathBuf,
}

impl fmt::Debug for CertPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Test keys, but the habit matters: a key is never printed.
        f.debug_struct("CertPair")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// The certificates of one test run (see the module documentation).
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The directory holding every file.
    pub dir: PathBuf,
    /// The test CA's certificate, PEM: what clients and servers trust.
    pub ca_pem: String,
    /// Where the test CA's certificate was written.
    pub ca_file: PathBuf,
    /// The server's certificate (`127.0.0.1`, `localhost`; usable as a client certificate too,
    /// as Redis presents it to masters and cluster peers).
    pub server: CertPair,
    /// A client certificate signed by the test CA.
    pub client: CertPair,
    /// A CA that signed nothing here.
    pub other_ca_pem: String,
    /// A client certificate signed by the unrelated CA (a server must refuse it).
    pub stranger: CertPair,
}

fn failed(what: &str, e: impl fmt::Display) -> HarnessError {
    HarnessError::new(format!("test certificates: {what}: {e}"))
}

fn authority(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, HarnessError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed(name, e))?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().map_err(|e| failed(name, e))?;
    CertifiedIssuer::self_signed(params, key).map_err(|e| failed(name, e))
}

fn leaf(
    dir: &Path,
    name: &str,
    names: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> Result<CertPair, HarnessError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).map_err(|e| failed(name, e))?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().map_err(|e| failed(name, e))?;
    let cert = params.signed_by(&key, issuer).map_err(|e| failed(name, e))?;
    let pair = CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_file: dir.join(format!("{name}.pem")),
        key_file: dir.join(format!("{name}.key")),
    };
    write(&pair.cert_file, &pair.cert_pem)?;
    write(&pair.key_file, &pair.key_pem)?;
    Ok(pair)
}

fn write(path: &Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(|e| failed(&path.display().to_string(), e))
}

impl TestCerts {
    /// Makes a fresh set in a new temporary directory.
    pub fn generate() -> Result<TestCerts, HarnessError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "busmq-tls-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| failed("directory", e))?;
        let ca = authority("busmq test CA")?;
        let other = authority("unrelated CA")?;
        let ca_file = dir.join("ca.pem");
        write(&ca_file, &ca.pem())?;
        write(&dir.join("other-ca.pem"), &other.pem())?;
        Ok(TestCerts {
            ca_pem: ca.pem(),
            ca_file,
            server: leaf(&dir, "server", &["127.0.0.1", "localhost"], &ca)?,
            client: leaf(&dir, "client", &["busmq-client"], &ca)?,
            other_ca_pem: other.pem(),
            stranger: leaf(&dir, "stranger", &["busmq-client"], &other)?,
            dir,
        })
    }

    /// One set for the whole process (the first call makes it; its directory stays until the
    /// machine's temporary files are cleaned, like the servers' logs of a failed run).
    pub fn shared() -> &'static TestCerts {
        static CERTS: OnceLock<TestCerts> = OnceLock::new();
        CERTS.get_or_init(|| TestCerts::generate().expect("test certificates"))
    }
}
