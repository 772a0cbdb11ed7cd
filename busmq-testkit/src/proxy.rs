//! A fault-injecting TCP proxy on loopback: put it between a client and one Redis to test
//! network faults on one machine.
//!
//! Each accepted connection is forwarded to the target by two tasks (one per direction). The
//! controls act on every connection, current and future:
//!
//! * [`FaultProxy::set_latency`]: every chunk is delivered that much later (without slowing
//!   the stream down: chunks are timestamped when read and released when due);
//! * [`FaultProxy::blackhole`]: connections stay open but nothing gets through in either
//!   direction, and new connections are accepted and never reach the server (a partition where
//!   packets vanish: the client notices only through its own timeouts). As with TCP, what was
//!   sent during the partition is delivered if it heals before either side gives up;
//! * [`FaultProxy::cut`]: every connection is closed and new ones are closed as soon as they
//!   are accepted (a partition the client notices at once);
//! * [`FaultProxy::drop_connections`]: closes the current connections once and keeps working
//!   (a network blip);
//! * [`FaultProxy::restore`]: back to normal forwarding (latency is kept; set it to zero).
//!
//! The proxy only ever binds `127.0.0.1`. Dropping it stops everything.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything (after the configured latency).
    Pass,
    /// Keep connections open and let nothing through.
    Blackhole,
    /// Close every connection and refuse new ones.
    Cut,
}

#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bumped to close every current connection.
    epoch: watch::Sender<u64>,
    latency_micros: AtomicU64,
    open: AtomicUsize,
    accepted: AtomicU64,
}

/// A running proxy. See the module documentation.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("mode", &self.mode())
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.epoch.send_modify(|e| *e += 1);
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port that forwards to `127.0.0.1:target_port`.
    pub async fn start(target_port: u16) -> std::io::Result<FaultProxy> {
        Self::start_to(SocketAddr::from(([127, 0, 0, 1], target_port))).await
    }

    /// Starts a proxy on a free loopback port that forwards to `target` (which must be a
    /// loopback address: this harness does not touch real networks).
    pub async fn start_to(target: SocketAddr) -> std::io::Result<FaultProxy> {
        if !target.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the fault proxy only forwards to loopback, not {target}"),
            ));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            mode: watch::Sender::new(Mode::Pass),
            epoch: watch::Sender::new(0),
            latency_micros: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy { addr, shared, accept })
    }

    /// The proxy's own port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://[:password@]127.0.0.1:<proxy port>`.
    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}", self.port()),
            None => format!("redis://127.0.0.1:{}", self.port()),
        }
    }

    /// What the proxy does now.
    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Delays every chunk in both directions by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_micros.store(micros, Ordering::SeqCst);
    }

    /// Lets nothing through from now on, keeping connections open.
    pub fn blackhole(&self) {
        self.shared.mode.send_replace(Mode::Blackhole);
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.mode.send_replace(Mode::Cut);
        self.drop_connections();
    }

    /// Closes every current connection once.
    pub fn drop_connections(&self) {
        self.shared.epoch.send_modify(|e| *e += 1);
    }

    /// Forwards normally again.
    pub fn restore(&self) {
        self.shared.mode.send_replace(Mode::Pass);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if *shared.mode.borrow() == Mode::Cut {
            drop(client);
            continue;
        }
        tokio::spawn(connection(client, shared.clone()));
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    shared.open.fetch_add(1, Ordering::SeqCst);
    let _guard = OpenGuard(shared.clone());
    let mut epoch = shared.epoch.subscribe();
    let _ = client.set_nodelay(true);
    // A blackholed connection never reaches the server, as in a real partition.
    let upstream = tokio::select! {
        s = connect_when_passing(&shared) => s,
        _ = epoch.changed() => return,
    };
    let Some(upstream) = upstream else { return };
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = upstream.into_split();
    tokio::select! {
        _ = pump(client_read, server_write, shared.clone()) => {}
        _ = pump(server_read, client_write, shared.clone()) => {}
        _ = epoch.changed() => {}
    }
}

async fn connect_when_passing(shared: &Shared) -> Option<TcpStream> {
    let mut mode = shared.mode.subscribe();
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Pass => return TcpStream::connect(shared.target).await.ok(),
            Mode::Cut => return None,
            Mode::Blackhole => mode.changed().await.ok()?,
        }
    }
}

/// Copies one direction: reads chunks, timestamps them, and a writer releases each when its
/// latency has passed. Nothing is read or written while blackholed. Ends when either side
/// closes or the mode becomes `Cut`.
async fn pump(mut from: OwnedReadHalf, to: OwnedWriteHalf, shared: Arc<Shared>) {
    let (tx, rx) = mpsc::unbounded_channel::<(Option<Instant>, Vec<u8>)>();
    let writer = tokio::spawn(write_when_due(to, rx, shared.mode.subscribe()));
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Cut => break,
            Mode::Blackhole => {
                if mode.changed().await.is_err() {
                    break;
                }
            }
            Mode::Pass => tokio::select! {
                read = from.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let micros = shared.latency_micros.load(Ordering::SeqCst);
                        // No timer without latency: tokio's timer rounds a deadline up to its
                        // next millisecond tick, which put up to 1 ms on every chunk of every
                        // connection (2 ms on a round trip) although no latency was asked for.
                        let due = (micros > 0)
                            .then(|| Instant::now() + Duration::from_micros(micros));
                        if tx.send((due, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                },
                changed = mode.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            },
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn write_when_due(
    mut to: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<(Option<Instant>, Vec<u8>)>,
    mut mode: watch::Receiver<Mode>,
) {
    while let Some((due, chunk)) = rx.recv().await {
        if let Some(due) = due {
            tokio::time::sleep_until(due).await;
        }
        loop {
            let now = *mode.borrow_and_update();
            match now {
                Mode::Pass => break,
                Mode::Cut => return,
                Mode::Blackhole => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> (u16, JoinHandle<()>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, task)
    }

    async fn roundtrip(s: &mut TcpStream, text: &[u8]) -> Option<Vec<u8>> {
        s.write_all(text).await.ok()?;
        let mut buf = vec![0u8; text.len()];
        let read = tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut buf)).await;
        match read {
            Ok(Ok(_)) => Some(buf),
            _ => None,
        }
    }

    /// The chaos run's reliable slow-consumer recovery went from ~90 ms to seconds because
    /// every chunk waited for a timer even without latency (tokio rounds a deadline up to its
    /// next millisecond tick): an ack-per-message consumer then took ~6 ms per ack through the
    /// proxy and could not work off a slow phase's backlog before the next fault. Without
    /// latency the proxy must not use the timer at all: on a runtime without one, it still
    /// forwards (with a timer it would panic in the writer and the round trip would hang).
    #[test]
    fn without_latency_chunks_are_forwarded_without_the_timer() {
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
            runtime.block_on(async {
                let (port, server) = echo_server().await;
                let proxy = FaultProxy::start(port).await.unwrap();
                let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
                for i in 0..20u8 {
                    let text = [b'a' + i; 8];
                    s.write_all(&text).await.unwrap();
                    let mut buf = [0u8; 8];
                    s.read_exact(&mut buf).await.unwrap();
                    assert_eq!(buf, text);
                }
                server.abort();
            });
            let _ = done.send(());
        });
        assert!(
            outcome.recv_timeout(Duration::from_secs(20)).is_ok(),
            "20 round trips through a proxy without latency did not complete on a runtime \
             without a timer"
        );
    }

    #[tokio::test]
    async fn forwards_blackholes_cuts_and_restores() {
        let (port, server) = echo_server().await;
        let proxy = FaultProxy::start(port).await.unwrap();
        let mut a = TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
        assert_eq!(roundtrip(&mut a, b"hello").await.as_deref(), Some(&b"hello"[..]));

        proxy.set_latency(Duration::from_millis(50));
        let started = Instant::now();
        assert!(roundtrip(&mut a, b"slow").await.is_some());
        assert!(started.elapsed() >= Duration::from_millis(100), "latency each way");
        proxy.set_latency(Duration::ZERO);

        proxy.blackhole();
        assert_eq!(roundtrip(&mut a, b"void").await, None, "nothing comes back");
        assert_eq!(proxy.open_connections(), 1, "the connection stays open");
        proxy.restore();
        let mut b = TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
        assert_eq!(roundtrip(&mut b, b"again").await.as_deref(), Some(&b"again"[..]));

        proxy.cut();
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), b.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "cut closes connections: {closed:?}");
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
        assert_eq!(roundtrip(&mut c, b"refused").await, None);

        proxy.restore();
        let mut d = TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
        assert_eq!(roundtrip(&mut d, b"back").await.as_deref(), Some(&b"back"[..]));
        proxy.drop_connections();
        let closed = tokio::time::timeout(Duration::from_secs(2), d.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "dropped: {closed:?}");
        let mut e = TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
        assert_eq!(roundtrip(&mut e, b"still").await.as_deref(), Some(&b"still"[..]));
        assert!(proxy.accepted() >= 5);
        server.abort();
    }
}
