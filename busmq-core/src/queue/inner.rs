//! The state one queue handle and its clones share (attachment phase, consumer, producer,
//! keeper, counters, metrics, events): what the consumer, producer and keeper tasks work on,
//! below the `Queue` handle itself.

use super::consumer::pipe::ConsumerShared;
use super::consumer::turn::{Seen, Turn};
use super::event::QueueEvent;
use super::lifecycle::Phase;
use super::producer::{Producer, Target};
use crate::context::{AttachedQueue, BusInner};
use crate::error::Result;
use crate::name::QueueName;
use crate::observability::{QueueMetrics, background_error};
use crate::util::lock;
use futures::future::BoxFuture;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// What the bus needs of an attached queue (detaching every handle when it disconnects).
impl AttachedQueue for QueueInner {
    fn queue_name(&self) -> &QueueName {
        &self.name
    }

    fn detach_all(self: Arc<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move { super::Queue::from_inner(self).detach().await })
    }
}

pub(crate) struct QueueInner {
    pub(crate) bus: Arc<BusInner>,
    pub(crate) name: QueueName,
    pub(crate) phase: watch::Sender<Phase>,
    pub(crate) available: watch::Sender<u64>,
    /// The turn of this queue's reliable consumers on this bus, once one consumed here.
    pub(crate) turn: OnceLock<Arc<Turn>>,
    /// Where the turn was when the keeper last signalled `available` (see `turn.rs`): taken as
    /// the notice arrives, not when the consumer gets to it, so that more takes cover it.
    pub(crate) noticed: Mutex<Option<Seen>>,
    pub(crate) consumer: tokio::sync::Mutex<Option<Arc<ConsumerShared>>>,
    pub(crate) consumed: AtomicU64,
    pub(crate) events: broadcast::Sender<QueueEvent>,
    pub(crate) producer: Arc<Producer>,
    pub(crate) op_lock: tokio::sync::Mutex<()>,
    pub(crate) keeper: Mutex<Option<JoinHandle<()>>>,
    /// Made on first use, so that a handle only asked for `stat` takes no queue label value.
    pub(crate) metrics: OnceLock<Arc<QueueMetrics>>,
}

impl QueueInner {
    /// Sends an event; an error is also logged and counted (every `QueueEvent::Error`).
    pub(crate) fn emit(&self, event: QueueEvent) {
        if let QueueEvent::Error(error) = &event {
            background_error(Some(self.name.as_str()), error);
            self.metrics().error(error);
        }
        let _ = self.events.send(event);
    }

    /// This handle's metric handles.
    pub(crate) fn metrics(&self) -> &Arc<QueueMetrics> {
        self.metrics.get_or_init(|| {
            let label = self.bus.labels.value(&self.name);
            Arc::new(QueueMetrics::new(label, self.bus.store.backend()))
        })
    }

    pub(crate) fn target(&self) -> Target {
        Target {
            store: self.bus.store.clone(),
            name: self.name.clone(),
            phase: self.phase.subscribe(),
            events: self.events.clone(),
            metrics: self.metrics().clone(),
        }
    }

    /// Tells the consumer that messages may be available (a notice, or a reset that may have
    /// lost some).
    pub(crate) fn signal_available(&self) {
        if let Some(turn) = self.turn.get() {
            *lock(&self.noticed) = Some(turn.seen());
        }
        self.available.send_modify(|seq| *seq = seq.wrapping_add(1));
    }

    pub(crate) fn stop_keeper(&self) {
        if let Some(keeper) = lock(&self.keeper).take() {
            keeper.abort();
        }
    }

    /// Another client closed the queue: consumers end without returning messages, buffered
    /// pushes fail with `Closed`, and `Closed` is reported once.
    pub(crate) fn closed_elsewhere(&self) {
        let changed = self.phase.send_if_modified(|phase| {
            if phase.held().is_some() {
                *phase = Phase::Closed;
                true
            } else {
                false
            }
        });
        if changed {
            self.stop_keeper();
            tracing::info!(queue = self.name.as_str(), "queue closed by another client");
            // A consumer waiting inside the store would only notice at the end of its wait.
            if let Ok(slot) = self.consumer.try_lock() {
                if let Some(active) = slot.as_ref() {
                    active.request_stop();
                }
            }
            self.emit(QueueEvent::Closed);
        }
    }

    pub(crate) async fn stop_consumer(&self) {
        let active = self.consumer.lock().await.clone();
        if let Some(active) = active {
            active.request_stop();
            active.finished().await;
        }
    }
}

impl Drop for QueueInner {
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.get_mut().ok().and_then(Option::take) {
            keeper.abort();
        }
        // A handle dropped while attached detaches in the background, so that the queue's
        // expiry starts now rather than when its lease runs out.
        if let Some(held) = self.phase.borrow().held() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let store = self.bus.store.clone();
                let name = self.name.clone();
                runtime.spawn(async move {
                    let _ = store.detach(&name, held.generation).await;
                });
            }
        }
    }
}
