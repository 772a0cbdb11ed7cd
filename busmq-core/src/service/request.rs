//! A request as a server sees it: the body, and the means to answer it (partial replies, then
//! one final outcome), which acknowledges it in the service queue.

use super::shared::ServerShared;
use super::wire::{self, ReplyKind};
use crate::error::Result;
use crate::headers::Headers;
use crate::queue::Delivery;
use crate::util::lock;
use bytes::Bytes;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

/// What answers a request: shared by the [`Request`] and, in the handler form, by the task
/// that sends the handler's result. Dropped without a final answer, it gives the request back.
pub(crate) struct Answer {
    server: Arc<ServerShared>,
    id: String,
    reply_to: String,
    /// The claim on the request in the service queue: acknowledged after the final reply,
    /// released (the request goes to another server at once) if dropped before.
    delivery: Mutex<Option<Delivery<Bytes>>>,
    seq: AtomicU32,
    answered: AtomicBool,
    /// The server's concurrency slot, free again once the request is answered or given back.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    span: tracing::Span,
}

impl Drop for Answer {
    fn drop(&mut self) {
        if !*self.answered.get_mut() {
            tracing::debug!(parent: &self.span, "request given back unanswered");
        }
    }
}

impl Answer {
    pub(crate) fn new(
        server: Arc<ServerShared>,
        id: String,
        reply_to: String,
        delivery: Delivery<Bytes>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let span = tracing::debug_span!(
            parent: &server.span,
            "service_request",
            service = server.service,
            request = id,
            deliveries = delivery.deliveries(),
        );
        Answer {
            server,
            id,
            reply_to,
            delivery: Mutex::new(Some(delivery)),
            seq: AtomicU32::new(0),
            answered: AtomicBool::new(false),
            permit: Mutex::new(Some(permit)),
            span,
        }
    }

    fn target(&self) -> String {
        format!("service {:?}", self.server.service)
    }

    fn encode<T: Serialize + ?Sized>(&self, kind: ReplyKind, seq: u32, body: &T) -> Result<Bytes> {
        let buffer = wire::reply_buffer(kind, &self.id, seq);
        self.server.bus.config.encode_after(|| self.target(), buffer, body)
    }

    /// Sends a partial reply; a no-op once the request has its final answer.
    pub(crate) async fn partial<T: Serialize + ?Sized>(
        &self,
        body: &T,
        headers: Headers,
    ) -> Result<()> {
        if self.answered.load(Ordering::Acquire) {
            return Ok(());
        }
        let seq = self.seq.fetch_add(1, Ordering::AcqRel);
        let frame = self.encode(ReplyKind::Partial, seq, body)?;
        let sent = self.server.outbox.send(&self.reply_to, frame, headers);
        sent.instrument(self.span.clone()).await
    }

    /// Sends the final reply with a body.
    pub(crate) async fn reply<T: Serialize + ?Sized>(
        &self,
        body: &T,
        headers: Headers,
    ) -> Result<()> {
        let frame = self.encode_final(body)?;
        self.finish(frame, headers).await
    }

    /// The frame of a final reply. Encoded before anything is settled: a body that cannot be
    /// encoded leaves the request open, to be failed instead.
    pub(crate) fn encode_final<T: Serialize + ?Sized>(&self, body: &T) -> Result<Bytes> {
        self.encode(ReplyKind::Final, self.seq.load(Ordering::Acquire), body)
    }

    /// Sends a failure as the final outcome.
    pub(crate) async fn fail(&self, message: &str) -> Result<()> {
        let mut frame =
            wire::reply_buffer(ReplyKind::Failed, &self.id, self.seq.load(Ordering::Acquire));
        frame.extend_from_slice(message.as_bytes());
        self.finish(frame.into(), Headers::new()).await
    }

    /// Ends the request without a body.
    pub(crate) async fn end(&self) -> Result<()> {
        let frame = wire::reply_buffer(ReplyKind::End, &self.id, self.seq.load(Ordering::Acquire));
        self.finish(frame.into(), Headers::new()).await
    }

    /// The request's span (its handler runs in it).
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Sends a final frame, then acknowledges the request (once, whoever calls).
    pub(crate) async fn finish(&self, frame: Bytes, headers: Headers) -> Result<()> {
        if self.answered.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let span = self.span.clone();
        async {
            // A reply queue that is gone (its requester died) must not hold the request: it is
            // acknowledged whatever became of the reply (after the retries of a failure that
            // may pass), which the requester could not use.
            let sent = self.server.outbox.send_final(&self.reply_to, frame, headers).await;
            if let Err(error) = &sent {
                tracing::debug!(%error, "final reply not sent");
            }
            let delivery = lock(&self.delivery).take();
            if let Some(delivery) = delivery {
                if let Err(error) = delivery.ack().await {
                    tracing::debug!(%error, "answered request not acknowledged");
                }
            }
            lock(&self.permit).take();
            tracing::debug!(sent = sent.is_ok(), "request answered");
            sent
        }
        .instrument(span)
        .await
    }
}

/// A request handed to a server by [`Server`](super::Server) (or to a handler of
/// [`Service::serve_with`](super::Service::serve_with)).
///
/// Answer it with any number of [`partial`](Request::partial) replies and then one final
/// outcome: [`reply`](Request::reply), [`reply_with`](Request::reply_with),
/// [`fail`](Request::fail) or [`end`](Request::end). The final outcome acknowledges the
/// request in the service queue.
///
/// Dropping a request without a final outcome gives it back at once: another server (or this
/// one) gets it again, and its requester still waits (within its deadline). A server that dies
/// holding a request gives it back after the visibility timeout.
pub struct Request<T> {
    body: T,
    headers: Headers,
    deliveries: u32,
    answer: Arc<Answer>,
}

impl<T: fmt::Debug> fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("service", &self.answer.server.service)
            .field("id", &self.answer.id)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl<T> Request<T> {
    pub(crate) fn new(body: T, headers: Headers, deliveries: u32, answer: Arc<Answer>) -> Self {
        Request { body, headers, deliveries, answer }
    }

    pub(crate) fn answer(&self) -> Arc<Answer> {
        self.answer.clone()
    }

    /// The request's id, unique per request (random, 128 bits); the same on a redelivery.
    pub fn id(&self) -> &str {
        &self.answer.id
    }

    /// The request.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// Takes the request's body. Outside a handler this drops the request unanswered, which
    /// gives it back (see [`Request`]); inside one, the handler's result is still sent.
    pub fn into_body(self) -> T {
        self.body
    }

    /// The headers the requester sent (`RequestOptions::headers`); empty when it sent none.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// How many times this request was delivered to a server, this time included (more than 1
    /// when a server before this one died or gave it back).
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// Sends a partial reply; the requester of a stream gets them in order. A no-op once the
    /// final outcome was sent (by the handler form's result, say).
    pub async fn partial<R: Serialize + ?Sized>(&self, part: &R) -> Result<()> {
        self.answer.partial(part, Headers::new()).await
    }

    /// Sends the final reply and acknowledges the request. The request is acknowledged even if
    /// the reply could not be sent (its requester is gone, say); the error is returned.
    pub async fn reply<R: Serialize + ?Sized>(self, reply: &R) -> Result<()> {
        self.answer.reply(reply, Headers::new()).await
    }

    /// [`Request::reply`] with headers; the requester gets them with
    /// [`Service::request_reply`](super::Service::request_reply).
    pub async fn reply_with<R: Serialize + ?Sized>(
        self,
        reply: &R,
        headers: Headers,
    ) -> Result<()> {
        self.answer.reply(reply, headers).await
    }

    /// Answers with a failure: the requester gets
    /// [`Error::ServiceFailed`](crate::Error::ServiceFailed) with `message`.
    pub async fn fail(self, message: impl AsRef<str>) -> Result<()> {
        self.answer.fail(message.as_ref()).await
    }

    /// Ends the request without a final body (after partial replies: the requester's stream
    /// ends there).
    pub async fn end(self) -> Result<()> {
        self.answer.end().await
    }
}
