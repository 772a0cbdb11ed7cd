//! Where a server sends replies: the requesters' reply queues, kept attached for a short while
//! so that a requester sending many requests costs one attach, not one per reply.

use super::router::REPLY_TTL;
use crate::context::BusInner;
use crate::error::Result;
use crate::headers::Headers;
use crate::name::QueueName;
use crate::queue::{AttachOptions, Queue};
use crate::util::lock;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Reply queues kept attached at most, per server.
const KEEP: usize = 64;

/// How long a final reply is retried while the store cannot take it: as long as a requester's
/// reply queue outlives its last renewal, so that a reply that could still be read is not given
/// up on while one that nobody can read any more is.
const FINAL_RETRY: Duration = REPLY_TTL;

/// The reply queues one server has attached, by name, with their last use.
pub(crate) struct Outbox {
    bus: Arc<BusInner>,
    queues: Mutex<HashMap<String, (Queue, Instant)>>,
}

impl Outbox {
    pub(crate) fn new(bus: Arc<BusInner>) -> Self {
        Outbox { bus, queues: Mutex::new(HashMap::new()) }
    }

    /// Pushes `frame` to the reply queue `reply_to`. A requester that is gone leaves a queue
    /// nobody consumes: attached with the short reply ttl, it expires soon after this server
    /// lets it go.
    pub(crate) async fn send(&self, reply_to: &str, frame: Bytes, headers: Headers) -> Result<()> {
        let queue = self.queue(reply_to).await?;
        queue.push_raw_with(frame, headers).await.map(|_| ())
    }

    /// Pushes a final reply, trying again with backoff while the failure is one that may pass
    /// (the store unreachable, slow or failing over), for at most [`FINAL_RETRY`]: the request
    /// is acknowledged after it whatever happened, so a single failed push would lose the
    /// answer of a request that was served. A retry after a timeout may write the reply twice;
    /// the requester keeps only the first final reply of a request.
    pub(crate) async fn send_final(
        &self,
        reply_to: &str,
        frame: Bytes,
        headers: Headers,
    ) -> Result<()> {
        let until = Instant::now() + FINAL_RETRY;
        let mut wait = Duration::from_millis(20);
        loop {
            match self.send(reply_to, frame.clone(), headers.clone()).await {
                Err(error) if error.is_retryable() && Instant::now() + wait < until => {
                    tracing::debug!(%error, ?wait, "final reply not sent; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
                sent => return sent,
            }
        }
    }

    async fn queue(&self, reply_to: &str) -> Result<Queue> {
        let now = Instant::now();
        if let Some((queue, used)) = lock(&self.queues).get_mut(reply_to) {
            *used = now;
            return Ok(queue.clone());
        }
        let queue = Queue::new(self.bus.clone(), QueueName::new(reply_to)?);
        queue.attach_with(AttachOptions::new().ttl(REPLY_TTL)).await?;
        let mut queues = lock(&self.queues);
        // Idle ones go first (a requester that stopped asking), then the least recently used:
        // dropping a handle detaches it in the background.
        queues.retain(|_, (_, used)| now.saturating_duration_since(*used) < REPLY_TTL / 2);
        while queues.len() >= KEEP {
            let oldest = queues.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
            match oldest {
                Some(name) => queues.remove(&name),
                None => break,
            };
        }
        let queue = queues.entry(reply_to.to_string()).or_insert((queue, now)).0.clone();
        Ok(queue)
    }
}
