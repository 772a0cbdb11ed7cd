//! The Redis side of `Store::take_wait`: an at-most-once take that, when nothing is ready,
//! blocks in Redis (`BLMPOP` on the page list the next push appends to) so that a push wakes
//! the consumer with its entries in the same step, instead of a notice and then a take.
//!
//! Right after a pop that drained its page, the consumer's next wait skips the take and blocks
//! at once on that page and the next one (a push may have crossed into it): the page the
//! consumer drained is the head or below it, so a pop there keeps the queue's order. Entries
//! released by a reliable consumer meanwhile (the returned zset) are not seen by such a wait,
//! so it blocks for at most [`HINTED_BLOCK`] before the next wait takes normally.
//!
//! The wait ends early (`CLIENT UNBLOCK`) when the caller cancels, the queue is closed or the
//! session is reset; a blocked pop is never abandoned before Redis answered, so whatever it
//! popped reaches the caller. Without a free blocking connection, or when the queue does not
//! exist, it waits for a notice and takes.

use crate::errors::{CallError, is_connection_error, unexpected};
use crate::fast::Fast;
use crate::scripts::scripts;
use crate::store::RedisStore;
use busmq_core::store::{ConsumerId, Notice, TakeMode, Taken};
use busmq_core::{QueueName, Result, Store};
use futures::StreamExt;
use redis::Value;
use std::time::Duration;
use tokio::sync::Notify;

/// Server-side block time bounds (the caller's wait is clamped into them).
const MIN_BLOCK: Duration = Duration::from_millis(10);
const MAX_BLOCK: Duration = Duration::from_secs(60);
/// The longest block of a wait that skipped the take (see above).
const HINTED_BLOCK: Duration = Duration::from_millis(100);
/// Hints kept at most (consumers that stopped right after a pop leave theirs behind).
const HINTS_LIMIT: usize = 10_000;

/// The page list after `key` (`<prefix>p:<k>` -> `<prefix>p:<k + 1>`).
fn next_page(key: &str) -> Option<String> {
    let (prefix, k) = key.rsplit_once(':')?;
    let k: u64 = k.parse().ok()?;
    Some(format!("{prefix}:{}", k + 1))
}

impl RedisStore {
    pub(crate) async fn wait_take(
        &self,
        queue: &QueueName,
        consumer: &ConsumerId,
        max: u32,
        wait: Duration,
        cancel: &Notify,
    ) -> Result<Taken> {
        let s = self.shared();
        let keys = s.layout.queue(queue.as_str());
        let route = s.route("take", queue, &keys).await?;
        let inst = &s.instances[route.index];
        let context = || s.context("take", inst, Some(queue.as_str()), None);
        // Watched before the take, so that a close or a reset in between still ends the wait.
        let mut notices =
            inst.hub.watch(keys.channel.clone(), 0).await.map_err(|e| context().error(e))?;
        let hint_key = (queue.as_str().to_string(), consumer.as_str().to_string());
        let hint = s.wait_hints.lock().unwrap_or_else(|e| e.into_inner()).remove(&hint_key);
        let hinted = hint.is_some();
        let (page, block) = match hint {
            Some(page) => (Some(page), wait.min(HINTED_BLOCK)),
            None => match self.take_or_page(queue, max).await? {
                Ok(taken) => return Ok(taken),
                Err(page) => (page, wait),
            },
        };
        let lease = match &page {
            Some(_) => s.blockers[route.index].lease().await.map_err(|e| context().error(e))?,
            None => None,
        };
        let (Some(page), Some(mut lease)) = (page, lease) else {
            // Wait for a notice, then take.
            tokio::select! {
                _ = notices.next() => {}
                _ = cancel.notified() => return Ok(Taken::default()),
                _ = tokio::time::sleep(wait) => return Ok(Taken::default()),
            }
            return self.take(queue, consumer, max, TakeMode::AtMostOnce).await;
        };
        let Some(blocker) = lease.blocker.as_ref() else {
            return Ok(Taken::default());
        };
        let (mut conn, id) = (blocker.conn.clone(), blocker.id);
        let block = block.clamp(MIN_BLOCK, MAX_BLOCK);
        let mut cmd = redis::cmd("BLMPOP");
        cmd.arg(format!("{:.3}", block.as_secs_f64()));
        match hinted.then(|| next_page(&page)).flatten() {
            Some(next) => cmd.arg(2).arg(&page).arg(next),
            None => cmd.arg(1).arg(&page),
        };
        cmd.arg("LEFT").arg("COUNT").arg(max);
        let pop = async move { cmd.query_async::<Value>(&mut conn).await };
        tokio::pin!(pop);
        // The connection has no response timeout: this deadline is the backstop.
        let limit = tokio::time::sleep(block + s.config.response_timeout);
        tokio::pin!(limit);
        let mut unblocked = false;
        let outcome = loop {
            let stop = tokio::select! {
                r = &mut pop => break Some(r),
                _ = &mut limit => break None,
                _ = cancel.notified(), if !unblocked => true,
                n = notices.next(), if !unblocked => !matches!(n, Some(Notice::Available)),
            };
            if stop {
                unblocked = true;
                let _ = inst.query(redis::cmd("CLIENT").arg("UNBLOCK").arg(id)).await;
            }
        };
        match outcome {
            // Dropping the connection closes it, which ends the block on the server.
            None => Ok(Taken::default()),
            Some(Err(e)) if is_connection_error(&e) => {
                // Most likely a connection left over from before a restart; the next wait
                // opens a fresh one (and its take reports the instance if it is down).
                lease.blocker = None;
                Ok(Taken::default())
            }
            Some(Err(e)) => Err(context().error(CallError::from(e))),
            Some(Ok(Value::Nil)) => {
                lease.keep();
                Ok(Taken::default())
            }
            Some(Ok(Value::Array(mut parts))) if parts.len() == 2 => {
                lease.keep();
                let items = match parts.pop() {
                    Some(Value::Array(items)) => items,
                    other => return Err(unexpected("take", format!("{other:?}"))),
                };
                let n = items.len();
                let from = match parts.pop() {
                    Some(Value::BulkString(key)) => String::from_utf8(key).ok(),
                    _ => None,
                };
                if let Some(from) = from.filter(|_| n < max as usize) {
                    // The pop drained that page: the next wait may block on it at once.
                    let mut hints = s.wait_hints.lock().unwrap_or_else(|e| e.into_inner());
                    if hints.len() >= HINTS_LIMIT {
                        hints.clear();
                    }
                    hints.insert(hint_key, from);
                }
                // Popped means removed: foreign entries are moved aside (see `taken`).
                self.taken(queue, items, Vec::new()).await
            }
            Some(Ok(other)) => {
                lease.keep();
                Err(unexpected("take", format!("{other:?}")))
            }
        }
    }

    /// The take before a wait: its entries, or (when nothing is ready) the page list the next
    /// push appends to (`None` when the queue does not exist).
    async fn take_or_page(
        &self,
        queue: &QueueName,
        max: u32,
    ) -> Result<std::result::Result<Taken, Option<String>>> {
        match self.fast_take(queue, max).await? {
            Fast::Taken(taken) => return Ok(Ok(taken)),
            Fast::Empty(page) => return Ok(Err(Some(page))),
            Fast::Slow => {}
        }
        let reply = self
            .shared()
            .run("take", queue, &scripts().take, |cmd, _| {
                cmd.arg(max).arg("a").arg(0).arg(0).arg("w");
            })
            .await?;
        match reply.status() {
            "ok" if reply.len() == 3 && reply.text(2).is_some() => {
                Ok(Err(reply.text(2).map(String::from)))
            }
            "ok" => self.take_reply(queue, reply).await.map(Ok),
            "missing" => Ok(Err(None)),
            other => Err(unexpected("take", other)),
        }
    }
}
