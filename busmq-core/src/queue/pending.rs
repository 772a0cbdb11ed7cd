//! The futures a push returns: resolved by the producer's worker through a oneshot channel,
//! or failed at once when the push was refused before it was queued.

use crate::error::{Error, Result};
use crate::name::QueueName;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

pub(super) enum Pending<T> {
    /// Boxed: rare (a refused push, an empty batch), while every push future is moved into
    /// whatever polls it, so its size is paid on each push.
    Done(Option<Box<Result<T>>>),
    Waiting(oneshot::Receiver<Result<T>>, QueueName),
}

impl<T> Pending<T> {
    pub(super) fn done(result: Result<T>) -> Self {
        Pending::Done(Some(Box::new(result)))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match self {
            // Polled again after it returned its result.
            Pending::Done(result) => Poll::Ready(result.take().map_or_else(
                || Err(Error::Shutdown { operation: "push", queue: String::new() }),
                |result| *result,
            )),
            Pending::Waiting(rx, name) => Pin::new(rx).poll(cx).map(|r| {
                r.unwrap_or_else(|_| {
                    Err(Error::Shutdown { operation: "push", queue: name.to_string() })
                })
            }),
        }
    }
}

/// A push in progress. The message was accepted (encoded and queued) when `push` returned;
/// awaiting gives its id once written. Dropping it does not cancel the push; a failure nobody
/// awaits is reported as a [`QueueEvent::Error`](super::event::QueueEvent::Error).
pub struct Push(pub(super) Pending<u64>);

impl Future for Push {
    type Output = Result<u64>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<u64>> {
        self.0.poll(cx)
    }
}

impl fmt::Debug for Push {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Push")
    }
}

/// An atomic batch push in progress (see [`Push`]); resolves to the ids in order.
pub struct PushAll(pub(super) Pending<Vec<u64>>);

impl Future for PushAll {
    type Output = Result<Vec<u64>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Vec<u64>>> {
        self.0.poll(cx)
    }
}

impl fmt::Debug for PushAll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushAll")
    }
}

impl Push {
    pub(crate) fn failed(error: Error) -> Push {
        Push(Pending::done(Err(error)))
    }
}

impl PushAll {
    pub(crate) fn failed(error: Error) -> PushAll {
        PushAll(Pending::done(Err(error)))
    }
}
