//! The CLI against every kind of deployment its URLs name, with real processes: a unix
//! socket (`redis+unix://`), a Sentinel-managed master with passwords (`redis+sentinel://`)
//! and a Redis Cluster (`redis+cluster://`, whose `ls` walks every master). Plain instances,
//! one or several, are covered by the other test files.

mod common;

use busmq_testkit::SharedCluster;
use busmq_testkit::redis::{RedisServer, require_or_skip};
use busmq_testkit::sentinel::SentinelSet;
use busmq_testkit::support::unique;
use common::{Env, block_on};
use serde_json::json;
use std::sync::OnceLock;

/// Pushes to `names`, then checks that `ls` lists exactly them and `peek` reads one back.
fn push_list_and_peek(env: &Env, names: &[String]) {
    for name in names {
        env.run(&["push", name, &format!("to {name}")]).expect(0);
    }
    let ls = env.run(&["ls", "--json"]).expect(0).json();
    let listed: Vec<&str> = ls["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names.iter().map(String::as_str).collect::<Vec<_>>());
    let peek = env.run(&["peek", &names[0], "--json"]).expect(0).json();
    assert_eq!(peek["messages"][0]["body"], json!(format!("to {}", names[0])));
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("queue-{i:02}")).collect()
}

#[test]
fn a_unix_socket_url_works() {
    if require_or_skip("a_unix_socket_url_works").is_none() {
        return;
    }
    let server = block_on(RedisServer::builder().unix_socket(true).start()).expect("starts");
    let url = server.url();
    assert!(url.starts_with("redis+unix://"), "{url}");
    let env = Env { urls: vec![url], namespace: unique("cli") };
    push_list_and_peek(&env, &names(3));
}

#[test]
fn a_sentinel_group_with_passwords_works_and_shows_neither() {
    if require_or_skip("a_sentinel_group_with_passwords_works").is_none() {
        return;
    }
    let builder =
        SentinelSet::builder().data_password("data-Secret1").sentinel_password("sentinel-Secret2");
    let set = block_on(builder.start()).expect("the sentinel set starts");
    let env = Env { urls: vec![set.url()], namespace: unique("cli") };
    push_list_and_peek(&env, &names(3));
    let stat = env.run(&["stat", "queue-00"]).expect(0);
    for secret in ["data-Secret1", "sentinel-Secret2"] {
        assert!(!stat.stdout.contains(secret) && !stat.stderr.contains(secret), "{stat:?}");
    }
    let wrong = Env { urls: vec![set.url().replace("data-Secret1", "wrong-Secret3")], ..env };
    let denied = wrong.run(&["ls"]).expect(5);
    assert!(!denied.stderr.contains("wrong-Secret3"), "{}", denied.stderr);
}

#[test]
fn ls_walks_every_master_of_a_cluster() {
    static CLUSTER: OnceLock<Option<SharedCluster>> = OnceLock::new();
    let Some(cluster) = SharedCluster::get(&CLUSTER) else { return };
    let env = Env { urls: vec![cluster.url().to_string()], namespace: unique("cli") };
    // Enough names that every master holds some of them.
    push_list_and_peek(&env, &names(24));
}
