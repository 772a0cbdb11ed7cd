//! No password in anything `busmq` prints (SPEC S3, O3) for the URL forms `errors.rs` and
//! `deployments.rs` do not cover: an ACL user's URL, a password with an unescaped `/` or `#`,
//! Sentinel and Cluster URLs with passwords, on failing and on succeeding commands (stdout
//! and stderr both).

mod common;

use busmq_testkit::SharedServers;
use busmq_testkit::redis::RedisServer;
use common::{Env, binary, closed_port, output};
use std::sync::OnceLock;

const PASSWORD: &str = "Cli-S3cret-5d2a";
const SENTINEL_PASSWORD: &str = "Cli-SentS3cret-81c0";

fn assert_hidden(what: &str, run: &common::Run) {
    for secret in [PASSWORD, SENTINEL_PASSWORD] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{what} shows a password: {run:?}"
        );
    }
}

fn run(args: &[&str]) -> common::Run {
    let mut command = binary();
    command.args(args);
    output(command, None)
}

#[test]
fn failing_commands_show_no_password_whatever_the_url_form() {
    let port = closed_port();
    let urls = [
        format!("redis://acl-user:{PASSWORD}@127.0.0.1:{port}/1"),
        format!("redis://acl-user:a/{PASSWORD}@127.0.0.1:{port}"),
        format!("redis://acl-user:{PASSWORD}#x@127.0.0.1:{port}"),
        format!("redis://acl-user:{PASSWORD}%zz@127.0.0.1:{port}"),
        format!(
            "redis+sentinel://data-user:{PASSWORD}@127.0.0.1:{port}/mymaster\
             ?sentinel_password={SENTINEL_PASSWORD}"
        ),
        format!("redis+sentinel://u:{PASSWORD}@127.0.0.1:99999/m?sentinel_password=x"),
        format!("redis+cluster://cluster-user:{PASSWORD}@127.0.0.1:{port}"),
        format!("redis+cluster://cluster-user:{PASSWORD}@127.0.0.1:{port}/2"),
    ];
    for url in &urls {
        for args in [&["ls"][..], &["stat", "q"], &["push", "q", "m"], &["peek", "q", "--json"]] {
            let mut all = vec!["--url", url.as_str(), "--timeout", "1s"];
            all.extend_from_slice(args);
            let failed = run(&all);
            assert_ne!(failed.code, 0, "{url} {args:?}: {failed:?}");
            assert_hidden(&format!("{url} {args:?}"), &failed);
        }
    }
}

fn secured() -> Option<&'static SharedServers> {
    static SERVERS: OnceLock<Option<SharedServers>> = OnceLock::new();
    SharedServers::get_with(1, &SERVERS, || RedisServer::builder().password(PASSWORD))
}

/// The ACL form of the server's own user (`default:<password>@`): commands that work, and one
/// that fails on a working connection, print no password.
#[test]
fn succeeding_commands_with_an_acl_user_url_show_no_password() {
    let Some(servers) = secured() else { return };
    let url = servers.urls()[0].replace(&format!(":{PASSWORD}@"), &format!("default:{PASSWORD}@"));
    assert!(url.contains(&format!("default:{PASSWORD}@")), "{url}");
    let env = Env { urls: vec![url], namespace: busmq_testkit::support::unique("secrets") };
    for args in [
        &["push", "q", "m"][..],
        &["ls"],
        &["ls", "--json"],
        &["stat", "q"],
        &["stat", "q", "--json"],
        &["peek", "q"],
        &["peek", "q", "--json"],
        &["dlq", "ls", "q"],
    ] {
        let ok = env.run(args);
        assert_eq!(ok.code, 0, "{args:?}: {ok:?}");
        assert_hidden(&format!("{args:?}"), &ok);
    }
    let missing = env.run(&["stat", "nope"]);
    assert_ne!(missing.code, 0);
    assert_hidden("a missing queue", &missing);
    let too_many = env.run(&["peek", "q", "--count", "20000"]);
    assert_ne!(too_many.code, 0, "{too_many:?}");
    assert_hidden("a refused read", &too_many);
}
