//! The `redis-tls` row of `cargo xtask conformance`: every case over `rediss://` against a
//! `redis-server` that listens only on a TLS port and requires client certificates (mutual
//! TLS), with the server verified against the run's test CA (certificates from
//! `busmq_testkit::tls`).

use busmq_testkit::redis::{ClientCerts, RedisServer, RedisServerBuilder};
use busmq_testkit::tls::TestCerts;
use busmq_testkit::{Backend, FnBackend, SharedServers};
use std::sync::{Arc, OnceLock};

/// The row's name.
pub(super) const ROW: &str = "redis-tls";

fn server() -> RedisServerBuilder {
    RedisServer::builder().tls(TestCerts::shared(), ClientCerts::Required)
}

/// The row: stores that trust the test CA and present the test client certificate.
pub(super) fn backend(model_cases: u32) -> Arc<dyn Backend> {
    static SERVER: OnceLock<Option<SharedServers>> = OnceLock::new();
    let servers = SharedServers::get_with(1, &SERVER, server);
    let missing = servers.is_none().then(|| "redis-server is not installed".to_string());
    let backend = FnBackend::new(ROW, move || {
        let certs = TestCerts::shared();
        let url = servers.expect("available").urls()[0].clone();
        let store = busmq_redis::RedisStore::builder()
            .url(url)
            .tls_ca_pem(certs.ca_pem.clone())
            .tls_client_cert(certs.client.cert_pem.clone(), certs.client.key_pem.clone())
            .build();
        Arc::new(store.expect("valid TLS options")) as _
    });
    Arc::new(backend.model_cases(model_cases).unavailable_because(missing))
}
