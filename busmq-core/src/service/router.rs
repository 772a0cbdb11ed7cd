//! The requester's reply router: one private reply queue per service handle, consumed at most
//! once by one background task that hands each reply to the request waiting for it.
//!
//! It is also where the at-most-one-final-reply rule lives: a request is forgotten on its final
//! reply (or when its requester stops waiting), so a second final reply from a redelivered
//! request finds nobody; and partial replies a second server repeats from sequence 0 are
//! dropped when their sequence number was already delivered.

use super::wire::{self, ReplyKind};
use crate::context::BusInner;
use crate::headers::Headers;
use crate::name::QueueName;
use crate::queue::{AttachOptions, ConsumeOptions, Delivery, Queue};
use crate::util::{lock, random_u64};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The ttl of a reply queue: it is renewed while its service handle lives, and goes soon after
/// the handle (or its process) does. Servers attach with the same ttl to push a reply, so a
/// reply to a requester that is gone makes a queue that expires by itself.
pub(crate) const REPLY_TTL: Duration = Duration::from_secs(10);

/// One reply, as routed to its request.
#[derive(Debug)]
pub(crate) struct Routed {
    pub(crate) kind: ReplyKind,
    pub(crate) body: Bytes,
    pub(crate) headers: Headers,
    /// The reply's message id in the reply queue (for a decode error).
    pub(crate) message: u64,
}

struct Waiting {
    tx: mpsc::UnboundedSender<Routed>,
    /// The sequence number of the next partial reply not yet delivered.
    next_seq: u32,
}

/// The requests waiting for replies, and whether the router has ended: a request registered
/// after the end must learn it at once, not at its deadline.
#[derive(Default)]
struct Table {
    waiting: HashMap<String, Waiting>,
    ended: bool,
}

type Pending = Arc<Mutex<Table>>;

/// A service handle's reply queue and the task that routes its replies.
pub(crate) struct Router {
    pub(crate) reply_to: String,
    pending: Pending,
    task: JoinHandle<()>,
    /// Kept for its attachment: the queue lives (and is renewed) as long as the router.
    _queue: Queue,
}

impl Drop for Router {
    fn drop(&mut self) {
        // Ends the consumer with the task; the queue handle detaches as it goes.
        self.task.abort();
    }
}

/// Forgets its request when dropped: on the final reply, on a timeout, or when the requester
/// stops waiting, so that any later reply to it is dropped. It keeps the router (and so the
/// reply queue) alive while the request waits, even if its service handle is dropped.
pub(crate) struct Registration {
    id: String,
    router: Arc<Router>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.router.pending).waiting.remove(&self.id);
    }
}

impl Router {
    /// Attaches a new reply queue for `service` and starts routing.
    pub(crate) async fn start(bus: Arc<BusInner>, service: &str) -> crate::Result<Router> {
        let reply_to = format!("service:{service}:r:{:016x}", random_u64());
        let queue = Queue::new(bus, QueueName::new(&reply_to)?);
        queue.attach_with(AttachOptions::new().ttl(REPLY_TTL)).await?;
        let mut consumer = queue.consume_raw(ConsumeOptions::new()).await?;
        let pending: Pending = Arc::default();
        let routes = pending.clone();
        let task = tokio::spawn(async move {
            while let Some(item) = consumer.next().await {
                match item {
                    Ok(delivery) => route(&routes, delivery),
                    Err(error) => tracing::debug!(%error, "reply not routed"),
                }
            }
            // The consumer ended (detached, closed, bus disconnected): the waiting requests
            // learn it now rather than at their deadline, and so do later ones.
            let mut table = lock(&routes);
            table.ended = true;
            table.waiting.clear();
        });
        Ok(Router { reply_to, pending, task, _queue: queue })
    }

    /// Whether the router still routes (its consumer has not ended).
    pub(crate) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Waits for the replies to request `id`. On a router that has ended, the receiver is
    /// closed from the start.
    pub(crate) fn register(
        self: &Arc<Self>,
        id: &str,
    ) -> (mpsc::UnboundedReceiver<Routed>, Registration) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut table = lock(&self.pending);
        if !table.ended {
            table.waiting.insert(id.to_string(), Waiting { tx, next_seq: 0 });
        }
        drop(table);
        (rx, Registration { id: id.to_string(), router: self.clone() })
    }
}

/// Whether a reply is new to its request, given the next partial sequence number not yet
/// delivered (updated). Assumes a server sends a request's partial replies in order from 0, and
/// a second server (after a redelivery) sends the same ones again: a number already delivered
/// is a repeat. Final replies are always new: the request is forgotten after the first.
fn fresh(next_seq: &mut u32, kind: ReplyKind, seq: u32) -> bool {
    if kind != ReplyKind::Partial {
        return true;
    }
    if seq < *next_seq {
        return false;
    }
    *next_seq = seq.saturating_add(1);
    true
}

fn route(pending: &Pending, delivery: Delivery<Bytes>) {
    let frame = match wire::parse_reply(delivery.body()) {
        Ok(frame) => frame,
        Err(detail) => {
            tracing::debug!(id = delivery.id(), detail, "foreign reply dropped");
            return;
        }
    };
    let mut table = lock(pending);
    let pending = &mut table.waiting;
    let Some(waiting) = pending.get_mut(&frame.id) else {
        // Late (after a timeout or a first final reply) or a stranger's: nobody waits for it.
        tracing::debug!(
            request = frame.id,
            seq = frame.seq,
            "reply without a waiting request dropped"
        );
        return;
    };
    if !fresh(&mut waiting.next_seq, frame.kind, frame.seq) {
        return;
    }
    let routed = Routed {
        kind: frame.kind,
        body: frame.body,
        headers: delivery.headers().clone(),
        message: delivery.id(),
    };
    let _ = waiting.tx.send(routed);
    if frame.kind.is_final() {
        pending.remove(&frame.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_partial_replies_are_dropped() {
        let mut next = 0;
        let partial = ReplyKind::Partial;
        // The first server sends 0 and 1 and dies; the second sends 0, 1, 2 and its final.
        let seen: Vec<bool> =
            [0, 1, 0, 1, 2].iter().map(|&s| fresh(&mut next, partial, s)).collect();
        assert_eq!(seen, [true, true, false, false, true]);
        assert!(fresh(&mut next, ReplyKind::Final, 0));
    }
}
