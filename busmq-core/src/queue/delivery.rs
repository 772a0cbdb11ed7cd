//! A delivered message: its id, its decoded body and, in reliable mode, the claim used to
//! acknowledge, release, reject or extend it.

use super::settler::Settler;
use crate::error::{Error, Result};
use crate::headers::{EMPTY, Headers};
use crate::observability::DeadReason;
use crate::store::{DeadLetter, Entry, NewEntry, Receipt, Settle, Settlement};
use bytes::Bytes;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// The right to settle one reliable delivery. Dropping it unsettled releases the message after
/// the consumer's retry policy's delay (at once with [`RetryPolicy::none`](super::RetryPolicy)),
/// instead of after the visibility timeout.
pub(crate) struct Claim {
    settler: Arc<Settler>,
    id: u64,
    delivery: u32,
    receipt: Receipt,
    settled: bool,
}

impl Claim {
    pub(crate) fn new(settler: Arc<Settler>, id: u64, delivery: u32, receipt: Receipt) -> Self {
        settler.hold(id, delivery, &receipt);
        Claim { settler, id, delivery, receipt, settled: false }
    }

    fn settle(&self, action: Settlement) -> Settle {
        Settle { id: self.id, delivery: self.delivery, receipt: self.receipt.clone(), action }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.settler.metrics.nacked();
        let delay = self.settler.retry.delay(self.delivery);
        if delay.is_zero() {
            self.settler.settle_later(self.settle(Settlement::Release));
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            // Dropped outside a runtime: it comes back after its visibility timeout.
            return;
        }
        let (settler, id, delivery) = (self.settler.clone(), self.id, self.delivery);
        let receipt = self.receipt.clone();
        tokio::spawn(async move {
            // A failure is counted by the settler; the delivery then comes back after its
            // visibility timeout.
            let _ = settler.release_after(id, delivery, receipt, delay).await;
        });
    }
}

/// A message delivered by a consumer (SPEC section 2: each with its id, and its delivery count in
/// reliable mode). Dereferences to the message body.
pub struct Delivery<T> {
    id: u64,
    deliveries: u32,
    body: T,
    /// Empty when `payload_in` says where the payload is.
    payload: Bytes,
    /// Where the body keeps the payload, when decoding moved it there (raw bytes).
    payload_in: Option<fn(&T) -> &Bytes>,
    dead: Option<Arc<DeadLetter>>,
    headers: Option<Arc<Headers>>,
    priority: u8,
    ordering_key: Option<Arc<str>>,
    claim: Option<Claim>,
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("deliveries", &self.deliveries)
            .field("body", &self.body)
            .field("reliable", &self.claim.is_some())
            .finish()
    }
}

impl<T> Delivery<T> {
    /// The delivery of `entry`, decoded as `body`.
    pub(crate) fn new(
        entry: Entry,
        body: T,
        claim: Option<Claim>,
        payload_in: Option<fn(&T) -> &Bytes>,
    ) -> Self {
        Delivery {
            id: entry.id,
            deliveries: entry.deliveries,
            body,
            payload: entry.payload,
            payload_in,
            dead: entry.dead,
            headers: entry.headers,
            priority: entry.priority,
            ordering_key: entry.ordering_key,
            claim,
        }
    }

    /// The message id (strictly increasing per queue, SPEC Q6).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many times this message has been delivered, this time included (reliable mode;
    /// 0 in at-most-once and replay modes).
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// The decoded message.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// Takes the decoded message. In reliable mode this releases the delivery (the message
    /// comes back); acknowledge first with [`Delivery::ack`] if it was processed.
    pub fn into_body(self) -> T {
        self.body
    }

    /// The message as stored (encoded bytes), e.g. to push it elsewhere unchanged.
    pub fn payload(&self) -> &Bytes {
        match self.payload_in {
            Some(payload_in) => payload_in(&self.body),
            None => &self.payload,
        }
    }

    /// Why and from where this message was dead-lettered, for messages read from a
    /// dead-letter queue.
    pub fn dead_letter(&self) -> Option<&DeadLetter> {
        self.dead.as_deref()
    }

    /// The priority level the message was pushed with (SPEC P12); 0 when it had none.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The ordering key the message was pushed with (SPEC P11), if any.
    pub fn ordering_key(&self) -> Option<&str> {
        self.ordering_key.as_deref()
    }

    /// The headers the message was pushed with (SPEC P6); empty when it had none.
    pub fn headers(&self) -> &Headers {
        self.headers.as_deref().unwrap_or(&EMPTY)
    }

    /// The trace context the producer's span wrote into the headers (`traceparent` and
    /// `tracestate`, see [`Headers::TRACEPARENT`]), as the remote parent of a consumer's span.
    /// `None` when the message carries no valid `traceparent`.
    ///
    /// ```
    /// # fn handle(delivery: &busmq_core::Delivery<String>) {
    /// use tracing_opentelemetry::OpenTelemetrySpanExt;
    ///
    /// let span = tracing::info_span!("handle job", id = delivery.id());
    /// if let Some(parent) = delivery.trace_context() {
    ///     // Before the span is entered: the trace goes on from the producer's span.
    ///     let _ = span.set_parent(parent);
    /// }
    /// let _entered = span.enter();
    /// # }
    /// ```
    #[cfg(feature = "opentelemetry")]
    pub fn trace_context(&self) -> Option<opentelemetry::Context> {
        crate::headers::w3c::extract(self.headers())
    }

    /// Whether this delivery must be acknowledged (reliable mode).
    pub fn is_reliable(&self) -> bool {
        self.claim.is_some()
    }

    /// Acknowledges: the message is done and will not be delivered again. A no-op outside
    /// reliable mode. Fails with `StaleDelivery` if the delivery was given to another consumer
    /// meanwhile (its visibility timeout passed).
    ///
    /// While the store answers that it did not run the ack (offline, reconnecting), the ack is
    /// retried with backoff for up to half the visibility timeout, so a reconnect does not turn
    /// into a redelivery. When the ack still fails (or fails in a way that may have run:
    /// `Timeout`, ...) it may or may not have been recorded. The consumer then stops extending the delivery, so if it
    /// was not recorded the message is delivered again once its visibility timeout has passed
    /// (at least once); it is never held for ever. The same holds for [`Delivery::nack`] and
    /// [`Delivery::reject`].
    pub async fn ack(mut self) -> Result<()> {
        self.finish(Settlement::Ack, true).await
    }

    /// Gives the message back to be delivered again (to this or another consumer), after the
    /// delay of the consumer's retry policy ([`ReliableOptions::retry`](crate::ReliableOptions);
    /// at once by default). Dropping a delivery unsettled does the same.
    pub async fn nack(self) -> Result<()> {
        let delay =
            self.claim.as_ref().map_or(Duration::ZERO, |c| c.settler.retry.delay(self.deliveries));
        self.nack_after(delay).await
    }

    /// Gives the message back to be delivered again (to any consumer) once `delay` has passed,
    /// not before (SPEC P9); at once when `delay` is zero. It keeps its delivery count, so
    /// `max_deliveries` still sends it to the dead-letter queue. Meanwhile it is counted as
    /// pending in [`QueueStat`](crate::store::QueueStat), not as ready. Delays above
    /// [`MAX_RETRY_DELAY`](crate::MAX_RETRY_DELAY) (30 days) are that long.
    pub async fn nack_after(mut self, delay: Duration) -> Result<()> {
        let delay = delay.min(super::retry::MAX_RETRY_DELAY);
        if delay.is_zero() {
            return self.finish(Settlement::Release, true).await;
        }
        let Some(claim) = self.claim.as_mut() else {
            return Ok(());
        };
        claim.settled = true;
        let settler = claim.settler.clone();
        let (id, delivery, receipt) = (claim.id, claim.delivery, claim.receipt.clone());
        // In a task of its own: the release waits for the heartbeat's extensions before it
        // unholds the delivery, and a caller that stopped waiting there (a timeout, a select)
        // would leave it held, and extended, for ever.
        let release = tokio::spawn({
            let settler = settler.clone();
            async move { settler.release_after(id, delivery, receipt, delay).await }
        });
        let shutdown = || Error::Shutdown { operation: "nack", queue: settler.queue.to_string() };
        release.await.unwrap_or_else(|_| Err(shutdown()))?;
        settler.metrics.nacked();
        Ok(())
    }

    /// Processing failed with `reason`: the message comes back after the delay of the
    /// consumer's retry policy (like [`Delivery::nack`]), unless this was its last allowed
    /// delivery (`max_deliveries`): then it moves to the dead-letter queue now, with the
    /// reason `"max_deliveries: <reason>"`, instead of coming back only to be dead-lettered
    /// with no word on why. This is what a [`Worker`](crate::Worker) does when a handler fails.
    pub async fn fail(self, reason: impl Into<String>) -> Result<()> {
        let Some(claim) = self.claim.as_ref() else {
            return Ok(());
        };
        let reason = reason.into();
        if self.deliveries >= claim.settler.max_deliveries {
            let reason = format!("max_deliveries: {reason}");
            return self.move_to_dead_letters(reason, DeadReason::MaxDeliveries).await;
        }
        tracing::debug!(
            queue = claim.settler.queue.as_str(),
            id = self.id,
            deliveries = self.deliveries,
            reason,
            "delivery failed; it comes back"
        );
        self.nack().await
    }

    /// Moves the message to the dead-letter queue with `reason`, then acknowledges it.
    pub async fn reject(self, reason: impl Into<String>) -> Result<()> {
        let reason = format!("rejected: {}", reason.into());
        self.move_to_dead_letters(reason, DeadReason::Rejected).await
    }

    async fn move_to_dead_letters(mut self, reason: String, why: DeadReason) -> Result<()> {
        let Some(claim) = self.claim.as_mut() else {
            return Ok(());
        };
        let settler = claim.settler.clone();
        let message =
            NewEntry { headers: self.headers.clone(), ..NewEntry::new(self.payload().clone()) };
        settler.dead_letters.push(self.id, self.deliveries, message, reason.clone()).await?;
        settler.metrics.dead_lettered(why);
        tracing::warn!(
            queue = settler.queue.as_str(),
            id = self.id,
            deliveries = self.deliveries,
            reason,
            dead_letter_queue = settler.dead_letters.name(),
            "message dead-lettered"
        );
        // Counted as dead-lettered, not as acknowledged.
        self.finish(Settlement::Ack, false).await
    }

    /// Keeps the message invisible to other consumers for `by` from now.
    pub async fn extend(&self, by: Duration) -> Result<()> {
        let Some(claim) = self.claim.as_ref() else {
            return Ok(());
        };
        claim.settler.settle(claim.settle(Settlement::Extend(by))).await
    }

    /// Settles; `counted` says whether a success counts as an ack or a nack.
    async fn finish(&mut self, action: Settlement, counted: bool) -> Result<()> {
        let Some(claim) = self.claim.as_mut() else {
            return Ok(());
        };
        claim.settled = true;
        let settler = claim.settler.clone();
        settler.settle(claim.settle(action)).await?;
        match action {
            Settlement::Ack if counted => settler.metrics.acked(),
            Settlement::Release if counted => settler.metrics.nacked(),
            _ => {}
        }
        Ok(())
    }

    /// Replaces the body, keeping id and claim (used to turn frames into messages).
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Delivery<U> {
        let payload = match self.payload_in {
            Some(payload_in) => payload_in(&self.body).clone(),
            None => self.payload,
        };
        Delivery {
            id: self.id,
            deliveries: self.deliveries,
            body: f(self.body),
            payload,
            payload_in: None,
            dead: self.dead,
            headers: self.headers,
            priority: self.priority,
            ordering_key: self.ordering_key,
            claim: self.claim,
        }
    }

    /// Settles a control frame that user code never sees.
    pub(crate) async fn ack_internal(self) -> Result<()> {
        self.ack().await
    }
}

impl<T> Deref for Delivery<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.body
    }
}

impl Delivery<Bytes> {
    /// Turns a channel frame into the user message it carries.
    pub(crate) fn map_message<U>(mut self, body: U, payload: Bytes) -> Delivery<U> {
        // The message's payload replaces the frame's before `map`, which would otherwise take
        // a handle on the frame (an allocation, see `payload_in`) only for it to be dropped.
        self.payload = payload;
        self.payload_in = None;
        self.map(|_| body)
    }
}
