//! Settlement of reliable deliveries: acks, releases and extensions from many deliveries are
//! coalesced into one store call (acks are batched, DESIGN "Batching"), and the set of
//! deliveries a consumer holds is tracked so it can extend or release them.

use super::dead_letters::DeadLetters;
use crate::error::{Error, Result};
use crate::name::QueueName;
use crate::store::{Settle, Settled, StoreHandle};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

type Waiter = Option<oneshot::Sender<Result<Settled>>>;

#[derive(Default)]
struct Pending {
    ops: Vec<(Settle, Waiter)>,
    running: bool,
}

/// Settles the reliable deliveries of one consumer.
pub(crate) struct Settler {
    pub(crate) store: StoreHandle,
    pub(crate) queue: QueueName,
    pub(crate) visibility: Duration,
    pub(crate) dead_letters: DeadLetters,
    pending: Mutex<Pending>,
    /// Deliveries handed to user code and not yet settled: id -> delivery number.
    held: Mutex<HashMap<u64, u32>>,
}

impl fmt::Debug for Settler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settler").field("queue", &self.queue).finish_non_exhaustive()
    }
}

/// Most settlements per store call.
const BATCH: usize = 1024;

impl Settler {
    pub(crate) fn new(
        store: StoreHandle,
        queue: QueueName,
        visibility: Duration,
        dead_letters: DeadLetters,
    ) -> Arc<Self> {
        Arc::new(Settler {
            store,
            queue,
            visibility,
            dead_letters,
            pending: Mutex::new(Pending::default()),
            held: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn hold(&self, id: u64, delivery: u32) {
        self.held.lock().expect("settler lock").insert(id, delivery);
    }

    fn unhold(&self, id: u64, delivery: u32) {
        let mut held = self.held.lock().expect("settler lock");
        if held.get(&id) == Some(&delivery) {
            held.remove(&id);
        }
    }

    /// Every delivery currently held by user code.
    pub(crate) fn held(&self) -> Vec<(u64, u32)> {
        self.held.lock().expect("settler lock").iter().map(|(id, d)| (*id, *d)).collect()
    }

    /// Forgets every held delivery (they were released when the consumer stopped) and returns
    /// them.
    pub(crate) fn take_held(&self) -> Vec<(u64, u32)> {
        self.held.lock().expect("settler lock").drain().collect()
    }

    /// Settles one delivery and waits for the store's answer.
    pub(crate) async fn settle(self: &Arc<Self>, op: Settle) -> Result<()> {
        let (id, delivery) = settle_key(&op);
        let finishes = !matches!(op, Settle::Extend { .. });
        let (tx, rx) = oneshot::channel();
        self.enqueue(op, Some(tx));
        let outcome = rx.await.unwrap_or_else(|_| {
            Err(Error::Store {
                backend: "core",
                operation: "settle",
                message: "the settlement was abandoned (the runtime is shutting down)".into(),
                retryable: false,
                source: None,
            })
        });
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                // The settlement may not have happened. A delivery whose ack, nack or return
                // failed is no longer this consumer's to extend: it comes back after its
                // visibility timeout instead of staying held (and renewed) for ever. A failed
                // extension changes nothing: the delivery is still held.
                if finishes {
                    self.unhold(id, delivery);
                }
                return Err(error);
            }
        };
        match outcome {
            Settled::Done => {
                if finishes {
                    self.unhold(id, delivery);
                }
                Ok(())
            }
            Settled::Stale => {
                self.unhold(id, delivery);
                Err(Error::StaleDelivery { queue: self.queue.to_string(), id, delivery })
            }
        }
    }

    /// Settles without waiting (a dropped delivery is released this way).
    pub(crate) fn settle_later(self: &Arc<Self>, op: Settle) {
        let (id, delivery) = settle_key(&op);
        self.unhold(id, delivery);
        self.enqueue(op, None);
    }

    /// Settles many at once and waits (used when a consumer stops).
    pub(crate) async fn settle_all(&self, ops: Vec<Settle>) -> Result<()> {
        for chunk in ops.chunks(BATCH) {
            self.store.settle(&self.queue, chunk).await?;
        }
        Ok(())
    }

    fn enqueue(self: &Arc<Self>, op: Settle, waiter: Waiter) {
        if tokio::runtime::Handle::try_current().is_err() {
            // Dropped outside a runtime: the delivery comes back after its visibility timeout.
            return;
        }
        let start = {
            let mut pending = self.pending.lock().expect("settler lock");
            pending.ops.push((op, waiter));
            !std::mem::replace(&mut pending.running, true)
        };
        if start {
            tokio::spawn(self.clone().run());
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let batch: Vec<(Settle, Waiter)> = {
                let mut pending = self.pending.lock().expect("settler lock");
                if pending.ops.is_empty() {
                    pending.running = false;
                    return;
                }
                let n = pending.ops.len().min(BATCH);
                pending.ops.drain(..n).collect()
            };
            let (ops, waiters): (Vec<Settle>, Vec<Waiter>) = batch.into_iter().unzip();
            match self.store.settle(&self.queue, &ops).await {
                Ok(outcomes) => {
                    for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                        if let Some(tx) = waiter {
                            let _ = tx.send(Ok(outcome));
                        }
                    }
                }
                Err(error) => {
                    for tx in waiters.into_iter().flatten() {
                        let _ = tx.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

fn settle_key(op: &Settle) -> (u64, u32) {
    match op {
        Settle::Ack { id, delivery }
        | Settle::Release { id, delivery }
        | Settle::Return { id, delivery }
        | Settle::Extend { id, delivery, .. } => (*id, *delivery),
    }
}
