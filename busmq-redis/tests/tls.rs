//! TLS end to end (issue 17) against real `redis-server` processes listening only on a TLS
//! port, with certificates made for the run: a verified handshake with a custom CA, mutual
//! TLS, and one named error per configuration mistake (an untrusted CA, a wrong host name, a
//! refused or missing client certificate, a plain client on a TLS port and a TLS client on a
//! plain port), each ending `connect` instead of retrying; and no key or password in any
//! `Debug`, `Display`, error text or log line.

mod common;

use busmq_core::store::{Session, StoreState};
use busmq_core::{Bus, ConsumeOptions, Error, ReliableOptions, TlsProblem};
use busmq_redis::{RedisStore, RedisStoreBuilder};
use busmq_testkit::redis::{ClientCerts, RedisServer, require_or_skip};
use busmq_testkit::tls::TestCerts;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// Everything this test binary logs (every level), to look for secrets in.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        busmq_core::support::lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

async fn tls_server(test: &str, clients: ClientCerts) -> Option<RedisServer> {
    require_or_skip(test)?;
    let server = RedisServer::builder()
        .tls(TestCerts::shared(), clients)
        // A second loopback address, which the server's certificate does not carry.
        .config("bind 127.0.0.1 127.0.0.2");
    Some(server.start().await.expect("redis-server starts with TLS"))
}

fn verified(url: String) -> RedisStoreBuilder {
    common::builder([url])
        .connect_timeout(Duration::from_secs(2))
        .tls_ca_pem(TestCerts::shared().ca_pem.clone())
}

fn with_client_cert(url: String) -> RedisStoreBuilder {
    let client = &TestCerts::shared().client;
    verified(url).tls_client_cert(client.cert_pem.clone(), client.key_pem.clone())
}

/// Push, consume reliably and acknowledge over `store`.
async fn work(store: RedisStore) {
    let bus = Bus::new(store);
    bus.connect().await.expect("connect over TLS");
    let queue = bus.queue(common::queue("tls").as_str()).expect("queue");
    queue.attach().await.expect("attach");
    queue.push(&7u32).await.expect("push");
    let options = ConsumeOptions::new().reliable(ReliableOptions::default()).max(1);
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    let delivery = consumer.next().await.expect("a delivery").expect("decodes");
    assert_eq!(*delivery.body(), 7);
    delivery.ack().await.expect("ack");
    queue.detach().await.expect("detach");
    bus.disconnect().await.expect("disconnect");
}

/// The TLS error `connect` ends with, after checking that it is not retryable and left the
/// store offline.
async fn tls_error(builder: RedisStoreBuilder) -> (TlsProblem, String) {
    let store = builder.build().expect("valid options");
    let result = tokio::time::timeout(common::DEADLINE, store.connect()).await;
    match result.expect("connect answers") {
        Err(e @ Error::Tls { .. }) => {
            assert!(!e.is_retryable() && !e.is_unapplied(), "{e}");
            assert_eq!(e.kind(), "tls");
            assert_eq!(*store.state().borrow(), StoreState::Offline);
            let Error::Tls { problem, reason, .. } = e else { unreachable!() };
            (problem, reason)
        }
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn a_verified_handshake_with_the_test_ca_carries_queues() {
    let Some(server) = tls_server("verified_handshake", ClientCerts::No).await else {
        return;
    };
    assert!(server.url().starts_with("rediss://127.0.0.1:"), "{}", server.url());
    work(verified(server.url()).build().expect("valid options")).await;
    // `localhost` is in the certificate as well.
    let by_name = format!("rediss://localhost:{}", server.tls_port().expect("a TLS port"));
    work(verified(by_name).build().expect("valid options")).await;
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_signed_by_the_servers_ca() {
    let Some(server) = tls_server("mutual_tls", ClientCerts::Required).await else {
        return;
    };
    work(with_client_cert(server.url()).build().expect("valid options")).await;

    let (problem, reason) = tls_error(verified(server.url())).await;
    assert_eq!(problem, TlsProblem::ClientCertificateRefused, "{reason}");
    let stranger = &TestCerts::shared().stranger;
    let foreign =
        verified(server.url()).tls_client_cert(stranger.cert_pem.clone(), stranger.key_pem.clone());
    let (problem, reason) = tls_error(foreign).await;
    assert_eq!(problem, TlsProblem::ClientCertificateRefused, "{reason}");
}

#[tokio::test]
async fn each_misconfiguration_is_a_named_error() {
    let Some(server) = tls_server("tls_misconfigurations", ClientCerts::Optional).await else {
        return;
    };
    let Some(plain) = common::server("tls_misconfigurations").await else {
        return;
    };
    let port = server.tls_port().expect("a TLS port");
    let certs = TestCerts::shared();

    let wrong_ca = common::builder([server.url()]).tls_ca_pem(certs.other_ca_pem.clone());
    let (problem, reason) = tls_error(wrong_ca).await;
    assert_eq!(problem, TlsProblem::UnknownAuthority, "{reason}");
    // No CA given: the system's roots do not know the test CA either.
    let (problem, _) = tls_error(common::builder([server.url()])).await;
    assert_eq!(problem, TlsProblem::UnknownAuthority);

    let (problem, reason) = tls_error(verified(format!("rediss://127.0.0.2:{port}"))).await;
    assert_eq!(problem, TlsProblem::WrongHostName, "{reason}");
    assert!(reason.contains("127.0.0.2"), "{reason}");

    let plain_client = common::builder([format!("redis://127.0.0.1:{port}")]);
    let (problem, reason) = tls_error(plain_client).await;
    assert_eq!(problem, TlsProblem::ServerRequiresTls, "{reason}");
    assert!(reason.contains("rediss://"), "{reason}");

    let tls_client = verified(format!("rediss://127.0.0.1:{}", plain.port()));
    let (problem, reason) = tls_error(tls_client).await;
    assert_eq!(problem, TlsProblem::ServerWithoutTls, "{reason}");

    // The same server, configured right, still works: nothing above was a server fault.
    work(verified(server.url()).build().expect("valid options")).await;
}

#[tokio::test]
async fn keys_and_passwords_never_appear_in_debug_display_or_errors() {
    const PASSWORD: &str = "tls-Pa55word-91c2";
    if require_or_skip("tls_secrets").is_none() {
        return;
    }
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .try_init()
        .expect("the only subscriber of this test binary");
    let certs = TestCerts::shared();
    let server = RedisServer::builder()
        .tls(certs, ClientCerts::Required)
        .password(PASSWORD)
        .start()
        .await
        .expect("redis-server starts with TLS");
    assert!(server.url().contains(PASSWORD));
    let key_body = certs.client.key_pem.lines().nth(1).expect("a PEM body line").to_string();
    let leaks = |text: &str| text.contains(PASSWORD) || text.contains(&key_body);

    let builder = with_client_cert(server.url());
    assert!(!leaks(&format!("{builder:?}")), "{builder:?}");
    let store = builder.clone().build().expect("valid options");
    assert!(!leaks(&format!("{store:?}")), "{store:?}");
    work(store).await;

    // A refused certificate (the stranger's) and a wrong password: neither error tells secrets.
    let stranger = &certs.stranger;
    let refused =
        verified(server.url()).tls_client_cert(stranger.cert_pem.clone(), stranger.key_pem.clone());
    let wrong_password = with_client_cert(server.url().replace(PASSWORD, "nope"));
    for builder in [refused, wrong_password] {
        let store = builder.build().expect("valid options");
        let e = store.connect().await.expect_err("refused");
        let mut text = format!("{e} {e:?}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        assert!(!leaks(&text), "{text}");
    }

    // A key that does not parse is the builder's error, and the error does not quote it.
    let bad_key = format!("-----BEGIN PRIVATE KEY-----\n{PASSWORD}\n-----END PRIVATE KEY-----\n");
    let e = verified(server.url())
        .tls_client_cert(certs.client.cert_pem.clone(), bad_key)
        .build()
        .expect_err("an unusable key");
    assert!(matches!(e, Error::InvalidOption { option: "tls", .. }), "{e:?}");
    assert!(!leaks(&format!("{e} {e:?}")), "{e}");

    let logged = String::from_utf8_lossy(&busmq_core::support::lock(&capture.0)).into_owned();
    assert!(logged.contains("TLS to redis cannot be set up"), "the refusal was logged");
    assert!(!leaks(&logged), "a secret was logged:\n{logged}");
}

#[test]
fn tls_settings_without_a_tls_url_are_refused() {
    let e = RedisStore::builder()
        .url("redis://127.0.0.1:6390")
        .tls_ca_pem(TestCerts::shared().ca_pem.clone())
        .build()
        .expect_err("no URL uses TLS");
    assert!(matches!(e, Error::InvalidOption { option: "tls", .. }), "{e:?}");
}

/// A refused `AUTH` is asked about again on a probe connection to read the server's reason;
/// the probe must use the store's TLS settings (custom CA, client certificate), or it cannot
/// connect and the error falls back to the generic "the password or user name is wrong".
#[tokio::test]
async fn a_refused_password_over_mutual_tls_gives_the_servers_reason() {
    let Some(server) = tls_server("tls_auth_reason", ClientCerts::Required).await else {
        return;
    };
    let url = server.url().replacen("://", "://:surplus-pw@", 1);
    let store = with_client_cert(url).build().expect("valid options");
    let e = tokio::time::timeout(common::DEADLINE, store.connect())
        .await
        .expect("connect answers")
        .expect_err("the server has no password set");
    let text = e.to_string();
    assert!(text.contains("the server has none set"), "{text}");
}
