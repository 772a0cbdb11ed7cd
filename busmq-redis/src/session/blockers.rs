//! Dedicated connections for blocking pops, in a bb8 pool per instance: an idle at-most-once
//! consumer waits in Redis (`BLMPOP` on the page the next push appends to, `ops/wait.rs`)
//! instead of waiting for a notice and then taking, which saves a round trip per wake-up.
//!
//! A blocked command occupies its connection, so each waiter holds one of its own: at most
//! [`MAX_BLOCKERS`] per instance, and beyond that waiters fall back on notices. These
//! connections have no response timeout: the driver's timeout would fail a blocked pop on the
//! client while the server keeps it blocked, and that pop would later take messages nobody
//! receives. The server-side block time bounds the wait instead, and a connection that outlives
//! its deadline is discarded (closing it ends the block on the server). New connections pass
//! the same access check as the session's (`access.rs`). Only fixed addresses have a pool: a
//! Sentinel group's master and a cluster slot's node change under a blocked pop.

use crate::fault::CallError;
use crate::session::access::{self, Who};
use bb8_redis::bb8::{self, ErrorSink, Pool, PooledConnection, RunError};
use busmq_core::support::lock;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Blocking connections per instance, at most.
const MAX_BLOCKERS: u32 = 64;

/// One blocking connection and its server-side client id (for `CLIENT UNBLOCK`).
#[derive(Debug)]
pub(crate) struct Blocker {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) id: i64,
    discarded: bool,
}

impl Blocker {
    /// The connection must not serve another waiter (a pop may still be blocked on it, or it
    /// broke): the pool closes it instead of keeping it.
    pub(crate) fn discard(&mut self) {
        self.discarded = true;
    }
}

/// Opens blocking connections for one instance.
#[derive(Debug)]
pub(crate) struct Dialer {
    client: Client,
    connect_timeout: Duration,
}

impl bb8::ManageConnection for Dialer {
    type Connection = Blocker;
    type Error = CallError;

    async fn connect(&self) -> Result<Blocker, CallError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None);
        let open = async {
            let mut conn = access::connect(&self.client, &config, self.connect_timeout).await?;
            let id = redis::cmd("CLIENT").arg("ID").query_async::<Value>(&mut conn).await;
            let who = Who::of(self.client.get_connection_info().redis_settings());
            Ok::<_, CallError>((conn, id.map_err(|e| access::classify(e, who))?))
        };
        let (conn, id) = tokio::time::timeout(self.connect_timeout, open)
            .await
            .map_err(|_| CallError::Timeout)??;
        let Value::Int(id) = id else {
            return Err(CallError::Redis(redis::RedisError::from((
                redis::ErrorKind::Client,
                "CLIENT ID returned an unexpected reply",
            ))));
        };
        Ok(Blocker { conn, id, discarded: false })
    }

    async fn is_valid(&self, blocker: &mut Blocker) -> Result<(), CallError> {
        Ok(redis::cmd("PING").query_async::<()>(&mut blocker.conn).await?)
    }

    fn has_broken(&self, blocker: &mut Blocker) -> bool {
        blocker.discarded
    }
}

/// Keeps the last failure to open a connection: bb8 reports those to a sink, not to the
/// waiter, whose `get` only times out.
#[derive(Debug, Clone, Default)]
struct LastFailure(Arc<Mutex<Option<CallError>>>);

impl ErrorSink<CallError> for LastFailure {
    fn sink(&self, error: CallError) {
        *lock(&self.0) = Some(error);
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<CallError>> {
        Box::new(self.clone())
    }
}

/// A blocking connection held by one waiter; back to the pool when dropped (unless
/// [discarded](Blocker::discard)).
pub(crate) type Lease = PooledConnection<'static, Dialer>;

/// The blocking connections of one instance.
pub(crate) struct Blockers {
    client: Client,
    connect_timeout: Duration,
    /// The pool of the current session of the store (none while disconnected).
    pool: Mutex<Option<Pool<Dialer>>>,
    failure: LastFailure,
}

impl fmt::Debug for Blockers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.pool).as_ref().map(|p| p.state());
        f.debug_struct("Blockers")
            .field("connections", &state.as_ref().map(|s| s.connections))
            .field("idle", &state.as_ref().map(|s| s.idle_connections))
            .finish()
    }
}

impl Blockers {
    pub(crate) fn new(client: Client, connect_timeout: Duration) -> Blockers {
        Blockers {
            client,
            connect_timeout,
            pool: Mutex::new(None),
            failure: LastFailure::default(),
        }
    }

    /// A fresh pool, when the store connects.
    pub(crate) fn open(&self) {
        let pool = Pool::builder()
            .max_size(MAX_BLOCKERS)
            .min_idle(None)
            // A connection is checked when it fails, not with a round trip before every wait.
            .test_on_check_out(false)
            .retry_connection(false)
            .connection_timeout(self.connect_timeout)
            .error_sink(Box::new(self.failure.clone()))
            .build_unchecked(Dialer {
                client: self.client.clone(),
                connect_timeout: self.connect_timeout,
            });
        *lock(&self.pool) = Some(pool);
    }

    /// Drops the pool with its idle connections, when the store disconnects: they may point
    /// at a server that restarts meanwhile.
    pub(crate) fn close(&self) {
        *lock(&self.pool) = None;
    }

    /// A connection to block on, or `None` when all are in use (the waiter falls back on
    /// notices).
    pub(crate) async fn lease(&self) -> Result<Option<Lease>, CallError> {
        let Some(pool) = lock(&self.pool).clone() else {
            return Err(CallError::Down);
        };
        let state = pool.state();
        if state.idle_connections == 0 && state.connections >= MAX_BLOCKERS {
            return Ok(None);
        }
        lock(&self.failure.0).take();
        match pool.get_owned().await {
            Ok(lease) => Ok(Some(lease)),
            Err(RunError::User(e)) => Err(e),
            // No connection within the connect timeout: either one failed to open (the sink
            // has why), or every one was taken meanwhile.
            Err(RunError::TimedOut) => match lock(&self.failure.0).take() {
                Some(e) => Err(e),
                None => Ok(None),
            },
        }
    }
}
