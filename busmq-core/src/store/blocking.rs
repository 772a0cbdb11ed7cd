//! The optional blocking take: a backend that can wait inside the store for messages (Redis
//! `BLMPOP`, the memory store's own wake-ups) lets idle at-most-once consumers wait there, which
//! saves the round trip of "notice, then take" on every wake-up.

use super::entry::{Receipt, Taken};
use crate::error::Result;
use crate::name::QueueName;
use async_trait::async_trait;
use std::time::Duration;
use tokio::sync::Notify;

/// A take that waits for messages. Offered through [`Store::blocking`](super::Store::blocking).
#[async_trait]
pub trait BlockingTake: Send + Sync {
    /// Takes up to `max` ready entries in at-most-once mode like
    /// [`Store::take`](super::Store::take), but when none is ready waits up to `wait` for some
    /// to arrive and returns as soon as any are taken.
    ///
    /// `resume` is [`Taken::resume`] of the caller's previous wait on this queue (or the empty
    /// receipt): where the backend may go on waiting without looking first.
    ///
    /// When `cancel` is notified the store returns promptly, still returning whatever it took:
    /// callers never drop this future before it completes, so nothing taken is lost.
    async fn take_wait(
        &self,
        queue: &QueueName,
        max: u32,
        wait: Duration,
        cancel: &Notify,
        resume: &Receipt,
    ) -> Result<Taken>;
}
