//! What the clones of one channel handle share (the bus, the name and roles, the bound
//! queues), below both the `Channel` handle and its event stream.

use crate::context::BusInner;
use crate::error::Result;
use crate::name::QueueName;
use crate::queue::Queue;
use crate::util::lock;
use std::sync::{Arc, Mutex};

pub(crate) struct Bound {
    pub(crate) inbox: Queue,
    pub(crate) outbox: Queue,
    pub(crate) session: String,
    /// The session's span (see `Channel::bind`).
    pub(crate) span: tracing::Span,
}

pub(crate) struct ChannelInner {
    pub(crate) bus: Arc<BusInner>,
    pub(crate) name: String,
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) bound: Mutex<Option<Bound>>,
    pub(crate) op_lock: tokio::sync::Mutex<()>,
}

/// The queue a peer with `role` consumes.
pub(crate) fn queue_name(role: &str, channel: &str) -> Result<QueueName> {
    QueueName::new(format!("channel:{role}:{channel}"))
}

impl ChannelInner {
    /// Leaves the channel: sends `farewell` (if any) to the remote, stops consuming and detaches
    /// both queues. Returns false when not bound.
    pub(crate) async fn unbind(&self, farewell: Option<bytes::Bytes>) -> Result<bool> {
        let _op = self.op_lock.lock().await;
        let Some(bound) = lock(&self.bound).take() else {
            return Ok(false);
        };
        let mut result = Ok(());
        if let Some(frame) = farewell {
            result = bound.outbox.push_frame(frame).await.map(|_| ());
        }
        let inbox = bound.inbox.detach().await;
        let outbox = bound.outbox.detach().await;
        tracing::debug!(parent: &bound.span, farewell = result.is_ok(), "channel session ended");
        result.and(inbox).and(outbox).map(|()| true)
    }
}
