//! Building stores: URL and option errors are typed and name what is wrong; unix sockets,
//! passwords and namespaces work; building never connects.

mod common;

use busmq_core::store::{NewEntry, PushBatch, Session, StoreState};
use busmq_core::{Error, NameKind, Store};
use busmq_redis::RedisStore;
use busmq_testkit::redis::RedisServer;
use common::{queue, spec};
use std::time::Duration;

fn invalid_url(r: Result<RedisStore, Error>) -> (String, String) {
    match r {
        Err(Error::InvalidUrl { url, reason }) => (url, reason),
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[test]
fn bad_urls_and_options_are_typed_errors() {
    let (url, reason) = invalid_url(RedisStore::open("http://localhost:6379"));
    assert_eq!(url, "http://localhost:6379");
    assert!(reason.contains("scheme"), "{reason}");
    let (url, _) = invalid_url(RedisStore::from_urls(["redis://ok:1", "redis://:pw@bad:port"]));
    assert_eq!(url, "redis://:***@bad:port", "the failing URL is named, without its password");
    let (_, reason) =
        invalid_url(RedisStore::from_urls(["redis://h:7000", "redis://user:pw@H:7000/0"]));
    assert!(reason.contains("listed twice"), "{reason}");
    let e = RedisStore::from_urls(Vec::<String>::new()).unwrap_err();
    assert!(matches!(e, Error::InvalidOption { option: "urls", .. }), "{e}");
    let e = RedisStore::builder().url("redis://h").namespace("a{b}").build().unwrap_err();
    assert!(matches!(e, Error::InvalidName { kind: NameKind::Namespace, .. }), "{e}");
    let e = RedisStore::builder().url("redis://h").page_size(1).build().unwrap_err();
    assert!(matches!(e, Error::InvalidOption { option: "page_size", .. }), "{e}");
    let e = RedisStore::builder().url("redis://h").response_timeout(Duration::ZERO).build();
    assert!(matches!(e, Err(Error::InvalidOption { option: "response_timeout", .. })));
    // Ports name their problem in every URL form, and passwords stay hidden.
    for (url, named, problem) in [
        ("redis://h:99999", "redis://h:99999", "port 99999 is out of range (1-65535)"),
        ("redis://h:abc", "redis://h:abc", "port \"abc\" is not a number"),
        ("redis://:pw@h:0/2", "redis://:***@h:0/2", "port 0 is not a valid port"),
        ("redis://[::1]:65536", "redis://[::1]:65536", "port 65536 is out of range (1-65535)"),
        ("redis+cluster://a:1,b:0", "redis+cluster://a:1,b:0", "seed port 0 is not a valid port"),
        (
            "redis+sentinel://u:pw@[::1]:x/m",
            "redis+sentinel://u:***@[::1]:x/m",
            "sentinel port \"x\" is not a number",
        ),
    ] {
        let (url, reason) = invalid_url(RedisStore::open(url));
        assert_eq!(url, named);
        assert!(reason.ends_with(problem), "{url}: {reason}");
    }
    let (_, reason) = invalid_url(RedisStore::builder().cluster(["h:7000", "h:99999"]).build());
    assert!(reason.ends_with("seed port 99999 is out of range (1-65535)"), "{reason}");
    let (_, reason) = invalid_url(RedisStore::builder().sentinel(["h:0"], "m").build());
    assert!(reason.ends_with("sentinel port 0 is not a valid port"), "{reason}");
    // Building checks but never connects: an unreachable host is fine here.
    let s = RedisStore::from_urls(["redis://unreachable.invalid:1", "redis+unix:///nowhere"]);
    let s = s.unwrap();
    assert_eq!(*s.state().borrow(), StoreState::Offline);
    assert_eq!(s.instances(), ["unreachable.invalid:1/0", "unix:/nowhere/0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_sockets_and_passwords_work() {
    let Some(_) = common::server("unix_sockets_and_passwords_work").await else {
        return;
    };
    let unix = RedisServer::builder().unix_socket(true).start().await.unwrap();
    assert!(unix.url().starts_with("redis+unix://"));
    let secret = RedisServer::builder().password("s3cret").start().await.unwrap();
    let s = common::store(&[&unix, &secret]).await;
    for i in 0..10 {
        let q = queue(&format!("both{i}"));
        let att = s.attach(&q, &spec()).await.unwrap();
        s.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("x")])).await.unwrap();
        assert_eq!(s.stat(&q).await.unwrap().count, 1);
    }
    common::stop(&s).await;

    // A wrong password is refused at once with a typed error naming the instance, not a hang
    // (tests/auth.rs has the other refusals).
    let url = format!("redis://:not-it@127.0.0.1:{}", secret.port());
    let bad = common::builder([url]).build().unwrap();
    let refused = bad.connect().await.expect_err("a wrong password cannot connect");
    assert!(matches!(refused, Error::AccessDenied { .. }), "{refused:?}");
    assert!(refused.to_string().contains(&format!("127.0.0.1:{}", secret.port())), "{refused}");
    assert!(!refused.to_string().contains("not-it"), "no password in errors: {refused}");
    assert_eq!(*bad.state().borrow(), StoreState::Offline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_keep_applications_apart() {
    let Some(srv) = common::server("namespaces_keep_applications_apart").await else {
        return;
    };
    let a = common::store_with(common::builder([srv.url()]).namespace("app-a")).await;
    let b = common::store_with(common::builder([srv.url()]).namespace("app-b")).await;
    let q = queue("shared-name");
    let att = a.attach(&q, &spec()).await.unwrap();
    a.push(&q, &PushBatch::new(att.generation, &spec(), &[NewEntry::new("x")])).await.unwrap();
    assert!(!b.stat(&q).await.unwrap().exists);
    assert!(!b.attach(&q, &spec()).await.unwrap().existed);
    let mut raw = common::raw(&srv).await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("app-a:*").query_async(&mut raw).await.unwrap();
    assert!(keys.iter().any(|k| k == &format!("app-a:{{{}}}:m", q.as_str())), "{keys:?}");
    common::stop(&a).await;
    common::stop(&b).await;
}
