//! One `redis-server` process: start on a free port or a unix socket, wait for PING, kill on
//! drop, and kill/restart for failure tests.

use super::ping::{Address, Pong, ping};
use super::tls::TlsListener;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why a server could not be started or restarted. Its text includes the server log.
#[derive(Debug)]
pub struct HarnessError {
    message: String,
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HarnessError {}

impl HarnessError {
    /// An error with this message (for the other parts of the harness).
    pub(crate) fn new(message: impl Into<String>) -> HarnessError {
        HarnessError { message: message.into() }
    }
}

pub(super) fn err(message: impl Into<String>) -> HarnessError {
    HarnessError { message: message.into() }
}

/// A running (or killed) `redis-server`. Dropping it kills the server and removes its
/// directory; if the thread is panicking (a failed test), the server log is printed first.
#[derive(Debug)]
pub struct RedisServer {
    pub(super) binary: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) conf: PathBuf,
    pub(super) log: PathBuf,
    pub(super) stderr: PathBuf,
    pub(super) socket: Option<PathBuf>,
    pub(super) port: u16,
    /// The cluster bus port of a cluster node.
    pub(super) cluster_port: Option<u16>,
    pub(super) password: Option<String>,
    pub(super) extra: Vec<String>,
    pub(super) ready_timeout: Duration,
    pub(super) sentinel: bool,
    /// Boxed: most servers have none, and a server is held by value in larger structures.
    pub(super) tls: Option<Box<TlsListener>>,
    pub(super) running: Option<Running>,
}

#[derive(Debug)]
pub(super) struct Running {
    wrapper: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl RedisServer {
    /// The URL a client connects with: `redis://[:password@]127.0.0.1:<port>` or
    /// `redis+unix://<socket path>[?pass=<password>]`.
    pub fn url(&self) -> String {
        if let Some(tls) = self.tls.as_ref().filter(|t| !t.plain_too) {
            return match &self.password {
                None => format!("rediss://127.0.0.1:{}", tls.port),
                Some(pw) => format!("rediss://:{pw}@127.0.0.1:{}", tls.port),
            };
        }
        match (&self.socket, &self.password) {
            (Some(path), None) => format!("redis+unix://{}", path.display()),
            (Some(path), Some(pw)) => format!("redis+unix://{}?pass={pw}", path.display()),
            (None, None) => format!("redis://127.0.0.1:{}", self.port),
            (None, Some(pw)) => format!("redis://:{pw}@127.0.0.1:{}", self.port),
        }
    }

    /// The loopback port (0 when listening on a unix socket).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, for a server started with TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|t| t.port)
    }

    /// The unix socket path, when listening on one.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The process id of the running server (`None` after [`RedisServer::kill`]).
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    /// The server's directory (configuration, log, data files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        let mut text = fs::read_to_string(&self.log).unwrap_or_default();
        if let Ok(early) = fs::read_to_string(&self.stderr) {
            if !early.trim().is_empty() {
                text.push_str("\n---- stderr ----\n");
                text.push_str(&early);
            }
        }
        text
    }

    /// Whether the server process is running (not killed, not crashed).
    pub fn is_running(&mut self) -> bool {
        match &mut self.running {
            Some(r) => matches!(r.wrapper.try_wait(), Ok(None)) && alive(r.pid),
            None => false,
        }
    }

    /// Kills the server with SIGKILL (no save, no goodbye to clients) and waits until it is
    /// gone. The directory and configuration are kept for [`RedisServer::restart`].
    pub fn kill(&mut self) {
        if let Some(running) = self.running.take() {
            stop(running);
        }
    }

    /// Starts the server again on the same port or socket, with the same directory and
    /// configuration (so `appendonly yes` data survives), and waits for PING. Kills it first
    /// if it is running.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            match self.launch().await {
                Ok(()) => return Ok(()),
                // The old socket may linger for a moment after SIGKILL.
                Err(_) if self.port_taken() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Freezes the server with SIGSTOP: connections stay open but nothing answers (a hung
    /// instance). [`RedisServer::resume`] undoes it.
    pub fn pause(&self) -> Result<(), HarnessError> {
        self.signal("-STOP")
    }

    /// Resumes a server frozen by [`RedisServer::pause`].
    pub fn resume(&self) -> Result<(), HarnessError> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> Result<(), HarnessError> {
        let pid = self.pid().ok_or_else(|| err("redis-server is not running"))?;
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .map_err(|e| err(format!("cannot run kill {sig} {pid}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(err(format!("kill {sig} {pid} failed: {status}")))
        }
    }

    pub(super) fn write_config(&self) -> Result<(), HarnessError> {
        let mut conf = String::new();
        match &self.socket {
            Some(path) => {
                conf.push_str("port 0\n");
                conf.push_str(&format!("unixsocket {}\nunixsocketperm 700\n", path.display()));
            }
            None if self.tls.as_ref().is_some_and(|t| !t.plain_too) => {
                conf.push_str("port 0\nbind 127.0.0.1\n");
                conf.push_str(&format!(
                    "unixsocket {}\nunixsocketperm 700\n",
                    self.ping_socket().display()
                ));
            }
            None => conf.push_str(&format!("port {}\nbind 127.0.0.1\n", self.port)),
        }
        if let Some(tls) = &self.tls {
            conf.push_str(&tls.lines());
        }
        conf.push_str(&format!("dir {}\n", self.dir.display()));
        conf.push_str(&format!("logfile {}\n", self.log.display()));
        conf.push_str("daemonize no\nsave \"\"\nappendonly no\nloglevel notice\n");
        if let Some(pw) = &self.password {
            conf.push_str(&format!("requirepass {pw}\n"));
            if !self.sentinel {
                conf.push_str(&format!("masterauth {pw}\n"));
            }
        }
        if let Some(bus) = self.cluster_port {
            conf.push_str("cluster-enabled yes\ncluster-config-file nodes.conf\n");
            conf.push_str(&format!("cluster-port {bus}\n"));
        }
        for line in &self.extra {
            conf.push_str(line);
            conf.push('\n');
        }
        fs::write(&self.conf, conf)
            .map_err(|e| err(format!("cannot write {}: {e}", self.conf.display())))
    }

    /// The harness's own way in to a TLS-only server.
    fn ping_socket(&self) -> PathBuf {
        self.dir.join("ping.sock")
    }

    pub(super) fn port_taken(&self) -> bool {
        self.log().contains("Address already in use")
    }

    pub(super) async fn launch(&mut self) -> Result<(), HarnessError> {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .map_err(|e| err(format!("cannot open {}: {e}", self.stderr.display())))?;
        // The wrapper starts redis in the background, reports its pid, then waits for its own
        // stdin (a pipe from this process) to close: at EOF (drop, kill, or this process dying)
        // it kills redis and reaps it.
        let script = r#""$0" "$@" 1>&2 & p=$!; echo "$p"; while read -r _; do :; done; kill -9 "$p" 2>/dev/null; wait "$p""#;
        // Only this run's part of the log proves readiness (a restart appends to it). Measured
        // before the spawn: a fast server can log "Ready" before the spawn call returns, and a
        // later measure would skip that line and wait for one that never comes.
        let log_start = fs::metadata(&self.log).map(|m| m.len() as usize).unwrap_or(0);
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&self.binary)
            .arg(&self.conf)
            .args(self.sentinel.then_some("--sentinel"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| err(format!("cannot spawn sh for {}: {e}", self.binary.display())))?;
        let stdin = wrapper.stdin.take();
        let mut line = String::new();
        if let Some(out) = wrapper.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let Ok(pid) = line.trim().parse::<u32>() else {
            let _ = wrapper.kill();
            let _ = wrapper.wait();
            return Err(self.failure("the wrapper did not report a pid"));
        };
        self.running = Some(Running { wrapper, stdin, pid });
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if !self.is_running() {
                self.kill();
                return Err(self.failure("redis-server exited during startup"));
            }
            let ping_socket = self.ping_socket();
            let addr = match &self.socket {
                Some(p) => Address::Unix(p),
                None if self.tls.as_ref().is_some_and(|t| !t.plain_too) => {
                    Address::Unix(&ping_socket)
                }
                None => Address::Tcp(self.port),
            };
            // A process listening on our port but not logging "Ready" yet could be a stranger
            // that took the port; the log line proves the answer is ours.
            let last = ping(&addr, self.password.as_deref());
            if last == Pong::Ready && self.ready_logged(log_start) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(self.failure(&format!(
                    "redis-server did not answer PING within {:?} (last answer: {last:?})",
                    self.ready_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn ready_logged(&self, from: usize) -> bool {
        // "Ready to accept connections" (TCP), "ready to accept connections at <socket>" (unix);
        // a sentinel logs its id once it runs.
        let log = fs::read(&self.log).unwrap_or_default();
        let new = String::from_utf8_lossy(log.get(from..).unwrap_or_default());
        if self.sentinel {
            new.contains("Sentinel ID is")
        } else {
            new.contains("eady to accept connections")
        }
    }

    #[allow(clippy::print_stderr)] // The log is printed so that a failing test shows the cause.
    fn failure(&self, what: &str) -> HarnessError {
        let log = self.log();
        eprintln!(
            "---- redis-server log ({}) ----\n{log}\n---- end of log ----",
            self.dir.display()
        );
        err(format!("{what} ({}); server log:\n{log}", self.dir.display()))
    }
}

impl Drop for RedisServer {
    #[allow(clippy::print_stderr)] // A failed test shows the server's side of the story.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- redis-server log ({}, port {}) ----\n{}\n---- end of log ----",
                self.dir.display(),
                self.port,
                self.log()
            );
        }
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn stop(mut running: Running) {
    drop(running.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match running.wrapper.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() >= deadline => {
                // The wrapper is stuck: kill the server directly, then the wrapper.
                let _ = Command::new("kill").args(["-9", &running.pid.to_string()]).status();
                let _ = running.wrapper.kill();
                let _ = running.wrapper.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Whether `pid` is a live process (a crashed redis stays a zombie of the wrapper until it is
/// reaped, so the state letter matters). Without `/proc`, assume it is alive.
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

pub(super) fn free_port() -> Result<u16, HarnessError> {
    // The kernel picks an unused port; between dropping this listener and redis binding it
    // another process may take it, which `start` detects in the log and retries.
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| err(format!("cannot bind a loopback port: {e}")))?;
    let port = listener.local_addr().map_err(|e| err(format!("no local address: {e}")))?.port();
    Ok(port)
}

pub(super) fn fresh_dir() -> Result<PathBuf, HarnessError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let name = format!(
        "busmq-redis-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    fs::create_dir_all(&dir).map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}
