//! The shared conformance suite (busmq-testkit) over TLS: one `redis-server` listening only on
//! a TLS port that requires client certificates, every store verifying it against the test CA
//! and presenting the test client certificate (the `redis-tls` row of `cargo xtask
//! conformance`, here as tests so that `cargo test --workspace` runs it too).

use busmq_testkit::redis::{ClientCerts, RedisServer};
use busmq_testkit::tls::TestCerts;
use busmq_testkit::{FnBackend, SharedServers};
use std::sync::{Arc, OnceLock};

fn tls(servers: Option<&'static SharedServers>) -> impl busmq_testkit::Backend {
    let missing = servers.is_none().then(|| "redis-server is not installed".to_string());
    FnBackend::new("redis-tls", move || {
        let certs = TestCerts::shared();
        let store = busmq_redis::RedisStore::builder()
            .url(servers.expect("available").urls()[0].clone())
            .tls_ca_pem(certs.ca_pem.clone())
            .tls_client_cert(certs.client.cert_pem.clone(), certs.client.key_pem.clone())
            .build();
        Arc::new(store.expect("valid TLS options")) as _
    })
    // The property models run real time here: fewer sequences than on memory.
    .model_cases(8)
    .unavailable_because(missing)
}

static SERVERS: OnceLock<Option<SharedServers>> = OnceLock::new();
busmq_testkit::conformance!(tls(SharedServers::get_with(1, &SERVERS, || {
    RedisServer::builder().tls(TestCerts::shared(), ClientCerts::Required)
})));
