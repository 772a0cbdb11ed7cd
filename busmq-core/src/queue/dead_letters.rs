//! Moving messages to a dead-letter queue (SPEC Q13): the DLQ is an ordinary queue, attached by
//! the consumer on first use, and a message is acknowledged in its source queue only after the
//! DLQ push succeeded, so a crash in between leaves it pending instead of losing it.

use super::Queue;
use super::options::AttachOptions;
use super::settler::DeadLetterSink;
use crate::context::BusInner;
use crate::error::Result;
use crate::name::QueueName;
use crate::store::{DeadLetter, NewEntry};
use futures::future::BoxFuture;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The dead-letter queue of one consumer.
pub(crate) struct DeadLetters {
    bus: Arc<BusInner>,
    source: QueueName,
    name: QueueName,
    ttl: Duration,
    queue: Mutex<Option<Queue>>,
}

impl fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetters").field("name", &self.name).finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// The sink of a consumer of `source` (a [`DeadLetterFactory`](super::settler::DeadLetterFactory)).
    pub(crate) fn sink(
        bus: Arc<BusInner>,
        source: QueueName,
        name: QueueName,
        ttl: Duration,
    ) -> Box<dyn DeadLetterSink> {
        Box::new(DeadLetters { bus, source, name, ttl, queue: Mutex::new(None) })
    }

    /// Pushes one message (keeping its headers) to the dead-letter queue with why it got there.
    async fn push_one(
        &self,
        id: u64,
        deliveries: u32,
        mut message: NewEntry,
        reason: String,
    ) -> Result<()> {
        // The slot stays locked until the push is written: the consumer's end detaches the
        // dead-letter queue through the same lock, and a reject by a holder after `max` (its
        // delivery outlives the stream, SPEC Q13) must not push into a queue detached under it.
        let mut slot = self.queue.lock().await;
        let queue = match &*slot {
            Some(queue) => queue.clone(),
            None => {
                let queue = Queue::new(self.bus.clone(), self.name.clone());
                queue.attach_with(AttachOptions::new().ttl(self.ttl)).await?;
                *slot = Some(queue.clone());
                queue
            }
        };
        let dead = DeadLetter { queue: self.source.to_string(), id, deliveries, reason };
        message.dead = Some(Arc::new(dead));
        queue.push_entries(vec![message]).await?;
        drop(slot);
        Ok(())
    }

    /// Detaches the dead-letter queue if it was attached.
    async fn detach_queue(&self) {
        if let Some(queue) = self.queue.lock().await.take() {
            let _ = queue.detach().await;
        }
    }
}

impl DeadLetterSink for DeadLetters {
    fn push(
        &self,
        id: u64,
        deliveries: u32,
        message: NewEntry,
        reason: String,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.push_one(id, deliveries, message, reason))
    }

    fn detach(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.detach_queue())
    }

    fn name(&self) -> &str {
        self.name.as_str()
    }
}
