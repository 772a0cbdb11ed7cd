//! The optional pipelined push: a backend whose pushes cross a network lets a producer send its
//! next batch before the previous one has answered, so that the producer's work and the
//! store's overlap instead of taking turns, without giving up the order of its pushes.

use super::entry::PushBatch;
use crate::error::Result;
use crate::name::QueueName;
use async_trait::async_trait;

/// Where a pipelined push stands in its producer's sequence of pushes to one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// This push's mark, distinct from every other push's (random 64 bits and a count): when
    /// the store writes the batch it remembers the mark as the queue's last linked push.
    pub mark: u64,
    /// The mark of the caller's previous push, when that one has not answered yet: the store
    /// writes this batch only if that push was written and no other linked push since.
    /// Otherwise it writes nothing and answers `None`, and the caller sends the batch again,
    /// with `follows: None`, once the previous push has answered.
    pub follows: Option<u64>,
    /// The id to give the first entry (the caller's clock, above the ids it expects its previous
    /// push to get). A push with `follows` is written with exactly these ids or not at all; one
    /// without may get others, as [`Store::push`](super::Store::push) gives them.
    pub first: u64,
}

/// A push that may be sent before the caller's previous push answered. Offered through
/// [`Store::pipelined`](super::Store::pipelined).
#[async_trait]
pub trait PipelinedPush: Send + Sync {
    /// The fewest entries a push that follows another may hold: the store refuses smaller
    /// ones without sending them, so callers keep those for when nothing is in flight.
    fn least(&self) -> usize {
        1
    }

    /// Pushes `batch` as [`Store::push`](super::Store::push) does (same refusals, same
    /// effects), under `link`. `Ok(None)`: nothing was written, because the push `link.follows`
    /// names was not the last linked push written to the queue, or because the store cannot
    /// write this batch without looking at more than one push could. A push without `follows`
    /// always answers with an id or an error.
    async fn push_linked(
        &self,
        queue: &QueueName,
        batch: &PushBatch<'_>,
        link: Link,
    ) -> Result<Option<u64>>;
}
