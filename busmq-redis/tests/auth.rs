//! Refused credentials and ACL rights (issue 18, SPEC E1): a missing or wrong password, a
//! password the server does not expect, and a user without the rights busmq needs are one
//! typed, non-retryable error, `AccessDenied`, that names the instance and never the password.
//! `connect` returns it and leaves the store (and a bus over it) disconnected, ready for a
//! later `connect`; credentials that break while connected are retried, and reported as
//! `AccessDenied` once per outage.

mod common;

use busmq_core::store::{NewEntry, PushBatch, Session, StoreEvent, StoreState};
use busmq_core::{Bus, BusState, Error, Store};
use busmq_redis::RedisStore;
use busmq_testkit::cluster::{RedisCluster, require_cli_or_skip};
use busmq_testkit::redis::{RedisServer, require_or_skip};
use common::{DEADLINE, queue, spec};
use std::time::Duration;
use tokio::sync::broadcast;

async fn server_with_password(test: &str, password: &str) -> Option<RedisServer> {
    require_or_skip(test)?;
    Some(RedisServer::builder().password(password).start().await.expect("redis-server starts"))
}

fn store(url: String) -> RedisStore {
    common::builder([url]).connect_timeout(Duration::from_secs(2)).build().expect("valid url")
}

/// The reason of an `AccessDenied` from `connect`, after checking that it names `target`,
/// is not retryable and left the store offline.
async fn denied(store: &RedisStore, target: &str) -> String {
    let result = tokio::time::timeout(DEADLINE, store.connect()).await.expect("connect answers");
    match result {
        Err(e @ Error::AccessDenied { .. }) => {
            assert!(!e.is_retryable() && !e.is_unapplied(), "{e}");
            let Error::AccessDenied { target: named, reason } = e else { unreachable!() };
            assert_eq!(named, target);
            assert_eq!(*store.state().borrow(), StoreState::Offline);
            reason
        }
        other => panic!("expected AccessDenied for {target}, got {other:?}"),
    }
}

/// Runs one command as the server's own (password-holding) admin connection.
async fn admin(server: &RedisServer, args: &[&str]) -> redis::Value {
    let mut conn = common::raw(server).await;
    redis::cmd(args[0]).arg(&args[1..]).query_async(&mut conn).await.expect("admin command")
}

async fn use_queue(store: &RedisStore) {
    let q = queue("auth");
    let att = store.attach(&q, &spec()).await.expect("attach");
    store
        .push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("x")]))
        .await
        .expect("push");
    assert_eq!(store.stat(&q).await.expect("stat").count, 1);
}

/// Every error event that arrives within `quiet`.
async fn errors_within(
    events: &mut broadcast::Receiver<StoreEvent>,
    quiet: Duration,
) -> Vec<Error> {
    let mut out = Vec::new();
    let until = tokio::time::Instant::now() + quiet;
    while let Ok(Ok(event)) = tokio::time::timeout_at(until, events.recv()).await {
        if let StoreEvent::Error(e) = event {
            out.push(e);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_password_is_access_denied_naming_the_instance() {
    let Some(secret) = server_with_password("a_missing_password_is_access_denied", "s3cret").await
    else {
        return;
    };
    let port = secret.port();
    let target = format!("127.0.0.1:{port}/0");
    // Without a password nothing answers NOAUTH before the scripts are sent, unless busmq
    // asks first; db 2 takes the redis crate's SELECT path instead.
    let bad = store(format!("redis://127.0.0.1:{port}"));
    let reason = denied(&bad, &target).await;
    assert!(reason.contains("requires a password and the URL has none"), "{reason}");
    let reason =
        denied(&store(format!("redis://127.0.0.1:{port}/2")), &format!("127.0.0.1:{port}/2")).await;
    assert!(reason.contains("requires a password and the URL has none"), "{reason}");

    // The failed connect left nothing running: the store stays offline while the server is
    // fixed, and connects when asked to.
    let mut events = bad.events();
    admin(&secret, &["CONFIG", "SET", "requirepass", ""]).await;
    assert!(common::quiet_states(&mut events, Duration::from_millis(500)).await.is_empty());
    assert_eq!(*bad.state().borrow(), StoreState::Offline);
    assert_eq!(bad.connect().await.expect("connect"), StoreState::Online);
    use_queue(&bad).await;
    common::stop(&bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_access_denied_and_never_printed() {
    let Some(secret) = server_with_password("a_wrong_password_is_access_denied", "s3cret").await
    else {
        return;
    };
    let port = secret.port();
    let target = format!("127.0.0.1:{port}/0");
    let bad = store(format!("redis://:hunter2wrong@127.0.0.1:{port}"));
    let result = bad.connect().await;
    let e = result.expect_err("a wrong password cannot connect");
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains("hunter2wrong"), "the password is printed: {text}");
        assert!(text.contains(&target), "{text}");
    }
    let Error::AccessDenied { reason, .. } = &e else { panic!("expected AccessDenied: {e:?}") };
    assert!(reason.contains("password or user name is wrong"), "{reason}");
    assert!(!e.is_retryable());

    let reason = denied(&store(format!("redis://nobody:pw@127.0.0.1:{port}")), &target).await;
    assert!(reason.contains("password or user name is wrong"), "{reason}");

    // Once the server takes that password, the same store connects.
    admin(&secret, &["CONFIG", "SET", "requirepass", "hunter2wrong"]).await;
    assert_eq!(bad.connect().await.expect("connect"), StoreState::Online);
    use_queue(&bad).await;
    common::stop(&bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_for_a_server_without_one_is_access_denied() {
    let Some(open) = common::server("a_password_for_a_server_without_one").await else {
        return;
    };
    let port = open.port();
    let bad = store(format!("redis://:surplus@127.0.0.1:{port}"));
    let reason = denied(&bad, &format!("127.0.0.1:{port}/0")).await;
    assert!(reason.contains("the server has none"), "{reason}");
    assert!(!reason.contains("surplus"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_the_rights_busmq_needs_is_access_denied() {
    let Some(secret) = server_with_password("a_user_without_the_rights", "s3cret").await else {
        return;
    };
    let port = secret.port();
    let target = format!("127.0.0.1:{port}/0");
    admin(
        &secret,
        &["ACL", "SETUSER", "noeval", "on", ">pw", "~*", "&*", "+@all", "-evalsha", "-eval"],
    )
    .await;
    admin(&secret, &["ACL", "SETUSER", "elsewhere", "on", ">pw", "~other:*", "&*", "+@all"]).await;
    admin(&secret, &["ACL", "SETUSER", "nosub", "on", ">pw", "~*", "resetchannels", "+@all"]).await;

    let noeval = store(format!("redis://noeval:pw@127.0.0.1:{port}"));
    let reason = denied(&noeval, &target).await;
    assert!(reason.starts_with("user \"noeval\" lacks permission: "), "{reason}");
    assert!(reason.contains("evalsha"), "{reason}");
    let reason = denied(&store(format!("redis://elsewhere:pw@127.0.0.1:{port}")), &target).await;
    assert!(reason.starts_with("user \"elsewhere\" lacks permission: "), "{reason}");
    // Redis: "... access one of the keys used as arguments"; Valkey: "... access a key".
    assert!(reason.contains(" key"), "{reason}");
    let reason = denied(&store(format!("redis://nosub:pw@127.0.0.1:{port}")), &target).await;
    assert!(reason.starts_with("user \"nosub\" lacks permission: "), "{reason}");
    assert!(reason.contains("channel"), "{reason}");

    // Granted the right, the same store connects.
    admin(&secret, &["ACL", "SETUSER", "noeval", "+evalsha"]).await;
    assert_eq!(noeval.connect().await.expect("connect"), StoreState::Online);
    use_queue(&noeval).await;

    // A right taken away while connected fails the calls that need it, with the same error.
    admin(&secret, &["ACL", "SETUSER", "noeval", "-evalsha"]).await;
    let e = noeval.stat(&queue("auth")).await.expect_err("EVALSHA is refused");
    match &e {
        Error::AccessDenied { target: named, reason } => {
            assert_eq!(named, &target);
            assert!(reason.contains("noeval") && reason.contains("evalsha"), "{reason}");
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    common::stop(&noeval).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_ends_disconnected_after_access_denied_and_can_connect_again() {
    let Some(secret) = server_with_password("a_bus_ends_disconnected", "s3cret").await else {
        return;
    };
    let port = secret.port();
    let bad = store(format!("redis://127.0.0.1:{port}"));
    // Two instances: one refusal is enough to refuse the connect, and both are stopped.
    let both = common::builder([secret.url(), format!("redis://127.0.0.1:{port}/1")]).build();
    let bus = Bus::new(both.unwrap());
    match bus.connect().await {
        Err(Error::AccessDenied { target, .. }) => {
            assert_eq!(target, format!("127.0.0.1:{port}/1"))
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    assert_eq!(bus.state(), BusState::Offline);
    assert!(!bus.is_online());
    assert!(bus.queue("q").unwrap().attach().await.is_err(), "a refused bus is not connected");
    drop(bus);

    let bus = Bus::new(bad);
    assert!(matches!(bus.connect().await, Err(Error::AccessDenied { .. })));
    assert_eq!(bus.state(), BusState::Offline);
    admin(&secret, &["CONFIG", "SET", "requirepass", ""]).await;
    assert_eq!(bus.connect().await.expect("connect again"), BusState::Online);
    let q = bus.queue("after-refusal").unwrap();
    q.attach().await.unwrap();
    q.push(&"x").await.unwrap();
    bus.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_break_later_are_retried_and_reported_once() {
    let Some(secret) = server_with_password("credentials_that_break_later", "s3cret").await else {
        return;
    };
    let s = common::store(&[&secret]).await;
    use_queue(&s).await;
    let mut events = s.events();
    // The password changes behind the store's back and its connections are dropped.
    admin(&secret, &["CONFIG", "SET", "requirepass", "changed"]).await;
    let mut conn = redis::Client::open(format!("redis://:changed@127.0.0.1:{}", secret.port()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for kind in ["normal", "pubsub"] {
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg(kind)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(common::next_state(&mut events).await, StoreState::Offline);
    // Several reconnect attempts (backoff 20-300 ms) fit in two seconds; one report.
    let errors = errors_within(&mut events, Duration::from_secs(2)).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    match &errors[0] {
        e @ Error::AccessDenied { reason, .. } => {
            assert!(!e.is_retryable());
            assert!(reason.contains("password or user name is wrong"), "{reason}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    // Retrying goes on: the password may be fixed on the server's side.
    let _: redis::Value = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    use_queue(&s).await;
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_credentials_are_checked_the_same_way() {
    let test = "cluster_credentials_are_checked_the_same_way";
    if require_or_skip(test).is_none() || !require_cli_or_skip(test) {
        return;
    }
    let cluster = RedisCluster::builder().shape(3, 0).start().await.expect("the cluster starts");
    for i in 0..cluster.node_count() {
        cluster
            .node_command(i, &["ACL", "SETUSER", "app", "on", ">apppw", "~*", "&*", "+@all"])
            .await
            .expect("ACL SETUSER");
    }
    let seeds = cluster.seeds().join(",");
    let target = {
        let mut sorted = cluster.seeds();
        sorted.sort();
        format!("cluster:{}", sorted.join(","))
    };
    for (url, expect) in [
        (format!("redis+cluster://app:wrong@{seeds}"), "password or user name is wrong"),
        (format!("redis+cluster://:surplus@{seeds}"), "the server has none"),
    ] {
        let reason = denied(&store(url), &target).await;
        assert!(reason.contains(expect), "{reason}");
    }
    let good = store(format!("redis+cluster://app:apppw@{seeds}"));
    assert_eq!(good.connect().await.expect("connect"), StoreState::Online);
    use_queue(&good).await;
    common::stop(&good).await;
    for i in 0..cluster.node_count() {
        cluster.node_command(i, &["CONFIG", "SET", "requirepass", "s3cret"]).await.unwrap();
    }
    let reason = denied(&store(format!("redis+cluster://{seeds}")), &target).await;
    assert!(reason.contains("requires a password and the URL has none"), "{reason}");
}
