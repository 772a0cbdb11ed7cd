//! Delayed and scheduled messages on the queue handle (SPEC P8): `schedule` a message for
//! later, `cancel_scheduled` it while it waits.

use super::{PushOptions, Queue};
use crate::error::{Error, Result};
use crate::store::{MAX_DELAY, NewEntry, ScheduleBatch, Scheduled};
use bytes::Bytes;
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// When a scheduled message comes due, for [`Queue::schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// This long after the call.
    After(Duration),
    /// Not before this time. It is turned into a delay against this host's clock when
    /// [`Queue::schedule`] is called, and that delay is then applied on the store's clock:
    /// busmq never compares the clocks of two hosts, so a skew between them does not move the
    /// message (the time it takes the call to reach the store does, a little). A time in the
    /// past means "now".
    NotBefore(SystemTime),
}

impl When {
    /// The delay from now.
    fn delay(self) -> Duration {
        match self {
            When::After(delay) => delay,
            When::NotBefore(at) => at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO),
        }
    }
}

impl Queue {
    /// Schedules a message (SPEC P8): it stays invisible (not counted, not taken, not replayed)
    /// until `when`, then it is delivered like a message pushed at that time, in due order
    /// among the other due messages. It gets its message id when it comes due (ids are in
    /// delivery order); until then the returned [`Scheduled`] names it for
    /// [`Queue::cancel_scheduled`]. It is stored like a push (it survives a restart of a
    /// persistent store, and with `replicas_ack` the call waits for the replicas likewise).
    ///
    /// The handle must be attached (`NotAttached` otherwise: unlike `push`, a schedule is not
    /// buffered until the attach completes). A delay above [`MAX_DELAY`] (30 days) is
    /// `InvalidOption("delay")`. `maxsize` counts the message only once it is due: scheduling
    /// is never refused as full, and a promotion may take the queue over its maxsize (pushes
    /// are then refused until consumers catch up). A scheduled message is written in its own
    /// store call, so it is not ordered with pushes of the same handle that are still being
    /// written.
    pub async fn schedule<T: Serialize + ?Sized>(
        &self,
        message: &T,
        when: When,
    ) -> Result<Scheduled> {
        self.schedule_with(message, when, PushOptions::new()).await
    }

    /// [`Queue::schedule`] with options: the headers travel with the message (SPEC P6). A
    /// dedupe key or a retry deadline is `InvalidOption("dedupe")` / `InvalidOption("retry_for")`:
    /// a dedupe key answers with a message id, which a scheduled message does not have yet.
    /// A [`priority`](PushOptions::priority) and an [`ordering_key`](PushOptions::ordering_key)
    /// go with the message: when it comes due it is routed like a push made at that moment
    /// (behind its key's message that is out, if any).
    pub async fn schedule_with<T: Serialize + ?Sized>(
        &self,
        message: &T,
        when: When,
        options: impl Into<PushOptions>,
    ) -> Result<Scheduled> {
        let payload = self.encode(message)?;
        self.schedule_checked(payload, when, options.into()).await
    }

    /// [`Queue::schedule_with`] for bytes as they are, without the codec.
    pub async fn schedule_raw(
        &self,
        payload: impl Into<Bytes>,
        when: When,
        options: impl Into<PushOptions>,
    ) -> Result<Scheduled> {
        let payload = payload.into();
        self.check_size(payload.len())?;
        self.schedule_checked(payload, when, options.into()).await
    }

    async fn schedule_checked(
        &self,
        payload: Bytes,
        when: When,
        options: PushOptions,
    ) -> Result<Scheduled> {
        if options.dedupe.is_some() {
            return Err(Error::invalid_option(
                "dedupe",
                "a scheduled message has no id to answer a dedupe key with",
            ));
        }
        if options.retry.is_some() {
            return Err(Error::invalid_option("retry_for", "a schedule is not retried"));
        }
        let routing = options.checked_routing()?;
        let delay = when.delay();
        if delay > MAX_DELAY {
            return Err(Error::invalid_option("delay", "a message is delayed by at most 30 days"));
        }
        let entry: NewEntry = self.message(payload, options.headers)?;
        self.inner.bus.ensure_connected()?;
        let held = self.held()?;
        routing.check_spec(&held.spec)?;
        let entry = routing.apply(entry);
        let batch = ScheduleBatch::new(held.generation, &held.spec, &entry, delay);
        self.inner.bus.store.schedule(&self.inner.name, &batch).await
    }

    /// Withdraws a message scheduled with [`Queue::schedule`] if it has not come due yet.
    /// Returns whether it was still waiting: `false` once it was delivered (or is ready to
    /// be), was cancelled already, or its queue incarnation is gone. Works without attaching.
    pub async fn cancel_scheduled(&self, scheduled: &Scheduled) -> Result<bool> {
        self.inner.bus.ensure_connected()?;
        self.inner.bus.store.cancel(&self.inner.name, scheduled).await
    }

    fn held(&self) -> Result<super::lifecycle::Held> {
        let phase = *self.inner.phase.borrow();
        phase.held().ok_or_else(|| match phase.can_push(&self.inner.name) {
            Err(error) => error,
            Ok(()) => Error::NotAttached { queue: self.inner.name.to_string() },
        })
    }
}
