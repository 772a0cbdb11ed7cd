//! Publish/subscribe (SPEC P1): messages to every live subscriber of a topic, never stored.

use crate::error::Result;
use crate::name::TopicName;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// Topics of a store.
#[async_trait]
pub trait Topics: Send + Sync {
    /// Publishes `payload` to every live subscriber of `topic` (SPEC P1). Not stored. Returns
    /// how many subscriptions received it when the backend knows, else 0.
    async fn publish(&self, topic: &TopicName, payload: Bytes) -> Result<u64>;

    /// Subscribes to `topic`. The stream yields every message published after the subscription
    /// is established (when this call returns), exactly once, and survives reconnections.
    async fn subscribe(&self, topic: &TopicName) -> Result<BoxStream<'static, Bytes>>;
}
