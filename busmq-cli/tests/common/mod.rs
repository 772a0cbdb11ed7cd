//! What the CLI tests share: the `busmq` binary run as a user runs it (a fresh process, its
//! stdout, stderr and exit code), real `redis-server` processes from busmq-testkit's harness,
//! a namespace per test so that tests running at the same time never see each other's queues,
//! and the library for what the CLI cannot do by itself (making dead letters).

#![allow(dead_code, unreachable_pub)] // Each test binary uses its own part of these helpers.

use busmq::redis::RedisStore;
use busmq::{Bus, ConsumeOptions, ReliableOptions};
use busmq_testkit::SharedServers;
use busmq_testkit::support::unique;
use futures::StreamExt;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one run of the binary may take: generous, for a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(120);

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout as a JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// Panics unless the exit code is `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code of {self:?}");
        self
    }

    /// The lines of stdout.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Where a test's commands go: the servers' URLs and a namespace of its own.
#[derive(Debug, Clone)]
pub struct Env {
    pub urls: Vec<String>,
    pub namespace: String,
}

/// One shared `redis-server` for the whole test binary; `None` (after a skip line) when it is
/// not installed and not required.
pub fn redis() -> Option<Env> {
    static SERVERS: OnceLock<Option<SharedServers>> = OnceLock::new();
    Some(env_of(SharedServers::get(1, &SERVERS)?))
}

/// Three shared servers, queues spread over them.
pub fn sharded() -> Option<Env> {
    static SERVERS: OnceLock<Option<SharedServers>> = OnceLock::new();
    Some(env_of(SharedServers::get(3, &SERVERS)?))
}

pub fn env_of(servers: &SharedServers) -> Env {
    Env { urls: servers.urls().to_vec(), namespace: unique("cli") }
}

/// The binary, without anything from the environment that would change where it connects.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_busmq"));
    command.env_remove("BUSMQ_URL").env_remove("BUSMQ_NAMESPACE");
    command
}

impl Env {
    /// The binary aimed at this test's servers (as `BUSMQ_URL`, comma-separated) and
    /// namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = binary();
        command.env("BUSMQ_URL", self.urls.join(",")).args(["--namespace", &self.namespace]);
        command.args(args);
        command
    }

    /// Runs `busmq <args>` to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        output(self.command(args), None)
    }

    /// Runs `busmq <args>` with `stdin` as its input.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> Run {
        output(self.command(args), Some(stdin))
    }

    /// A connected bus on this test's servers and namespace.
    pub async fn bus(&self) -> Bus {
        let store = RedisStore::builder()
            .urls(self.urls.iter().cloned())
            .namespace(self.namespace.clone())
            .build()
            .expect("valid urls");
        let bus = Bus::new(store);
        bus.connect().await.expect("connect");
        bus.wait_online(Duration::from_secs(30)).await.expect("online");
        bus
    }
}

/// Runs `command` to the end with `stdin` (or none).
pub fn output(mut command: Command, stdin: Option<&str>) -> Run {
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    finish(child, stdin)
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Writes `stdin` (if any) and closes it, then collects what the child prints (read while it
/// runs, so that a full pipe never blocks it) and its exit code.
pub fn finish(mut child: Child, stdin: Option<&str>) -> Run {
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A child that refuses its arguments exits without reading its input: the broken pipe
        // is its answer, which its exit code and output then show.
        if let Err(e) = pipe.write_all(text.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    drop(child.stdin.take());
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let code = wait(&mut child);
    Run { code, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") }
}

/// The exit code, within the deadline.
fn wait(child: &mut Child) -> i32 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("busmq did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A following command running in the background.
#[derive(Debug)]
pub struct Following {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: JoinHandle<Vec<String>>,
}

/// Starts `command` with piped stdin, stdout and stderr, and returns once its stderr says
/// `ready` (a following command announces that it follows).
pub fn start_until(mut command: Command, ready: &str) -> Following {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                let done = line.contains(ready);
                seen.push(line);
                if done {
                    break;
                }
            }
            _ => panic!("busmq ended before saying {ready:?}; stderr: {seen:?}"),
        }
        assert!(Instant::now() < deadline, "busmq did not say {ready:?} in time: {seen:?}");
    }
    // The rest of stderr is read in the background, so that the child never blocks on it.
    let stderr = std::thread::spawn(move || {
        seen.extend(lines.map_while(Result::ok));
        seen
    });
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    Following { child, stdout, stderr }
}

impl Following {
    /// Writes a line to its stdin.
    pub fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write stdin");
    }

    /// The next line it prints (waits for it).
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read stdout");
        assert!(!line.is_empty(), "busmq ended without printing another line");
        line.trim_end_matches('\n').to_string()
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn interrupt(&self) {
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        assert!(status.expect("kill runs").success(), "kill -INT failed");
    }

    /// Closes its stdin, waits for the end and collects what it printed.
    pub fn finish(mut self) -> Run {
        drop(self.child.stdin.take());
        let stdout = drain(Some(self.stdout));
        let code = wait(&mut self.child);
        let stderr = self.stderr.join().expect("stderr").join("\n");
        Run { code, stdout: stdout.join().expect("stdout"), stderr }
    }
}

/// A local TCP port that nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Runs `future` on a runtime of its own (the tests themselves are plain, blocking ones).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Dead-letters the next `count` messages of `queue` through the library (the CLI cannot
/// reject): a reliable consumer rejects each with the reason "bad input".
pub fn reject_next(env: &Env, queue: &str, count: usize) {
    block_on(async {
        let bus = env.bus().await;
        let q = bus.queue(queue).unwrap();
        q.attach().await.unwrap();
        let options = ConsumeOptions::new().reliable(ReliableOptions::default()).max(count as u64);
        let mut consumer = q.consume_with::<String>(options).await.unwrap();
        while let Some(delivery) = consumer.next().await {
            delivery.unwrap().reject("bad input").await.unwrap();
        }
        drop(consumer);
        bus.disconnect().await.unwrap();
    });
}
