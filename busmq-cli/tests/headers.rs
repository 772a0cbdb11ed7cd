//! Message headers through the CLI, run as a user runs it against a real redis-server:
//! `push --header` (on arguments and stdin lines), shown by `peek`, `tail`, `consume` and
//! `dlq ls` in text and in `--json` (an object in the order the keys were given, `{}` for none),
//! kept by a redrive; and a bad `--header` is a usage error that pushes nothing.

mod common;

use common::{Env, Run, redis, reject_next, start_until};
use serde_json::{Value, json};

/// `tenant` before `kind`: the reverse of sorted order, so that a sorted map would show.
const HEADERS: [&str; 4] = ["--header", "tenant=acme", "--header", "kind=resize"];

fn push(env: &Env, queue: &str, args: &[&str]) -> Vec<u64> {
    let mut all = vec!["push", queue];
    all.extend(args);
    env.run(&all).expect(0).lines().iter().map(|l| l.parse().expect("an id")).collect()
}

/// Asserts that `message` carries exactly tenant=acme then kind=resize, in that order in the
/// document's text (a parsed `Value` sorts its keys).
#[track_caller]
fn assert_ordered_headers(run: &Run, message: &Value) {
    assert_eq!(message["headers"], json!({ "tenant": "acme", "kind": "resize" }), "{message}");
    let (tenant, kind) = (run.stdout.find(r#""tenant": "acme""#), run.stdout.find(r#""kind""#));
    assert!(tenant.zip(kind).is_some_and(|(t, k)| t < k), "insertion order: {}", run.stdout);
}

#[test]
fn pushed_headers_come_back_from_peek_and_consume_in_text_and_json() {
    let Some(env) = redis() else { return };
    let ids = push(&env, "jobs", &[&HEADERS[..], &["one", "two"]].concat());
    let stdin = env.run_with_input(&[&["push", "jobs"], &HEADERS[..]].concat(), "three\n");
    let three: u64 = stdin.expect(0).stdout.trim().parse().expect("an id");
    let plain = push(&env, "jobs", &["--raw", "--header", "only=this", r#"{"n":4}"#])[0];
    let bare = push(&env, "jobs", &["five"])[0];

    let peek = env.run(&["peek", "jobs"]).expect(0);
    assert_eq!(
        peek.lines(),
        [
            format!("{}  one  [tenant=acme kind=resize]", ids[0]),
            format!("{}  two  [tenant=acme kind=resize]", ids[1]),
            format!("{three}  three  [tenant=acme kind=resize]"),
            format!(r#"{plain}  {{"n":4}}  [only=this]"#),
            format!("{bare}  five"),
        ]
    );
    let json = env.run(&["peek", "jobs", "-n", "1", "--json"]).expect(0);
    assert_ordered_headers(&json, &json.json()["messages"][0]);

    let consumed = env.run(&["consume", "jobs", "--max", "3", "--reliable", "--json"]).expect(0);
    let doc = consumed.json();
    for message in doc["messages"].as_array().expect("messages") {
        assert_ordered_headers(&consumed, message);
    }
    let rest = env.run(&["consume", "jobs", "--max", "2"]).expect(0);
    assert_eq!(
        rest.lines(),
        [format!(r#"{plain}  {{"n":4}}  [only=this]"#), format!("{bare}  five")]
    );
    push(&env, "jobs", &["six"]);
    let none = env.run(&["consume", "jobs", "--max", "1", "--json"]).expect(0).json();
    assert_eq!(none["messages"][0]["headers"], json!({}), "always there, empty without headers");
}

#[test]
fn tail_shows_the_headers_of_what_is_pushed_while_it_follows() {
    let Some(env) = redis() else { return };
    push(&env, "feed", &["before"]);
    let tail = start_until(env.command(&["tail", "feed", "--count", "1"]), "following");
    let id = push(&env, "feed", &["--header", "trace=a b", "after"])[0];
    assert_eq!(tail.finish().expect(0).lines(), [format!(r#"{id}  after  [trace="a b"]"#)]);

    let tail = start_until(env.command(&["tail", "feed", "--count", "1", "--json"]), "following");
    push(&env, "feed", &[&HEADERS[..], &["last"]].concat());
    let run = tail.finish().expect(0);
    assert_ordered_headers(&run, &run.json()["messages"][0]);
}

/// Pushes `bodies` with `HEADERS` through the CLI, then dead-letters them through the library
/// (a reliable consumer rejects each: the CLI cannot reject).
fn dead_letters_with_headers(env: &Env, queue: &str, bodies: &[&str]) {
    push(env, queue, &[&HEADERS[..], bodies].concat());
    reject_next(env, queue, bodies.len());
}

#[test]
fn dlq_ls_shows_the_headers_dead_letters_keep_and_a_redrive_keeps_them() {
    let Some(env) = redis() else { return };
    dead_letters_with_headers(&env, "orders", &["o1", "o2"]);
    let listed = env.run(&["dlq", "ls", "orders", "--json"]).expect(0);
    let doc = listed.json();
    for letter in doc["dead_letters"].as_array().expect("dead letters") {
        assert_ordered_headers(&listed, letter);
        assert_eq!(letter["reason"], json!("rejected: bad input"), "{letter}");
    }
    let table = env.run(&["dlq", "ls", "orders"]).expect(0);
    for expected in ["HEADERS", "tenant=acme", "kind=resize", "o1", "o2"] {
        assert!(table.stdout.contains(expected), "{expected} in {}", table.stdout);
    }
    env.run(&["dlq", "redrive", "orders"]).expect(0);
    let peek = env.run(&["peek", "orders"]).expect(0);
    assert!(
        peek.lines().iter().all(|l| l.ends_with("  [tenant=acme kind=resize]")),
        "{}",
        peek.stdout
    );
}

#[test]
fn a_bad_header_is_a_usage_error_that_names_it_and_pushes_nothing() {
    let Some(env) = redis() else { return };
    for (header, says) in [
        ("no-equals-sign", "KEY=VALUE"),
        ("=empty-key", "invalid header key name \"\": it is empty"),
        ("tab\tkey=v", "control character"),
    ] {
        let run = env.run(&["push", "untouched", "m", "--header", "ok=1", "--header", header]);
        let failed = run.expect(2);
        let named = format!("invalid value '{header}' for '--header <KEY=VALUE>'");
        assert!(failed.stderr.contains(&named), "names {header:?}: {}", failed.stderr);
        assert!(failed.stderr.contains(says), "{says} in {}", failed.stderr);
    }
    let stdin = env.run_with_input(&["push", "untouched", "--header", "bad"], "m\n").expect(2);
    assert!(stdin.stderr.contains("'bad'"), "{}", stdin.stderr);
    env.run(&["stat", "untouched"]).expect(6);
    assert_eq!(env.run(&["ls", "--json"]).expect(0).json()["queues"], json!([]));
}
