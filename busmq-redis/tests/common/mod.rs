//! Helpers for the Redis backend's tests: servers from the harness, stores with short
//! reconnect delays, unique names and bounded waits (generous deadlines, no speed assertions).
#![allow(dead_code, unreachable_pub)]

use busmq_core::QueueName;
use busmq_core::store::{QueueSpec, Session, StoreEvent, StoreState};
use busmq_redis::RedisStore;
use busmq_testkit::redis::{RedisServer, require_or_skip};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;

pub mod fast;

/// The longest any expected thing may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A started server, or `None` (with one skip line) when redis-server is missing.
pub async fn server(test: &str) -> Option<RedisServer> {
    require_or_skip(test)?;
    Some(RedisServer::start().await.expect("redis-server starts"))
}

/// `n` started servers, or `None` when redis-server is missing.
pub async fn servers(test: &str, n: usize) -> Option<Vec<RedisServer>> {
    require_or_skip(test)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(RedisServer::start().await.expect("redis-server starts"));
    }
    Some(out)
}

/// A builder with test-friendly reconnection: quick retries, short pings.
pub fn builder<I, S>(urls: I) -> busmq_redis::RedisStoreBuilder
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    RedisStore::builder()
        .urls(urls)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
        .ping_interval(Duration::from_millis(200))
}

/// A connected store over the servers.
pub async fn store(servers: &[&RedisServer]) -> RedisStore {
    store_with(builder(servers.iter().map(|s| s.url())).page_size(8)).await
}

pub async fn store_with(builder: busmq_redis::RedisStoreBuilder) -> RedisStore {
    let store = builder.build().expect("valid options");
    let state = store.connect().await.expect("connect");
    assert_eq!(state, StoreState::Online);
    store
}

/// A queue name no other test uses.
pub fn queue(label: &str) -> QueueName {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let r = busmq_core::support::random_u64() as u32;
    QueueName::new(format!("{label}-{r:08x}-{seq}")).unwrap()
}

pub fn spec() -> QueueSpec {
    QueueSpec::default()
}

/// Waits for the next state event.
pub async fn next_state(events: &mut broadcast::Receiver<StoreEvent>) -> StoreState {
    let fut = async {
        loop {
            match events.recv().await {
                Ok(StoreEvent::State(s)) => return s,
                Ok(StoreEvent::Error(_)) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, fut).await.expect("a state event within the deadline")
}

/// The state events that arrive within `quiet` (to check that nothing more happens).
pub async fn quiet_states(
    events: &mut broadcast::Receiver<StoreEvent>,
    quiet: Duration,
) -> Vec<StoreState> {
    let mut out = Vec::new();
    while let Ok(Ok(ev)) = tokio::time::timeout(quiet, events.recv()).await {
        if let StoreEvent::State(s) = ev {
            out.push(s);
        }
    }
    out
}

/// Retries `f` until it succeeds or the deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain redis connection for poking at the data behind busmq's back.
pub async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

pub async fn stop(store: &RedisStore) {
    store.disconnect().await.expect("disconnect");
}

/// Appends values to a page list of the default namespace behind busmq's back, in one command.
pub async fn inject(
    raw: &mut redis::aio::MultiplexedConnection,
    q: &str,
    page: u64,
    values: &[&[u8]],
) {
    let _: () = redis::cmd("RPUSH")
        .arg(format!("busmq:{{{q}}}:p:{page}"))
        .arg(values)
        .query_async(raw)
        .await
        .unwrap();
}

/// Every key starting with `prefix` (named without it) with its contents and absolute expiry
/// (`PEXPIRETIME`): what the fast-script tests compare between a queue written by a fast script
/// and one written by the full script.
pub async fn snapshot(
    raw: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> std::collections::BTreeMap<String, (String, i64)> {
    use std::collections::BTreeMap;
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(raw).await.unwrap();
    keys.sort();
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(raw).await.unwrap();
        let contents = match kind.as_str() {
            "hash" => {
                let all: BTreeMap<String, String> =
                    redis::cmd("HGETALL").arg(&key).query_async(raw).await.unwrap();
                format!("{all:?}")
            }
            "list" => {
                let all: Vec<String> =
                    redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query_async(raw).await.unwrap();
                format!("{all:?}")
            }
            "zset" => {
                let all: Vec<(String, f64)> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(raw)
                    .await
                    .unwrap();
                format!("{all:?}")
            }
            "string" => redis::cmd("GET").arg(&key).query_async(raw).await.unwrap(),
            other => panic!("{key}: a key of type {other} in this test"),
        };
        let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query_async(raw).await.unwrap();
        out.insert(key[prefix.len()..].to_string(), (contents, at));
    }
    out
}

/// The status (first element) of a script's array reply.
pub fn status(reply: &redis::Value) -> String {
    match reply {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::BulkString(s)) => String::from_utf8_lossy(s).into_owned(),
            other => panic!("unexpected reply {other:?}"),
        },
        other => panic!("unexpected reply {other:?}"),
    }
}
