//! Event streams: a broadcast channel seen as a `Stream`, shared by the bus and queue handles.
//! A subscriber that falls behind is told how many events it missed (an event of its own)
//! instead of silently skipping them.

use futures::{Stream, StreamExt};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// Events are kept in a bounded buffer per subscriber; a subscriber that falls this far behind
/// skips the oldest events rather than slowing the bus down, and gets a `Lagged` event saying
/// how many.
pub(crate) const EVENT_BUFFER: usize = 1024;

/// A stream of events of a bus or queue handle. Only events emitted after the stream was
/// created are seen, so create it before the operation whose events you want.
pub struct EventStream<E> {
    inner: Pin<Box<dyn Stream<Item = E> + Send>>,
}

impl<E: Clone + Send + 'static> EventStream<E> {
    /// `lagged(n)` is the event that stands for `n` events this subscriber missed.
    pub(crate) fn new(rx: broadcast::Receiver<E>, lagged: fn(u64) -> E) -> Self {
        let stream = BroadcastStream::new(rx).map(move |item| match item {
            Ok(event) => event,
            Err(BroadcastStreamRecvError::Lagged(missed)) => lagged(missed),
        });
        EventStream { inner: Box::pin(stream) }
    }
}

impl<E> Stream for EventStream<E> {
    type Item = E;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<E>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<E> fmt::Debug for EventStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}
