//! The ordered stream of one channel peer's events (SPEC C3): control frames from the inbox are
//! turned into `RemoteConnect` / `RemoteDisconnect` / `End`, message frames into typed messages.

use super::frame::{self, Frame};
use super::inner::ChannelInner;
use super::presence::Presence;
use crate::error::Error;
use crate::observability::log_error;
use crate::queue::{Consumer, Delivery, Queue};
use busmq_codec::Codec;
use bytes::Bytes;
use futures::Stream;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// What a channel peer sees, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChannelEvent<T> {
    /// This peer is bound to the channel.
    Connect,
    /// A remote peer is there (once per remote session; never caused by a data message).
    RemoteConnect,
    /// A message from the remote peer. In reliable mode it must be acknowledged.
    Message(Delivery<T>),
    /// The remote peer disconnected (or was replaced by a new remote session).
    RemoteDisconnect,
    /// This peer is no longer bound (it disconnected or ended, the remote ended the channel, or
    /// the bus disconnected). The stream ends after it.
    Disconnect,
    /// The remote peer ended the channel (SPEC C5). `Disconnect` follows.
    End,
    /// A message that did not decode (SPEC E2), a foreign frame, or a failure in the background.
    Error(Error),
}

/// The event stream returned by [`Channel::connect`](super::Channel::connect) and
/// [`Channel::listen`](super::Channel::listen).
pub struct ChannelEvents<T> {
    pending: VecDeque<ChannelEvent<T>>,
    consumer: Option<Consumer<Bytes>>,
    channel: Arc<ChannelInner>,
    outbox: Queue,
    session: String,
    presence: Presence,
    codec: Codec,
    done: bool,
    /// The session's span: what happens to the peer is logged in it.
    span: tracing::Span,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ChannelEvents<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelEvents").field("channel", &self.channel.name).finish_non_exhaustive()
    }
}

impl<T> ChannelEvents<T> {
    pub(crate) fn new(
        consumer: Consumer<Bytes>,
        channel: Arc<ChannelInner>,
        outbox: Queue,
        session: String,
        codec: Codec,
        span: tracing::Span,
    ) -> Self {
        ChannelEvents {
            pending: VecDeque::from([ChannelEvent::Connect]),
            consumer: Some(consumer),
            channel,
            outbox,
            session,
            presence: Presence::default(),
            codec,
            done: false,
            span,
            _marker: PhantomData,
        }
    }
}

// Nothing in the stream is pinned structurally: the inner consumer is `Unpin` and the queued
// events are only moved out.
impl<T> Unpin for ChannelEvents<T> {}

fn settle_in_background(delivery: Delivery<Bytes>) {
    if delivery.is_reliable() {
        tokio::spawn(delivery.ack_internal());
    }
}

impl<T: DeserializeOwned> ChannelEvents<T> {
    fn on_frame(&mut self, delivery: Delivery<Bytes>) {
        match frame::parse(delivery.body()) {
            Ok(Frame::Connect(session)) => {
                let reaction = self.presence.on_connect(&session);
                if reaction.remote_disconnect {
                    tracing::debug!(parent: &self.span, "remote peer replaced");
                    self.pending.push_back(ChannelEvent::RemoteDisconnect);
                }
                if reaction.remote_connect {
                    tracing::debug!(parent: &self.span, remote_session = session, "remote peer connected");
                    self.pending.push_back(ChannelEvent::RemoteConnect);
                }
                if reaction.greet {
                    let hello = self.outbox.push_frame(frame::connect(&self.session));
                    tokio::spawn(hello);
                }
                settle_in_background(delivery);
            }
            Ok(Frame::Disconnect(session)) => {
                if self.presence.on_disconnect(&session).remote_disconnect {
                    tracing::debug!(parent: &self.span, "remote peer disconnected");
                    self.pending.push_back(ChannelEvent::RemoteDisconnect);
                }
                settle_in_background(delivery);
            }
            Ok(Frame::End) => {
                tracing::debug!(parent: &self.span, "remote peer ended the channel");
                self.pending.push_back(ChannelEvent::End);
                settle_in_background(delivery);
                let channel = self.channel.clone();
                tokio::spawn(async move { channel.unbind(None).await });
            }
            Ok(Frame::Message(body)) => match self.codec.decode::<T>(&body) {
                Ok(message) => self
                    .pending
                    .push_back(ChannelEvent::Message(delivery.map_message(message, body))),
                Err(source) => {
                    let id = delivery.id();
                    drop(delivery);
                    let error = Error::Decode {
                        target: format!("channel {:?}", self.channel.name),
                        id,
                        source,
                    };
                    self.report(error, "undecodable message");
                }
            },
            Err(detail) => {
                let error = Error::ForeignData {
                    queue: self.channel.name.clone(),
                    detail: format!("message {} is {detail}", delivery.id()),
                };
                self.report(error, "foreign frame on a channel");
                if delivery.is_reliable() {
                    tokio::spawn(delivery.reject(detail));
                }
            }
        }
    }
}

impl<T> ChannelEvents<T> {
    /// Logs and counts an error of the stream, and queues it for the user.
    fn report(&mut self, error: Error, what: &'static str) {
        let _in_session = self.span.enter();
        log_error(what, Some(self.channel.name.as_str()), &error);
        if let Some(consumer) = &self.consumer {
            consumer.count_error(&error);
        }
        self.pending.push_back(ChannelEvent::Error(error));
    }
}

impl<T: DeserializeOwned> Stream for ChannelEvents<T> {
    type Item = ChannelEvent<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(event));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let Some(consumer) = this.consumer.as_mut() else {
                this.done = true;
                return Poll::Ready(Some(ChannelEvent::Disconnect));
            };
            match Pin::new(consumer).poll_next(cx) {
                Poll::Ready(Some(Ok(delivery))) => this.on_frame(delivery),
                Poll::Ready(Some(Err(error))) => this.pending.push_back(ChannelEvent::Error(error)),
                Poll::Ready(None) => this.consumer = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
