//! The failures a user meets, run as a user meets them: each has its documented exit code and
//! a clear message, and no password ever appears in any output (SPEC O3, S3).

mod common;

use busmq_testkit::SharedServers;
use busmq_testkit::redis::RedisServer;
use common::{binary, closed_port, env_of, output, redis};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PASSWORD: &str = "s3cret-Pa55";

fn run(args: &[&str]) -> common::Run {
    let mut command = binary();
    command.args(args);
    output(command, None)
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let help = run(&["--help"]).expect(0);
    for command in
        ["ls", "stat", "peek", "tail", "push", "consume", "dlq", "pub", "sub", "chat", "bench"]
    {
        assert!(help.stdout.contains(&format!("\n  {command} ")), "{command} in {}", help.stdout);
    }
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
    let dlq = run(&["dlq", "--help"]).expect(0);
    assert!(dlq.stdout.contains("redrive"), "{}", dlq.stdout);
}

#[test]
fn usage_errors_exit_2() {
    let missing = run(&["peek"]).expect(2);
    assert!(missing.stderr.contains("<QUEUE>"), "{}", missing.stderr);
    run(&["peek", "q", "--from", "1", "--id", "2"]).expect(2);
    run(&["frobnicate"]).expect(2);
    let Some(env) = redis() else { return };
    let bad_name = env.run(&["stat", ""]).expect(2);
    assert!(bad_name.stderr.contains("invalid queue name"), "{}", bad_name.stderr);
    let bad_ns =
        binary().args(["--url", &env.urls[0], "--namespace", "a{b}", "ls"]).output().unwrap();
    assert_eq!(bad_ns.status.code(), Some(2), "{bad_ns:?}");
}

#[test]
fn bad_urls_exit_3_without_showing_the_password() {
    for url in [
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:99999",
        &format!("redis://:{PASSWORD}@127.0.0.1:0"),
        "redis://127.0.0.1:1,redis://127.0.0.1:1",
    ] {
        let failed = run(&["--url", url, "ls"]).expect(3);
        assert!(failed.stderr.starts_with("error: invalid url"), "{url}: {}", failed.stderr);
        assert!(!failed.stderr.contains(PASSWORD), "{}", failed.stderr);
    }
    let cluster_and_more =
        run(&["--url", "redis+cluster://127.0.0.1:7000", "--url", "redis://h", "ls"]);
    assert!(cluster_and_more.expect(3).stderr.contains("only instance"));
}

#[test]
fn an_unreachable_redis_exits_4_within_the_timeout() {
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let failed = run(&["--url", &url, "--timeout", "1s", "ls"]).expect(4);
    assert!(started.elapsed() < Duration::from_secs(20), "gave up in {:?}", started.elapsed());
    assert!(failed.stderr.contains("redis is unreachable"), "{}", failed.stderr);
    assert!(failed.stderr.contains("127.0.0.1:"), "names the instance: {}", failed.stderr);
    assert!(!failed.stderr.contains(PASSWORD), "{}", failed.stderr);
}

fn secured() -> Option<&'static SharedServers> {
    static SERVERS: OnceLock<Option<SharedServers>> = OnceLock::new();
    SharedServers::get_with(1, &SERVERS, || RedisServer::builder().password(PASSWORD))
}

#[test]
fn a_wrong_or_missing_password_exits_5_and_the_right_one_works_without_showing_it() {
    let Some(servers) = secured() else { return };
    let good = servers.urls()[0].clone();
    assert!(good.contains(PASSWORD), "the harness puts the password in the URL: {good}");
    let wrong = good.replace(PASSWORD, "not-the-password");
    let failed = run(&["--url", &wrong, "ls"]).expect(5);
    assert!(failed.stderr.contains("denied"), "{}", failed.stderr);
    assert!(!failed.stderr.contains("not-the-password"), "{}", failed.stderr);
    let bare = good.replace(&format!(":{PASSWORD}@"), "");
    let failed = run(&["--url", &bare, "ls"]).expect(5);
    assert!(failed.stderr.contains("password"), "{}", failed.stderr);

    let env = env_of(servers);
    for args in
        [&["push", "q", "m"][..], &["ls"], &["stat", "q"], &["peek", "q"], &["ls", "--json"]]
    {
        let ok = env.run(args).expect(0);
        assert!(!ok.stdout.contains(PASSWORD) && !ok.stderr.contains(PASSWORD), "{ok:?}");
    }
    let missing = env.run(&["stat", "nope"]).expect(6);
    assert!(!missing.stderr.contains(PASSWORD), "{}", missing.stderr);
    let help = env.command(&["--help"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains(PASSWORD), "BUSMQ_URL is not echoed");
}

#[test]
fn a_missing_queue_exits_6_for_the_commands_that_only_look() {
    let Some(env) = redis() else { return };
    for args in [&["stat", "ghost"][..], &["peek", "ghost"], &["tail", "ghost", "--count", "1"]] {
        let failed = env.run(args).expect(6);
        let expected =
            format!("error: queue \"ghost\" not found in namespace \"{}\"", env.namespace);
        assert_eq!(failed.stderr.trim(), expected, "{args:?}");
        assert_eq!(failed.stdout, "");
    }
    assert_eq!(
        env.run(&["ls", "--json"]).expect(0).json()["queues"],
        serde_json::json!([]),
        "nothing created"
    );
}
