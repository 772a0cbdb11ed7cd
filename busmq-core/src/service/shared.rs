//! What the requests of one server share (below both the server and its requests): the bus,
//! the service's name, where replies go, and the server's span.

use super::outbox::Outbox;
use crate::context::BusInner;
use crate::queue::Queue;
use std::sync::Arc;

/// What the requests of one server share.
pub(crate) struct ServerShared {
    pub(crate) bus: Arc<BusInner>,
    pub(crate) service: String,
    pub(crate) outbox: Outbox,
    /// The server's span: each request's span is its child.
    pub(crate) span: tracing::Span,
    /// Kept attached while a request of this server may still be acknowledged.
    pub(crate) _queue: Queue,
}
