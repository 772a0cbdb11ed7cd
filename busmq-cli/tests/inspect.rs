//! The looking commands, run as a user runs them against real redis-server processes: `ls`,
//! `stat`, `peek` and `tail` show queues and messages and never remove anything (SPEC O3).

mod common;

use common::{block_on, redis, sharded, start_until};
use serde_json::json;

#[test]
fn ls_lists_every_queue_of_the_namespace_with_depth_consumers_and_ttl() {
    let Some(env) = redis() else { return };
    env.run(&["push", "orders", "a", "b", "c"]).expect(0);
    env.run(&["push", "mails", "--ttl", "2m", "x"]).expect(0);
    env.run(&["push", "odd{name}%", "y"]).expect(0);

    let text = env.run(&["ls"]).expect(0);
    for expected in ["QUEUE", "DEPTH", "CONSUMERS", "TTL", "QUARANTINED", "orders", "odd{name}%"] {
        assert!(text.stdout.contains(expected), "{expected} in {}", text.stdout);
    }
    let ls = env.run(&["ls", "--json"]).expect(0).json();
    assert_eq!(ls["namespace"], json!(env.namespace));
    let queues = ls["queues"].as_array().expect("queues");
    let names: Vec<&str> = queues.iter().map(|q| q["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["mails", "odd{name}%", "orders"], "sorted, this namespace only");
    let orders = &queues[2];
    assert_eq!((orders["depth"].clone(), orders["consumers"].clone()), (json!(3), json!(0)));
    assert_eq!(orders["ttl_ms"], json!(30_000));
    assert_eq!(queues[0]["ttl_ms"], json!(120_000));
    assert_eq!(orders["quarantined"], json!(0));
}

#[test]
fn ls_walks_every_instance_of_a_sharded_store() {
    let Some(env) = sharded() else { return };
    let names: Vec<String> = (0..12).map(|i| format!("q{i:02}")).collect();
    for name in &names {
        env.run(&["push", name, "m"]).expect(0);
    }
    let ls = env.run(&["ls", "--json"]).expect(0).json();
    let listed: Vec<String> = ls["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(listed, names);
}

#[test]
fn ls_of_an_empty_namespace_says_so() {
    let Some(env) = redis() else { return };
    let run = env.run(&["ls"]).expect(0);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("no queues in namespace"), "{}", run.stderr);
    assert_eq!(env.run(&["ls", "--json"]).expect(0).json()["queues"], json!([]));
}

#[test]
fn stat_shows_counts_spec_ids_dead_letters_and_metadata() {
    let Some(env) = redis() else { return };
    let ids = env.run(&["push", "jobs", "--ttl", "90s", "a", "b"]).expect(0);
    let last: u64 = ids.lines()[1].parse().expect("an id per line");
    block_on(async {
        let bus = env.bus().await;
        let queue = bus.queue("jobs").unwrap();
        queue.attach().await.unwrap();
        queue.set_metadata("owner", "team-a").await.unwrap();
        queue.detach().await.unwrap();
        bus.disconnect().await.unwrap();
    });
    let stat = env.run(&["stat", "jobs", "--json"]).expect(0).json();
    assert_eq!(stat["name"], json!("jobs"));
    assert_eq!((stat["depth"].clone(), stat["pending"].clone()), (json!(2), json!(0)));
    assert_eq!(stat["ttl_ms"], json!(90_000));
    assert_eq!(stat["last_id"], json!(last));
    assert_eq!(stat["dead_letters"], json!(0));
    assert_eq!(stat["metadata"], json!({ "owner": "team-a" }));
    let text = env.run(&["stat", "jobs"]).expect(0).stdout;
    for expected in ["depth", "consumers", "90s", "last id", "dead letters", "metadata owner"] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn peek_shows_messages_from_a_position_and_removes_nothing() {
    let Some(env) = redis() else { return };
    let pushed = env.run(&["push", "log", "m0", "m1", "m2", "m3", "m4"]).expect(0);
    let ids: Vec<u64> = pushed.lines().iter().map(|l| l.parse().expect("id")).collect();

    let head = env.run(&["peek", "log", "-n", "2"]).expect(0);
    assert_eq!(head.lines(), [format!("{}  m0", ids[0]), format!("{}  m1", ids[1])]);
    let from = env.run(&["peek", "log", "--from", "3"]).expect(0);
    assert_eq!(from.lines(), [format!("{}  m3", ids[3]), format!("{}  m4", ids[4])]);
    let by_id = env.run(&["peek", "log", "--id", &ids[2].to_string(), "-n", "1", "--json"]);
    let doc = by_id.expect(0).json();
    assert_eq!(
        doc["messages"],
        json!([{ "id": ids[2], "body": "m2", "format": "json", "headers": {} }])
    );

    let stat = env.run(&["stat", "log", "--json"]).expect(0).json();
    assert_eq!(stat["depth"], json!(5), "peek removed nothing");
    assert_eq!(stat["consumers"], json!(0), "peek registered no consumer");
    let all = env.run(&["peek", "log", "-n", "100"]).expect(0);
    assert_eq!(all.lines().len(), 5);
}

#[test]
fn tail_follows_new_messages_without_consuming_them() {
    let Some(env) = redis() else { return };
    env.run(&["push", "events", "old"]).expect(0);
    let tail = start_until(env.command(&["tail", "events", "--count", "2"]), "following");
    env.run(&["push", "events", "new1", "new2", "new3"]).expect(0);
    let run = tail.finish().expect(0);
    let bodies: Vec<&str> =
        run.lines().iter().map(|l| l.split_once("  ").expect("id  body").1).collect();
    assert_eq!(bodies, ["new1", "new2"], "only what came after it started, up to --count");
    let stat = env.run(&["stat", "events", "--json"]).expect(0).json();
    assert_eq!(stat["depth"], json!(4), "tail consumed nothing");
}

#[test]
fn tail_stops_on_ctrl_c_and_prints_its_json_document() {
    let Some(env) = redis() else { return };
    env.run(&["push", "feed", "before"]).expect(0);
    let tail = start_until(env.command(&["tail", "feed", "--json"]), "following");
    env.run(&["push", "feed", "after"]).expect(0);
    // The message is read within an interval (200 ms); give it several before stopping.
    std::thread::sleep(std::time::Duration::from_secs(2));
    tail.interrupt();
    let doc = tail.finish().expect(0).json();
    assert_eq!(doc["queue"], json!("feed"));
    let bodies: Vec<&serde_json::Value> =
        doc["messages"].as_array().expect("messages").iter().map(|m| &m["body"]).collect();
    assert_eq!(bodies, [&json!("after")]);
}
