//! A consumer: a background task (`task.rs`, driven by the fetch machine of `fetch.rs`) takes
//! batches from the store into a small buffer (`pipe.rs`), and the user's `Stream` hands them
//! out one by one. Whatever was taken but not handed out when the consumer stops, is dropped or
//! detaches goes back to the head of the queue (SPEC Q12), or is returned to the store in
//! reliable mode.

mod cursor;
mod fetch;
pub(crate) mod pipe;
mod receive;
mod taking;
mod task;
pub(crate) mod turn;

use super::delivery::{Claim, Delivery};
use super::event::QueueEvent;
use super::inner::QueueInner;
use super::lifecycle::Phase;
use super::options::{ConsumeMode, ConsumeOptions, ReliableOptions, dead_letter_name};
use super::settler::{DeadLetterFactory, Settler};
use crate::error::{Error, Result};
use crate::observability::{ConsumerMetrics, log_error};
use crate::store::{ConsumerKind, ConsumerOp, Entry};
use crate::util::lock;
use busmq_codec::{Codec, CodecError};
use bytes::Bytes;
use futures::Stream;
use pipe::{ConsumerShared, Standing};
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use task::CONSUMER_LEASE;
use tracing::Instrument;

/// How a consumer turns payloads into `T`.
pub(crate) struct Decoder<T> {
    /// Decodes a payload; it may take the payload out of its argument, and then says where it
    /// is in `T` with `payload_in`.
    decode: fn(Codec, &mut Bytes) -> std::result::Result<T, CodecError>,
    /// Where the decoded value keeps the payload, when `decode` moved it there: for raw bytes,
    /// the body is the payload, and a second handle on it would cost an allocation per message
    /// (a `Bytes` made from the reply's `Vec` allocates its shared header on its first clone).
    payload_in: Option<fn(&T) -> &Bytes>,
}

impl<T> Clone for Decoder<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Decoder<T> {}

/// A stream of deliveries from one queue (SPEC Q10-Q14). It ends when consuming stops: after
/// `max` deliveries, on [`Queue::stop`](crate::Queue::stop), on detach or close, or when the bus
/// disconnects. Dropping it stops consuming; messages it had taken and not yielded go back to
/// the head of the queue.
///
/// Items are `Err` only for messages that do not decode into `T` (SPEC E2: reported with their
/// id, not dropped) and for a consumer that could not start (`MixedConsumers`).
pub struct Consumer<T> {
    shared: Arc<ConsumerShared>,
    queue: Arc<QueueInner>,
    codec: Codec,
    decode: Decoder<T>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.queue.name)
            .field("id", &self.shared.id)
            .finish()
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.shared.request_stop();
    }
}

impl<T> Consumer<T> {
    /// Stops consuming and waits until undelivered messages are back in the queue.
    pub async fn stop(&self) {
        self.shared.request_stop();
        self.shared.finished().await;
    }

    /// Stops consuming like [`Consumer::stop`], but leaves the deliveries already handed out
    /// with their holders, who settle them later (a graceful service stop).
    pub(crate) async fn stop_keeping_held(&self) {
        self.shared.request_stop_keeping_held();
        self.shared.finished().await;
    }

    /// This consumer's id in the store.
    pub fn id(&self) -> &str {
        self.shared.id.as_str()
    }

    /// Counts an error met by what reads this consumer (a channel's frames).
    pub(crate) fn count_error(&self, error: &Error) {
        self.shared.metrics.error(error);
    }
}

impl<T> Stream for Consumer<T> {
    type Item = Result<Delivery<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let entry = {
            let mut state = lock(&this.shared.state);
            if let Some(error) = state.errors.pop_front() {
                return Poll::Ready(Some(Err(error)));
            }
            if this.shared.max.is_some_and(|max| state.handed >= max) {
                return Poll::Ready(None);
            }
            let mut gone = 0;
            let next = loop {
                match state.buffer.front().map(|b| b.standing()) {
                    // Not this delivery any more (redelivered, or its queue flushed or
                    // closed): handing it out would be a second delivery under the same count.
                    Some(Standing::Gone) => {
                        state.buffer.pop_front();
                        gone += 1;
                    }
                    // Maybe taken back by the store: the task asks it first, and the stream
                    // waits (the entries behind it keep their order).
                    Some(Standing::Lapsed) => {
                        if !std::mem::replace(&mut state.confirm, true) {
                            this.shared.wake_task.notify_one();
                        }
                        state.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    _ => break state.buffer.pop_front().map(|b| b.entry),
                }
            };
            if gone > 0 {
                tracing::debug!(
                    parent: &this.shared.span,
                    gone,
                    "buffered deliveries dropped: the store had taken them back"
                );
                this.shared.wake_task.notify_one();
            }
            match next {
                Some(entry) => {
                    state.handed += 1;
                    if this.shared.max == Some(state.handed) {
                        state.stop = true;
                        this.shared.wake_task.notify_one();
                    } else if state.buffer.len() <= this.shared.prefetch / 2 {
                        this.shared.wake_task.notify_one();
                    }
                    entry
                }
                None if state.finished => return Poll::Ready(None),
                None => {
                    state.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        this.queue.consumed.fetch_add(1, Ordering::Relaxed);
        this.shared.metrics.delivered(entry.id, entry.deliveries);
        if entry.deliveries > 1 {
            let (id, deliveries) = (entry.id, entry.deliveries);
            tracing::debug!(parent: &this.shared.span, id, deliveries, "redelivery");
        }
        Poll::Ready(Some(this.to_delivery(entry)))
    }
}

impl<T> Consumer<T> {
    fn to_delivery(&self, mut entry: Entry) -> Result<Delivery<T>> {
        let claim = self
            .shared
            .settler
            .as_ref()
            .map(|s| Claim::new(s.clone(), entry.id, entry.deliveries, entry.receipt.clone()));
        match (self.decode.decode)(self.codec, &mut entry.payload) {
            Ok(body) => Ok(Delivery::new(entry, body, claim, self.decode.payload_in)),
            Err(source) => {
                // Reliable: the claim is dropped here, which releases the message so that it
                // is not acknowledged and eventually reaches the dead-letter queue (SPEC E2).
                drop(claim);
                let error = Error::Decode {
                    target: format!("queue {:?}", self.queue.name.as_str()),
                    id: entry.id,
                    source,
                };
                log_error("undecodable message", Some(self.queue.name.as_str()), &error);
                self.shared.metrics.error(&error);
                Err(error)
            }
        }
    }
}

fn decode_typed<T: serde::de::DeserializeOwned>(
    codec: Codec,
    payload: &mut Bytes,
) -> std::result::Result<T, CodecError> {
    codec.decode(payload)
}

fn decode_raw(_codec: Codec, payload: &mut Bytes) -> std::result::Result<Bytes, CodecError> {
    Ok(std::mem::take(payload))
}

/// Starts a consumer on `queue`. Registration happens now when attached (so that
/// `MixedConsumers` is returned here), else when the queue gets attached.
pub(crate) async fn start<T: 'static>(
    queue: &Arc<QueueInner>,
    options: ConsumeOptions,
    decode: Decoder<T>,
    dead_letters: DeadLetterFactory,
) -> Result<Consumer<T>> {
    options.validate(&queue.name)?;
    let kind = match options.mode {
        ConsumeMode::Replay(_) => ConsumerKind::Replaying,
        _ => ConsumerKind::Removing,
    };
    let mut slot = queue.consumer.lock().await;
    // A consumer that was dropped or stopped (or reached its `max`) is still giving back what
    // it holds: wait for it rather than refuse, so that a new consumer starts after the
    // give-back and sees those messages first.
    while let Some(active) = slot.clone().filter(|active| !active.is_finished()) {
        if !active.stop_requested() {
            return Err(Error::AlreadyConsuming { queue: queue.name.to_string() });
        }
        drop(slot);
        active.finished().await;
        slot = queue.consumer.lock().await;
    }
    let phase = *queue.phase.borrow();
    phase.can_consume(&queue.name)?;
    let id = queue.bus.next_consumer_id();
    let registered = if let Phase::Attached(_) = phase {
        queue.bus.ensure_connected()?;
        let op = ConsumerOp::Register { id: id.clone(), kind, lease: CONSUMER_LEASE };
        queue.bus.store.consumers(&queue.name, op).await?;
        true
    } else {
        false
    };
    let mode = match &options.mode {
        ConsumeMode::AtMostOnce => "at_most_once",
        ConsumeMode::Reliable(_) => "reliable",
        ConsumeMode::Replay(_) => "replay",
    };
    let metrics = Arc::new(queue.metrics().consumer(mode));
    let span = tracing::debug_span!("consumer", queue = queue.name.as_str(), consumer = %id, mode);
    let settler = match &options.mode {
        ConsumeMode::Reliable(reliable) => {
            Some(make_settler(queue, reliable, &phase, dead_letters, metrics.clone())?)
        }
        _ => None,
    };
    let auto_extend = match &options.mode {
        ConsumeMode::Reliable(reliable) => reliable.auto_extend,
        _ => true,
    };
    let shared = Arc::new(ConsumerShared::new(
        id,
        options.max,
        options.prefetch as usize,
        settler,
        auto_extend,
        metrics,
        span.clone(),
    ));
    *slot = Some(shared.clone());
    drop(slot);
    if registered {
        queue.emit(QueueEvent::Consuming(true));
    }
    let task = task::run(shared.clone(), queue.clone(), options, kind, registered);
    tokio::spawn(task.instrument(span));
    Ok(Consumer {
        shared,
        queue: queue.clone(),
        codec: queue.bus.config.codec,
        decode,
        _marker: PhantomData,
    })
}

pub(crate) fn typed<T: serde::de::DeserializeOwned>() -> Decoder<T> {
    Decoder { decode: decode_typed::<T>, payload_in: None }
}

pub(crate) fn raw() -> Decoder<Bytes> {
    Decoder { decode: decode_raw, payload_in: Some(|body| body) }
}

fn make_settler(
    queue: &Arc<QueueInner>,
    reliable: &ReliableOptions,
    phase: &Phase,
    dead_letters: DeadLetterFactory,
    metrics: Arc<ConsumerMetrics>,
) -> Result<Arc<Settler>> {
    let dlq = dead_letter_name(&queue.name, reliable)?;
    let ttl = phase.held().map(|h| h.spec.ttl).unwrap_or(Duration::from_secs(30));
    let sink = dead_letters(queue.bus.clone(), queue.name.clone(), dlq, ttl);
    let store = queue.bus.store.clone();
    Ok(Settler::new(
        store,
        queue.name.clone(),
        reliable.visibility_timeout,
        sink,
        metrics,
        reliable.retry,
        reliable.max_deliveries,
    ))
}
