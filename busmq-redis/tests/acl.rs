//! Least-privilege ACL users (issue 17, SPEC S2): users made from `busmq_redis::acl::rules`
//! can run busmq in their own namespace, cannot read or disturb another namespace's queues
//! (every such call is `AccessDenied` and nothing is written), and a user missing one command
//! busmq needs gets `AccessDenied` naming it, at connect or at the first call that needs it.
//! On a Redis Cluster the cluster rules are enough, and on a Sentinel group's data nodes the
//! Sentinel rules: queues, notices (and on the cluster topics and the listing) work, and no
//! node logs a refusal.

mod common;

use busmq_core::store::Topics;
use busmq_core::store::{
    MetadataOp, NewEntry, Position, PushBatch, Receipt, Session, StoreState, TakeMode,
};
use busmq_core::{Error, QueueName, Store, TopicName};
use busmq_redis::RedisStore;
use busmq_redis::acl::{Deployment, rule_line, rules};
use busmq_testkit::cluster::{RedisCluster, require_cli_or_skip};
use busmq_testkit::redis::{RedisServer, require_or_skip};
use busmq_testkit::sentinel::SentinelSet;
use common::{DEADLINE, queue, spec};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::Notify;

const ADMIN_PASSWORD: &str = "admin-pw";

/// A server whose default user has a password the stores never use, with users `alice`
/// (namespace `tenant-a`) and `bob` (namespace `tenant-b`), password `pw`, made from the
/// documented rules.
async fn tenants(test: &str) -> Option<RedisServer> {
    require_or_skip(test)?;
    let mut builder = RedisServer::builder().password(ADMIN_PASSWORD);
    for (user, ns) in [("alice", "tenant-a"), ("bob", "tenant-b")] {
        builder =
            builder.config(format!("user {user} on >pw {}", rule_line(ns, Deployment::Plain)));
    }
    Some(builder.start().await.expect("redis-server starts"))
}

fn store_as(server: &RedisServer, user: &str, namespace: &str) -> RedisStore {
    common::builder([format!("redis://{user}:pw@127.0.0.1:{}", server.port())])
        .namespace(namespace)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("valid options")
}

async fn admin(server: &RedisServer, args: &[String]) {
    let mut conn = common::raw(server).await;
    let _: redis::Value =
        redis::cmd(&args[0]).arg(&args[1..]).query_async(&mut conn).await.expect("admin command");
}

/// `ACL SETUSER <user> <rules...>`.
async fn set_user(server: &RedisServer, user: &str, rules: Vec<String>) {
    let mut args = vec!["ACL".to_string(), "SETUSER".to_string(), user.to_string()];
    args.extend(rules);
    admin(server, &args).await;
}

/// Every key of `namespace` with its `DUMP`, as the admin sees them.
async fn snapshot(server: &RedisServer, namespace: &str) -> BTreeMap<String, Vec<u8>> {
    let mut conn = common::raw(server).await;
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{namespace}:*")).query_async(&mut conn).await.unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(&mut conn).await.unwrap();
        out.insert(key, dump);
    }
    out
}

/// The reason of an `AccessDenied` for `user`, after checking that `result` is one.
fn denied<T: std::fmt::Debug>(what: &str, user: &str, result: busmq_core::Result<T>) -> String {
    match result {
        Err(Error::AccessDenied { reason, .. }) => {
            assert!(reason.contains(&format!("user {user:?}")), "{what}: {reason}");
            reason
        }
        other => panic!("{what}: expected AccessDenied, got {other:?}"),
    }
}

async fn payloads(store: &RedisStore, q: &QueueName) -> Vec<String> {
    let read = store.read(q, Position::Start, 100).await.expect("read");
    read.entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect()
}

const RELIABLE: TakeMode =
    TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 10 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_read_or_disturb_another_namespace() {
    let Some(server) = tenants("a_user_cannot_read_or_disturb_another_namespace").await else {
        return;
    };
    let alice = store_as(&server, "alice", "tenant-a");
    assert_eq!(alice.connect().await.expect("alice connects"), StoreState::Online);
    let q = queue("owned");
    let att = alice.attach(&q, &spec()).await.expect("attach");
    let batch: Vec<_> = ["m1", "m2", "m3"].map(NewEntry::new).to_vec();
    alice.push(&q, &PushBatch::new(att.generation, &spec(), &batch)).await.expect("push");
    let set = MetadataOp::Set(vec![("owner".into(), "alice".into())]);
    alice.metadata(&q, set).await.expect("metadata");
    let before = snapshot(&server, "tenant-a").await;
    assert!(!before.is_empty());

    // Bob in his own namespace has every right busmq needs.
    let bob_own = store_as(&server, "bob", "tenant-b");
    assert_eq!(bob_own.connect().await.expect("bob connects"), StoreState::Online);
    let mine = queue("bob");
    let att_b = bob_own.attach(&mine, &spec()).await.expect("attach");
    bob_own.push(&mine, &PushBatch::new(att_b.generation, &spec(), &batch)).await.expect("push");
    assert_eq!(bob_own.take(&mine, 10, TakeMode::AtMostOnce).await.unwrap().entries.len(), 3);
    common::stop(&bob_own).await;

    // Pointed at Alice's namespace, Bob is refused at connect: the probes need its keys.
    let bob = store_as(&server, "bob", "tenant-a");
    let reason = denied("connect", "bob", bob.connect().await);
    // Redis: "... access one of the keys used as arguments"; Valkey: "... access a key".
    assert!(reason.contains(" key"), "{reason}");
    assert_eq!(*bob.state().borrow(), StoreState::Offline);

    // Connected while his rights covered both namespaces, then narrowed back to his own: every
    // call on Alice's queue is refused.
    let mut wider = rules("tenant-b", Deployment::Plain);
    wider.extend(["~tenant-a:*".to_string(), "&tenant-a:*".to_string()]);
    set_user(&server, "bob", wider).await;
    assert_eq!(bob.connect().await.expect("bob connects"), StoreState::Online);
    set_user(&server, "bob", rules("tenant-b", Deployment::Plain)).await;

    denied("stat", "bob", bob.stat(&q).await);
    denied("read", "bob", bob.read(&q, Position::Start, 10).await);
    denied("take", "bob", bob.take(&q, 10, TakeMode::AtMostOnce).await);
    denied("reliable take", "bob", bob.take(&q, 10, RELIABLE).await);
    let blocking = bob.blocking().expect("a blocking take");
    let (cancel, none) = (Notify::new(), Receipt::default());
    let wait = blocking.take_wait(&q, 10, Duration::from_secs(1), &cancel, &none);
    denied("blocking take", "bob", tokio::time::timeout(DEADLINE, wait).await.unwrap());
    denied("attach", "bob", bob.attach(&q, &spec()).await);
    let forged = [NewEntry::new("forged")];
    denied("push", "bob", bob.push(&q, &PushBatch::new(att.generation, &spec(), &forged)).await);
    let many: Vec<_> = (0..2000).map(|i| NewEntry::new(format!("forged {i}"))).collect();
    denied(
        "large push",
        "bob",
        bob.push(&q, &PushBatch::new(att.generation, &spec(), &many)).await,
    );
    denied("metadata get", "bob", bob.metadata(&q, MetadataOp::GetAll).await);
    let set = MetadataOp::Set(vec![("owner".into(), "bob".into())]);
    denied("metadata set", "bob", bob.metadata(&q, set).await);
    denied("flush", "bob", bob.flush(&q).await);
    denied("close", "bob", bob.close(&q, None).await);
    denied("watch", "bob", bob.watch(&q).await.map(|_| ()));
    common::stop(&bob).await;

    // Nor can Bob's own connection touch the keys or forge a notice on their channel.
    let url = format!("redis://bob:pw@127.0.0.1:{}", server.port());
    let mut raw =
        redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let meta = format!("tenant-a:{{{}}}:m", q.as_str());
    let notices = format!("tenant-a:{{{}}}:w", q.as_str());
    for cmd in [
        redis::cmd("HGETALL").arg(&meta).clone(),
        redis::cmd("DEL").arg(&meta).clone(),
        redis::cmd("PUBLISH").arg(&notices).arg("c").clone(),
    ] {
        let e = cmd.query_async::<redis::Value>(&mut raw).await.expect_err("refused");
        assert_eq!(e.code(), Some("NOPERM"), "{e}");
    }

    // Alice's queue holds exactly what it held.
    assert_eq!(snapshot(&server, "tenant-a").await, before);
    assert_eq!(payloads(&alice, &q).await, ["m1", "m2", "m3"]);
    assert_eq!(alice.stat(&q).await.expect("stat").count, 3);
    common::stop(&alice).await;
}

/// The rules for `tenant-a` without `+command`.
fn rules_without(command: &str) -> Vec<String> {
    let mut rules = rules("tenant-a", Deployment::Plain);
    rules.retain(|r| r != &format!("+{command}"));
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_missing_a_command_is_told_which() {
    let Some(server) = tenants("a_user_missing_a_command_is_told_which").await else {
        return;
    };
    // Refused at connect: the session loads the scripts before anything else.
    set_user(&server, "alice", rules_without("script|load")).await;
    let store = store_as(&server, "alice", "tenant-a");
    let reason =
        denied("connect", "alice", tokio::time::timeout(DEADLINE, store.connect()).await.unwrap());
    assert!(reason.contains("script|load"), "{reason}");

    // Refused at the first blocking take.
    set_user(&server, "alice", rules_without("blmpop")).await;
    assert_eq!(store.connect().await.expect("connect"), StoreState::Online);
    let q = queue("missing");
    let att = store.attach(&q, &spec()).await.expect("attach");
    let (cancel, none) = (Notify::new(), Receipt::default());
    let blocking = store.blocking().expect("a blocking take");
    let wait = blocking.take_wait(&q, 10, Duration::from_secs(2), &cancel, &none);
    let reason =
        denied("blocking take", "alice", tokio::time::timeout(DEADLINE, wait).await.unwrap());
    assert!(reason.contains("blmpop"), "{reason}");

    // Refused inside a script: the first push needs RPUSH.
    set_user(&server, "alice", rules_without("rpush")).await;
    let (one, sp) = ([NewEntry::new("x")], spec());
    let batch = PushBatch::new(att.generation, &sp, &one);
    let push = store.push(&q, &batch);
    let reason = denied("push", "alice", tokio::time::timeout(DEADLINE, push).await.unwrap());
    assert!(reason.contains(": rpush (in script push"), "{reason}");
    common::stop(&store).await;
}

/// Every refusal a node logged, but the redis crate's `CLIENT SETINFO` greeting (which it sends
/// whatever the rights and whose refusal it ignores).
async fn refusals(node: &RedisServer) -> Vec<String> {
    let mut conn = common::raw(node).await;
    let log: Vec<HashMap<String, redis::Value>> =
        redis::cmd("ACL").arg("LOG").arg(1000).query_async(&mut conn).await.unwrap();
    let text = |entry: &HashMap<String, redis::Value>, field: &str| {
        let value = entry.get(field).map(redis::from_redis_value_ref::<String>);
        value.and_then(Result::ok).unwrap_or_default()
    };
    log.iter()
        .filter(|entry| text(entry, "object") != "client|setinfo")
        .map(|entry| format!("{} {}", text(entry, "reason"), text(entry, "object")))
        .collect()
}

/// Whether `user` has a connection to `node` (the data nodes' default user needs no password,
/// so a store that ignored its user name would still work).
async fn connected_as(node: &RedisServer, user: &str) -> bool {
    let mut conn = common::raw(node).await;
    let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut conn).await.unwrap();
    clients.lines().any(|client| client.split(' ').any(|field| field == format!("user={user}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_rules_are_enough_on_a_cluster() {
    let test = "the_cluster_rules_are_enough_on_a_cluster";
    if require_or_skip(test).is_none() || !require_cli_or_skip(test) {
        return;
    }
    let cluster = RedisCluster::builder().shape(3, 0).start().await.expect("the cluster starts");
    let mut setuser = vec!["ACL".to_string(), "SETUSER".into(), "app".into(), "on".into()];
    setuser.push(">pw".into());
    setuser.extend(rules("tenant-c", Deployment::Cluster));
    let setuser: Vec<&str> = setuser.iter().map(String::as_str).collect();
    for i in 0..cluster.node_count() {
        cluster.node_command(i, &setuser).await.expect("ACL SETUSER");
    }
    let url = format!("redis+cluster://app:pw@{}", cluster.seeds().join(","));
    let store = RedisStore::builder()
        .url(url)
        .namespace("tenant-c")
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("valid options");
    assert_eq!(store.connect().await.expect("connect"), StoreState::Online);
    let q = queue("cluster");
    let att = store.attach(&q, &spec()).await.expect("attach");
    let mut notices = store.watch(&q).await.expect("watch");
    // Pushes publish only while someone waits for a notice: a take that comes back short, as
    // a consumer's before it waits (see Store::watch), asks for them.
    let empty = store.take(&q, 1, TakeMode::AtMostOnce).await.expect("a short take");
    assert!(empty.entries.is_empty());
    let batch: Vec<_> = ["m1", "m2"].map(NewEntry::new).to_vec();
    store.push(&q, &PushBatch::new(att.generation, &spec(), &batch)).await.expect("push");
    let notice = tokio::time::timeout(DEADLINE, futures::StreamExt::next(&mut notices)).await;
    assert!(notice.expect("a notice").is_some());
    assert_eq!(store.take(&q, 1, RELIABLE).await.expect("take").entries.len(), 1);
    let taken = store.take(&q, 10, TakeMode::AtMostOnce).await.expect("take");
    assert_eq!(taken.entries.len(), 1);
    let topic = TopicName::new("news").unwrap();
    let mut news = store.subscribe(&topic).await.expect("subscribe");
    assert_eq!(store.publish(&topic, "hello".into()).await.expect("publish"), 1);
    let got = tokio::time::timeout(DEADLINE, futures::StreamExt::next(&mut news)).await;
    assert_eq!(got.expect("a message").as_deref(), Some(&b"hello"[..]));
    drop(news);
    // The listing: CLUSTER SLOTS, then SCAN on every master.
    let (inspect, mut cursor, mut listed) = (store.inspect().expect("a listing"), None, Vec::new());
    loop {
        let page = inspect.list_queues(cursor.as_deref(), 1000).await.expect("list");
        listed.extend(page.queues);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert!(listed.contains(&q), "{listed:?}");
    assert_eq!(store.stat(&q).await.expect("stat").count, 0);
    store.close(&q, None).await.expect("close");
    let mut as_app = 0;
    for i in 0..cluster.node_count() {
        as_app += usize::from(connected_as(cluster.node(i), "app").await);
    }
    assert_eq!(as_app, cluster.node_count(), "the store connects to every master as app");
    common::stop(&store).await;
    for i in 0..cluster.node_count() {
        assert_eq!(refusals(cluster.node(i)).await, Vec::<String>::new(), "node {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentinel_rules_are_enough_on_the_data_nodes() {
    if require_or_skip("the_sentinel_rules_are_enough_on_the_data_nodes").is_none() {
        return;
    }
    let rules = rule_line("tenant-s", Deployment::Sentinel);
    let set = SentinelSet::builder()
        .data_config(format!("user app on >pw {rules}"))
        .start()
        .await
        .expect("the sentinel set starts");
    let store = RedisStore::builder()
        .sentinel(set.sentinel_addrs(), set.master_name())
        .data_username("app")
        .data_password("pw")
        .namespace("tenant-s")
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("valid options");
    assert_eq!(store.connect().await.expect("connect"), StoreState::Online);
    let q = queue("sentinel");
    let att = store.attach(&q, &spec()).await.expect("attach");
    let mut notices = store.watch(&q).await.expect("watch");
    // Pushes publish only while someone waits for a notice: a take that comes back short, as
    // a consumer's before it waits (see Store::watch), asks for them.
    let empty = store.take(&q, 1, TakeMode::AtMostOnce).await.expect("a short take");
    assert!(empty.entries.is_empty());
    let batch: Vec<_> = ["m1", "m2"].map(NewEntry::new).to_vec();
    store.push(&q, &PushBatch::new(att.generation, &spec(), &batch)).await.expect("push");
    let notice = tokio::time::timeout(DEADLINE, futures::StreamExt::next(&mut notices)).await;
    assert!(notice.expect("a notice").is_some());
    assert_eq!(store.take(&q, 1, RELIABLE).await.expect("take").entries.len(), 1);
    let taken = store.take(&q, 10, TakeMode::AtMostOnce).await.expect("take");
    assert_eq!(taken.entries.len(), 1);
    store.close(&q, None).await.expect("close");
    let mut as_app = false;
    for i in 0..set.node_count() {
        as_app |= connected_as(set.node(i), "app").await;
    }
    assert!(as_app, "the store connects to the master as app");
    common::stop(&store).await;
    for i in 0..set.node_count() {
        assert_eq!(refusals(set.node(i)).await, Vec::<String>::new(), "data node {i}");
    }
}
