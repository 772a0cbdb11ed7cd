//! The redis-server harness of busmq-testkit: ports, unix sockets, kill/restart, and servers
//! that die with the test process even when it is killed.

mod common;

use busmq_testkit::redis::RedisServer;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_get_distinct_ports_restart_in_place_and_die_on_drop() {
    let Some(first) = common::server("servers_get_distinct_ports").await else {
        return;
    };
    let mut second = RedisServer::start().await.unwrap();
    assert_ne!(first.port(), second.port());
    assert_ne!(first.port(), 6379, "never the default port");
    assert_eq!(second.url(), format!("redis://127.0.0.1:{}", second.port()));
    let (port, dir) = (second.port(), second.dir().to_path_buf());
    let pid = second.pid().unwrap();
    assert!(second.is_running());
    second.kill();
    assert!(second.pid().is_none() && !alive(pid));
    second.restart().await.unwrap();
    assert_eq!((second.port(), second.dir()), (port, dir.as_path()));
    assert_ne!(second.pid(), Some(pid));
    let pid = second.pid().unwrap();
    assert!(second.log().contains("Ready to accept connections"));
    drop(second);
    assert!(gone_within(pid, Duration::from_secs(10)), "dropping kills the server");
    assert!(!Path::new(&dir).exists(), "and removes its directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_servers_restart_on_the_same_socket() {
    let Some(_) = common::server("unix_socket_servers_restart").await else {
        return;
    };
    let mut s = RedisServer::builder().unix_socket(true).start().await.unwrap();
    let path = s.socket_path().unwrap().to_path_buf();
    assert_eq!(s.port(), 0);
    s.restart().await.unwrap();
    assert_eq!(s.socket_path(), Some(path.as_path()));
    let mut raw = common::raw(&s).await;
    let pong: String = redis::cmd("PING").query_async(&mut raw).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_fails_with_the_log() {
    let Some(_) = common::server("a_bad_configuration_fails_with_the_log").await else {
        return;
    };
    let err = RedisServer::builder().config("no-such-directive yes").start().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exited during startup"), "{text}");
    assert!(text.contains("no-such-directive"), "the log names the problem: {text}");
}

/// Run by `servers_die_with_a_killed_test_process` in a child process: starts a server,
/// reports its pid and waits to be killed.
#[tokio::test]
#[ignore = "helper run by servers_die_with_a_killed_test_process"]
async fn harness_child_holds_a_server() {
    if std::env::var_os("BUSMQ_HARNESS_CHILD").is_none() {
        return;
    }
    let server = RedisServer::start().await.unwrap();
    println!("REDIS_PID {}", server.pid().unwrap());
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[test]
fn servers_die_with_a_killed_test_process() {
    if busmq_testkit::redis::require_or_skip("servers_die_with_a_killed_test_process").is_none() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "harness_child_holds_a_server", "--nocapture"])
        .env("BUSMQ_HARNESS_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pid = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(p) = line.strip_prefix("REDIS_PID ") {
            pid = Some(p.trim().parse::<u32>().unwrap());
            break;
        }
    }
    let pid = pid.expect("the child started a server");
    assert!(alive(pid));
    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    assert!(gone_within(pid, Duration::from_secs(10)), "the server died with its test process");
}
