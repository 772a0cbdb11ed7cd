//! What a requester receives: the replies routed to one request, under the requester's own
//! deadline, as raw frames ([`RawReplies`]), a typed stream ([`Replies`]) or one final
//! [`Reply`].

use super::router::{Registration, Routed};
use super::wire::ReplyKind;
use crate::error::{Error, Result};
use crate::headers::Headers;
use busmq_codec::Codec;
use futures::Stream;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// A reply with the headers the server sent it with
/// ([`Request::reply_with`](super::Request::reply_with)).
#[derive(Clone, Debug)]
pub struct Reply<T> {
    body: T,
    headers: Headers,
}

impl<T> Reply<T> {
    /// The reply.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// Takes the reply.
    pub fn into_body(self) -> T {
        self.body
    }

    /// The headers the server sent; empty when it sent none.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
}

/// The replies of one request under a deadline. `rearm` makes the deadline the longest wait
/// for each reply instead of for the final one.
pub(crate) struct RawReplies {
    rx: mpsc::UnboundedReceiver<Routed>,
    _registration: Registration,
    service: String,
    codec: Codec,
    timeout: Duration,
    rearm: bool,
    sleep: Pin<Box<Sleep>>,
    done: bool,
}

impl RawReplies {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Routed>,
        registration: Registration,
        service: String,
        codec: Codec,
        timeout: Duration,
        deadline: Instant,
        rearm: bool,
    ) -> Self {
        // The first deadline was set before the request was sent: sending counts against it.
        let sleep = Box::pin(tokio::time::sleep_until(deadline));
        RawReplies {
            rx,
            _registration: registration,
            service,
            codec,
            timeout,
            rearm,
            sleep,
            done: false,
        }
    }

    fn poll_routed(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Routed>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(routed)) => {
                if routed.kind.is_final() {
                    self.done = true;
                } else if self.rearm {
                    let now = Instant::now();
                    if let Some(next) = now.checked_add(self.timeout) {
                        self.sleep.as_mut().reset(next);
                    }
                }
                return Poll::Ready(Some(Ok(routed)));
            }
            Poll::Ready(None) => {
                // The router stopped: its reply queue is gone with the bus connection.
                self.done = true;
                return Poll::Ready(Some(Err(Error::NotConnected)));
            }
            Poll::Pending => {}
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.done = true;
                Poll::Ready(Some(Err(Error::Timeout {
                    operation: "request",
                    target: format!("service {:?}", self.service),
                    after: self.timeout,
                })))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    pub(crate) async fn next_routed(&mut self) -> Option<Result<Routed>> {
        std::future::poll_fn(|cx| self.poll_routed(cx)).await
    }

    pub(crate) fn decode<T: DeserializeOwned>(&self, routed: Routed) -> Result<Reply<T>> {
        let body = self.codec.decode(&routed.body).map_err(|source| Error::Decode {
            target: format!("service {:?}", self.service),
            id: routed.message,
            source,
        })?;
        Ok(Reply { body, headers: routed.headers })
    }

    pub(crate) fn failed(&self, routed: &Routed) -> Error {
        Error::ServiceFailed {
            service: self.service.clone(),
            message: String::from_utf8_lossy(&routed.body).into_owned(),
        }
    }

    /// Waits for the final outcome. Partial replies are skipped; a server that ended with
    /// `end()` answers with its last partial reply.
    pub(crate) async fn final_reply<T: DeserializeOwned>(mut self) -> Result<Reply<T>> {
        let mut last = None;
        while let Some(routed) = self.next_routed().await {
            let routed = routed?;
            match routed.kind {
                ReplyKind::Partial => last = Some(routed),
                ReplyKind::Final => return self.decode(routed),
                ReplyKind::Failed => return Err(self.failed(&routed)),
                ReplyKind::End => return self.decode(last.unwrap_or(routed)),
            }
        }
        unreachable!("a reply stream ends only after its final outcome")
    }
}

/// The replies of [`Service::request_stream`](super::Service::request_stream): every partial
/// reply in order, then the final reply if it has a body, then the end. A failure of the
/// server (`ServiceFailed`), an undecodable reply (`Decode`, the stream goes on) or a timeout
/// (the next reply did not come within the request's timeout; the stream ends) are `Err` items.
pub struct Replies<T> {
    raw: RawReplies,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Replies<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replies").field("service", &self.raw.service).finish_non_exhaustive()
    }
}

impl<T> Replies<T> {
    pub(crate) fn new(raw: RawReplies) -> Self {
        Replies { raw, _marker: PhantomData }
    }
}

impl<T> Unpin for Replies<T> {}

impl<T: DeserializeOwned> Stream for Replies<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let raw = &mut self.get_mut().raw;
        let routed = match raw.poll_routed(cx) {
            Poll::Ready(Some(Ok(routed))) => routed,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(match routed.kind {
            ReplyKind::Partial | ReplyKind::Final => Some(raw.decode(routed).map(Reply::into_body)),
            ReplyKind::Failed => Some(Err(raw.failed(&routed))),
            ReplyKind::End => None,
        })
    }
}
