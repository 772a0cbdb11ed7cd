//! Dedicated connections for blocking pops: an idle at-most-once consumer waits in Redis
//! (`BLMPOP` on the page the next push appends to) instead of waiting for a notice and then
//! taking, which saves a round trip per wake-up.
//!
//! A blocked command occupies its connection, so each waiter borrows one of its own (at most
//! [`MAX_BLOCKERS`] per instance; beyond that waiters fall back on notices). These connections
//! have no response timeout: the driver's timeout would fail a blocked pop on the client while
//! the server keeps it blocked, and that pop would later take messages nobody receives. The
//! server-side block time bounds the wait instead, and a connection that outlives its deadline
//! is dropped (closing it ends the block on the server).

use crate::access::{self, Who};
use crate::errors::CallError;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Blocking connections per instance, at most.
const MAX_BLOCKERS: usize = 64;

/// One borrowed blocking connection and its server-side client id (for `CLIENT UNBLOCK`).
#[derive(Debug)]
pub(crate) struct Blocker {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) id: i64,
}

/// The blocking connections of one instance (fixed addresses only: a Sentinel group's master
/// and a cluster slot's node change under them, and those consumers keep waiting for notices).
#[derive(Debug)]
pub(crate) struct Blockers {
    client: Option<Client>,
    connect_timeout: Duration,
    idle: Mutex<Vec<Blocker>>,
    out: AtomicUsize,
}

/// A borrowed connection; back to the pool with [`Lease::keep`], dropped otherwise.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    pool: &'a Blockers,
    pub(crate) blocker: Option<Blocker>,
}

impl Lease<'_> {
    /// The call ended cleanly: the connection may serve another waiter.
    pub(crate) fn keep(mut self) {
        if let Some(b) = self.blocker.take() {
            self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(b);
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.out.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Blockers {
    pub(crate) fn new(client: Option<Client>, connect_timeout: Duration) -> Blockers {
        Blockers { client, connect_timeout, idle: Mutex::new(Vec::new()), out: AtomicUsize::new(0) }
    }

    /// Whether this instance can block at all.
    pub(crate) fn enabled(&self) -> bool {
        self.client.is_some()
    }

    /// Forgets idle connections (after a disconnect: they may point at a restarted server).
    pub(crate) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A connection to block on, or `None` when all are in use (or blocking is off).
    pub(crate) async fn lease(&self) -> Result<Option<Lease<'_>>, CallError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        if self.out.fetch_add(1, Ordering::SeqCst) >= MAX_BLOCKERS {
            self.out.fetch_sub(1, Ordering::SeqCst);
            return Ok(None);
        }
        let mut lease = Lease { pool: self, blocker: None };
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(b) = idle {
            lease.blocker = Some(b);
            return Ok(Some(lease));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None);
        let open = async {
            let mut conn = access::connect(client, &config, self.connect_timeout).await?;
            let id = redis::cmd("CLIENT").arg("ID").query_async::<Value>(&mut conn).await;
            let who = Who::of(client.get_connection_info().redis_settings());
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
        lease.blocker = Some(Blocker { conn, id });
        Ok(Some(lease))
    }
}
