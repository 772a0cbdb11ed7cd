//! Pub/sub topics (SPEC P1): every live subscriber receives what is published; nothing is
//! stored. Subscriptions survive reconnections (the store re-subscribes).

use crate::context::BusInner;
use crate::error::{Error, Result};
use crate::name::TopicName;
use busmq_codec::Codec;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A handle on one topic.
#[derive(Clone)]
pub struct PubSub {
    bus: Arc<BusInner>,
    topic: TopicName,
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub").field("topic", &self.topic).finish()
    }
}

impl PubSub {
    pub(crate) fn new(bus: Arc<BusInner>, topic: TopicName) -> Self {
        PubSub { bus, topic }
    }

    fn target(&self) -> String {
        format!("topic {:?}", self.topic.as_str())
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }

    /// Publishes a message to the subscribers listening now. Returns how many subscriptions
    /// received it when the store can tell, else 0.
    pub async fn publish<T: Serialize + ?Sized>(&self, message: &T) -> Result<u64> {
        let payload = self.bus.config.encode(|| self.target(), message)?;
        self.bus.ensure_connected()?;
        self.bus.store.publish(&self.topic, payload).await
    }

    /// Publishes bytes as they are.
    pub async fn publish_raw(&self, payload: impl Into<Bytes>) -> Result<u64> {
        let payload = payload.into();
        self.bus.config.check_size(|| self.target(), payload.len())?;
        self.bus.ensure_connected()?;
        self.bus.store.publish(&self.topic, payload).await
    }

    /// Subscribes: every message published after this returns is delivered once, decoded as
    /// `T` (a message that does not decode is an `Err` item).
    pub async fn subscribe<T: DeserializeOwned>(&self) -> Result<Subscription<T>> {
        self.bus.ensure_connected()?;
        let stream = self.bus.store.subscribe(&self.topic).await?;
        Ok(Subscription {
            stream,
            codec: self.bus.config.codec,
            topic: self.topic.clone(),
            _marker: PhantomData,
        })
    }
}

/// The messages of one subscription. Dropping it unsubscribes.
pub struct Subscription<T> {
    stream: BoxStream<'static, Bytes>,
    codec: Codec,
    topic: TopicName,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("topic", &self.topic).finish()
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = &mut *self;
        this.stream.as_mut().poll_next(cx).map(|item| {
            item.map(|payload| {
                this.codec.decode(&payload).map_err(|source| Error::Decode {
                    target: format!("topic {:?}", this.topic.as_str()),
                    id: 0,
                    source,
                })
            })
        })
    }
}
