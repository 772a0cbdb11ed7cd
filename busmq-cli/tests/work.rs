//! The working commands, run as a user runs them against real redis-server processes: `push`
//! (arguments and stdin), `consume` (at most once and reliable), `dlq ls` and `dlq redrive`,
//! `pub`/`sub`, `chat`, and `bench --memory`.

mod common;

use common::{Env, binary, block_on, output, redis, reject_next, start_until};
use serde_json::json;

fn bodies(run: &common::Run) -> Vec<String> {
    run.lines().iter().map(|l| l.split_once("  ").expect("id  body").1.to_string()).collect()
}

#[test]
fn push_takes_arguments_or_stdin_lines_and_prints_their_ids_in_order() {
    let Some(env) = redis() else { return };
    let args = env.run(&["push", "jobs", "one", "two"]).expect(0);
    let stdin = env.run_with_input(&["push", "jobs"], "three\nfour\n").expect(0);
    assert!(stdin.stderr.contains("pushed 2 message(s)"), "{}", stdin.stderr);
    let ids: Vec<u64> =
        args.lines().iter().chain(&stdin.lines()).map(|l| l.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let json = env.run(&["push", "jobs", "--json", "--raw", r#"{"task":5}"#]).expect(0).json();
    assert_eq!(json["queue"], json!("jobs"));
    assert_eq!(json["ids"].as_array().map(Vec::len), Some(1));
    let peek = env.run(&["peek", "jobs", "-n", "10"]).expect(0);
    assert_eq!(bodies(&peek), ["one", "two", "three", "four", r#"{"task":5}"#]);
}

#[test]
fn consume_removes_and_prints_up_to_max_and_reliable_acknowledges_what_it_printed() {
    let Some(env) = redis() else { return };
    env.run(&["push", "work", "a", "b", "c", "d"]).expect(0);
    let first = env.run(&["consume", "work", "--max", "2"]).expect(0);
    assert_eq!(bodies(&first), ["a", "b"]);
    assert_eq!(env.run(&["stat", "work", "--json"]).expect(0).json()["depth"], json!(2));
    let rest = env.run(&["consume", "work", "--reliable", "--idle", "1s", "--json"]).expect(0);
    let doc = rest.json();
    let got: Vec<&serde_json::Value> =
        doc["messages"].as_array().unwrap().iter().map(|m| &m["body"]).collect();
    assert_eq!(got, [&json!("c"), &json!("d")]);
    let stat = env.run(&["stat", "work", "--json"]).expect(0).json();
    assert_eq!(
        (stat["depth"].clone(), stat["pending"].clone()),
        (json!(0), json!(0)),
        "acknowledged"
    );
}

/// Dead-letters `payloads` from `queue` through the library: a reliable consumer rejects each.
fn make_dead_letters(env: &Env, queue: &str, payloads: &[&str]) {
    block_on(async {
        let bus = env.bus().await;
        let q = bus.queue(queue).unwrap();
        q.attach().await.unwrap();
        for p in payloads {
            q.push(p).await.unwrap();
        }
        bus.disconnect().await.unwrap();
    });
    reject_next(env, queue, payloads.len());
}

#[test]
fn dlq_ls_lists_dead_letters_with_reason_and_redrive_moves_them_back() {
    let Some(env) = redis() else { return };
    make_dead_letters(&env, "orders", &["o1", "o2", "o3"]);
    let listed = env.run(&["dlq", "ls", "orders", "--json"]).expect(0).json();
    assert_eq!(listed["dead_letter_queue"], json!("orders.dlq"));
    assert_eq!(listed["count"], json!(3));
    let letters = listed["dead_letters"].as_array().unwrap();
    assert_eq!(
        letters.iter().map(|l| l["body"].clone()).collect::<Vec<_>>(),
        [json!("o1"), json!("o2"), json!("o3")]
    );
    assert_eq!(letters[0]["source"], json!("orders"));
    assert_eq!(letters[0]["deliveries"], json!(1));
    assert!(letters[0]["reason"].as_str().unwrap().contains("bad input"), "{letters:?}");
    let table = env.run(&["dlq", "ls", "orders"]).expect(0);
    assert!(
        table.stdout.contains("REASON") && table.stdout.contains("bad input"),
        "{}",
        table.stdout
    );
    assert_eq!(
        env.run(&["dlq", "ls", "orders", "--json"]).expect(0).json()["count"],
        json!(3),
        "ls removed nothing"
    );

    let second = letters[1]["id"].as_u64().unwrap();
    let one = env.run(&["dlq", "redrive", "orders", "--id", &second.to_string()]).expect(0);
    assert_eq!(one.stdout.trim(), r#"moved 1 dead letter(s) back to "orders""#);
    assert_eq!(bodies(&env.run(&["peek", "orders"]).expect(0)), ["o2"]);
    let missing = env.run(&["dlq", "redrive", "orders", "--id", &second.to_string()]).expect(6);
    assert!(
        missing.stderr.contains(&format!("no dead letter with id {second}")),
        "{}",
        missing.stderr
    );

    let all = env.run(&["dlq", "redrive", "orders", "--json"]).expect(0).json();
    assert_eq!((all["moved"].clone(), all["missing"].clone()), (json!(2), json!([])));
    assert_eq!(bodies(&env.run(&["peek", "orders"]).expect(0)), ["o2", "o1", "o3"]);
    assert_eq!(env.run(&["dlq", "ls", "orders", "--json"]).expect(0).json()["count"], json!(0));
    let empty = env.run(&["dlq", "ls", "orders"]).expect(0);
    assert!(empty.stderr.contains("no dead letters"), "{}", empty.stderr);
}

#[test]
fn pub_reaches_a_live_sub() {
    let Some(env) = redis() else { return };
    let sub = start_until(env.command(&["sub", "news", "--count", "2"]), "subscribed");
    let published = env.run(&["pub", "news", "hello"]).expect(0);
    assert_eq!(published.stdout.trim(), r#"published to "news": 1 subscriber(s) received it"#);
    let json = env.run(&["pub", "news", "--json", "--raw", r#"{"n":1}"#]).expect(0).json();
    assert_eq!(json, json!({ "topic": "news", "receivers": 1 }));
    let run = sub.finish().expect(0);
    assert_eq!(run.lines(), ["hello", r#"{"n":1}"#]);
    let nobody = env.run(&["pub", "news", "late"]).expect(0);
    assert!(nobody.stdout.contains("0 subscriber(s)"), "{}", nobody.stdout);
}

#[test]
fn chat_peers_exchange_lines_whoever_speaks_first() {
    let Some(env) = redis() else { return };
    let mut listener = start_until(env.command(&["chat", "room", "--listen"]), "connected");
    listener.say("hi from the listener");
    let mut talker = start_until(env.command(&["chat", "room"]), "connected");
    assert_eq!(talker.next_line(), "hi from the listener", "sent before the talker came");
    talker.say("hello from the talker");
    assert_eq!(listener.next_line(), "hello from the talker");
    talker.finish().expect(0);
    listener.finish().expect(0);
    let json = env.run_with_input(&["chat", "room", "--json"], "bye\n").expect(0).json();
    assert_eq!(json["sent"], json!(["bye"]));
}

#[test]
fn bench_on_memory_reports_rates_and_latencies() {
    let run =
        output(binary_args(&["bench", "--memory", "-n", "2000", "--size", "64"]), None).expect(0);
    for expected in ["memory", "2000 x 64 bytes", "msg/s", "latency p50", "latency p99"] {
        assert!(run.stdout.contains(expected), "{expected} in {}", run.stdout);
    }
    let json =
        output(binary_args(&["bench", "--memory", "-n", "500", "--reliable", "--json"]), None)
            .expect(0)
            .json();
    assert_eq!((json["backend"].clone(), json["messages"].clone()), (json!("memory"), json!(500)));
    assert_eq!(json["mode"], json!("reliable"));
    assert!(json["end_to_end_per_sec"].as_f64().unwrap() > 0.0);
    assert!(
        json["latency_us"]["p99"].as_u64().unwrap() >= json["latency_us"]["p50"].as_u64().unwrap()
    );
}

#[test]
fn bench_on_redis_leaves_no_queue_behind() {
    let Some(env) = redis() else { return };
    let run = env.run(&["bench", "-n", "1000"]).expect(0);
    assert!(run.stdout.contains("redis") && run.stdout.contains("msg/s"), "{}", run.stdout);
    assert_eq!(env.run(&["ls", "--json"]).expect(0).json()["queues"], json!([]));
}

fn binary_args(args: &[&str]) -> std::process::Command {
    let mut command = binary();
    command.args(args);
    command
}
