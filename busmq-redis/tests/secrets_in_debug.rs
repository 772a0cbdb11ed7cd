//! Passwords never show in `Debug`, `Display` or errors (SPEC S3): every way to configure a
//! store with a password (a plain URL, an ACL user, several shards, a unix socket, Sentinel
//! with data and sentinel passwords in the URL or the builder, Cluster) is printed as a
//! builder, a store and a bus, broken in every way a URL can be refused, and connected to
//! nothing (refused connections) and to a real server that wants the password. The tracing
//! output is `secrets_in_logs.rs`'s, the CLI's output busmq-cli's `errors.rs` and
//! `deployments.rs`.

mod common;

use busmq_core::store::Session;
use busmq_core::{Bus, Error};
use busmq_redis::{RedisStore, RedisStoreBuilder};
use busmq_testkit::redis::{RedisServer, require_or_skip};
use std::time::Duration;

/// The data nodes' password.
const PW: &str = "Data-S3cret-9b1f";
/// The sentinels' password.
const SPW: &str = "Sent-S3cret-4e07";

fn assert_hidden(what: &str, text: &str) {
    for secret in [PW, SPW] {
        assert!(!text.contains(secret), "{what} shows a password: {text}");
    }
}

fn assert_error_hidden(what: &str, error: &Error) {
    assert_hidden(what, &error.to_string());
    assert_hidden(what, &format!("{error:?}"));
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Every configuration that holds a password, with its addresses at `port` (closed or not).
fn configurations(port: u16) -> Vec<(String, RedisStoreBuilder)> {
    let quick = |b: RedisStoreBuilder| b.connect_timeout(Duration::from_millis(500));
    let url = |u: String| (u.clone(), quick(RedisStore::builder().url(u)));
    vec![
        url(format!("redis://:{PW}@127.0.0.1:{port}/2")),
        url(format!("redis://busmq-user:{PW}@127.0.0.1:{port}")),
        url(format!("redis+unix:///tmp/busmq-none-{port}.sock?db=1&pass={PW}")),
        (
            "two shards".into(),
            quick(RedisStore::builder().urls([
                format!("redis://:{PW}@127.0.0.1:{port}"),
                format!("redis://u2:{PW}@localhost:{port}/1"),
            ])),
        ),
        url(format!(
            "redis+sentinel://data-user:{PW}@127.0.0.1:{port},localhost:{port}/mymaster/1\
             ?sentinel_username=s-user&sentinel_password={SPW}"
        )),
        (
            "sentinel builder".into(),
            quick(
                RedisStore::builder()
                    .sentinel([format!("127.0.0.1:{port}")], "mymaster")
                    .sentinel_username("s-user")
                    .sentinel_password(SPW)
                    .data_username("data-user")
                    .data_password(PW),
            ),
        ),
        url(format!("redis+cluster://cluster-user:{PW}@127.0.0.1:{port},localhost:{port}")),
        url(format!("redis+cluster://:{PW}@127.0.0.1:{port}")),
    ]
}

#[test]
fn builders_stores_and_buses_print_no_password() {
    for (what, builder) in configurations(closed_port()) {
        assert_hidden(&what, &format!("{builder:?}"));
        let store = builder.build().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_hidden(&what, &format!("{store:?}"));
        assert_hidden(&what, &format!("{:?}", store.instances()));
        let bus = Bus::new(store);
        assert_hidden(&what, &format!("{bus:?}"));
    }
}

/// Every refused URL names it with the password hidden, whatever is wrong with it.
#[test]
fn refused_urls_name_the_url_without_its_password() {
    let bad = [
        format!("http://u:{PW}@127.0.0.1:6379"),
        format!("redis://u:{PW}@127.0.0.1:99999"),
        format!("redis://u:{PW}@127.0.0.1:0"),
        format!("redis://u:{PW}@127.0.0.1:6379/notadb"),
        format!("redis://:{PW}@"),
        format!("redis://:{PW}@h1,h2"),
        format!("redis://u:{PW}@[::1"),
        format!("redis://u:{PW}@::1:6379"),
        // Unescaped `/` and `#` in a password (users paste them).
        format!("redis://u:a/{PW}@127.0.0.1:6379"),
        format!("redis://u:{PW}/x@127.0.0.1"),
        format!("redis://u:{PW}#x@127.0.0.1:6379"),
        format!("redis+unix:///tmp/x.sock?db=x&pass={PW}"),
        format!("redis+sentinel://u:{PW}@127.0.0.1:99999/m?sentinel_password={SPW}"),
        format!("redis+sentinel://u:{PW}@127.0.0.1/?sentinel_password={SPW}"),
        format!("redis+sentinel://u:{PW}%zz@127.0.0.1/m?sentinel_password={SPW}"),
        format!("redis+sentinel://u:{PW}%ff@127.0.0.1/m?sentinel_password={SPW}"),
        format!("redis+sentinel://u:{PW}@127.0.0.1/m?sentinel_password={SPW}&bogus=1"),
        format!("redis+cluster://u:{PW}@127.0.0.1:0,h2"),
        format!("redis+cluster://u:{PW}@"),
        format!("redis+cluster://u:{PW}@127.0.0.1/3"),
    ];
    for url in &bad {
        match RedisStore::builder().url(url.clone()).build() {
            Err(error) => {
                assert!(matches!(error, Error::InvalidUrl { .. }), "{url}: {error:?}");
                assert_error_hidden(url, &error);
            }
            Ok(store) => assert_hidden(url, &format!("{store:?}")),
        }
    }
    // A refused URL next to a good one with a password: neither shows.
    let error = RedisStore::builder()
        .urls([format!("redis://:{PW}@127.0.0.1:6379"), format!("redis://:{PW}@127.0.0.1:6379")])
        .build()
        .unwrap_err();
    assert_error_hidden("a duplicate", &error);
}

/// Connecting to nothing: the refusals, timeouts and the bus's errors name the instance, not
/// the password.
#[tokio::test]
async fn failed_connections_report_no_password() {
    let port = closed_port();
    for i in 0..configurations(port).len() {
        let (what, builder) = configurations(port).swap_remove(i);
        let store = builder.build().expect("valid");
        let result = tokio::time::timeout(common::DEADLINE, store.connect()).await;
        match result.expect("connect answers within the deadline") {
            Err(error) => assert_error_hidden(&what, &error),
            // A store that comes up degraded and reconnects in the background is fine too.
            Ok(state) => assert_hidden(&what, &format!("{state:?}")),
        }
        let (_, builder) = configurations(port).swap_remove(i);
        let bus = Bus::new(builder.build().expect("valid"));
        let result = tokio::time::timeout(common::DEADLINE, bus.connect()).await;
        if let Err(error) = result.expect("connect answers within the deadline") {
            assert_error_hidden(&what, &error);
        }
        assert_hidden(&what, &format!("{bus:?} {:?}", bus.state()));
        let _ = tokio::time::timeout(common::DEADLINE, bus.disconnect()).await;
    }
}

/// A real server that wants the password: the wrong one and the right one (an ACL user's),
/// through the store and a bus, print neither.
#[tokio::test]
async fn a_server_with_a_password_sees_it_and_nothing_prints_it() {
    if require_or_skip("a_server_with_a_password_sees_it_and_nothing_prints_it").is_none() {
        return;
    }
    let server = RedisServer::builder().password(PW).start().await.expect("redis-server starts");
    let port = server.port();
    let mut admin = common::raw(&server).await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "acl-user", "on", &format!(">{PW}"), "~*", "&*", "+@all"][..])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let wrong = SPW;
    for url in [
        format!("redis://:{wrong}@127.0.0.1:{port}"),
        format!("redis://acl-user:{wrong}@127.0.0.1:{port}"),
    ] {
        let store = common::builder([url.clone()]).build().expect("valid");
        let error = tokio::time::timeout(common::DEADLINE, store.connect())
            .await
            .expect("connect answers")
            .expect_err("a wrong password is refused");
        assert!(matches!(error, Error::AccessDenied { .. }), "{error:?}");
        assert_error_hidden(&url, &error);
        assert_hidden(&url, &format!("{store:?}"));
    }
    for url in [
        format!("redis://:{PW}@127.0.0.1:{port}"),
        format!("redis://acl-user:{PW}@127.0.0.1:{port}/1"),
    ] {
        let bus = Bus::new(common::builder([url.clone()]).build().expect("valid"));
        let state = bus.connect().await.expect("the right password connects");
        assert_hidden(&url, &format!("{bus:?} {state:?}"));
        let queue = bus.queue("secrets").expect("queue");
        queue.attach().await.expect("attach");
        queue.push(&"m").await.expect("push");
        assert_hidden(&url, &format!("{queue:?} {:?}", queue.stat().await.expect("stat")));
        queue.close().await.expect("close");
        // A failing call on a connected bus.
        let error = queue.push(&"late").await.expect_err("a closed queue refuses pushes");
        assert_error_hidden(&url, &error);
        bus.disconnect().await.expect("disconnect");
    }
}
