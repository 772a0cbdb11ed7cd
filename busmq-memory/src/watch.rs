//! Per-queue wake-ups for watchers: a `tokio::sync::watch` of counters, turned into a stream of
//! [`Notice`]s that ends when the store disconnects.
//!
//! Counters instead of a queue of notices: a watcher that falls behind sees that something
//! changed (coalesced) and never loses a `Closed`, and nothing is buffered per watcher.

use busmq_core::store::Notice;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::watch;

/// How many times messages became available and the queue was closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Signal {
    available: u64,
    closed: u64,
}

/// The sending side, held by the queue's slot.
#[derive(Debug)]
pub(crate) struct Notifier {
    tx: watch::Sender<Signal>,
}

impl Notifier {
    pub(crate) fn new() -> Self {
        Notifier { tx: watch::Sender::new(Signal::default()) }
    }

    pub(crate) fn available(&self) {
        if self.has_watchers() {
            self.tx.send_modify(|s| s.available = s.available.wrapping_add(1));
        }
    }

    pub(crate) fn closed(&self) {
        if self.has_watchers() {
            self.tx.send_modify(|s| s.closed = s.closed.wrapping_add(1));
        }
    }

    pub(crate) fn has_watchers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// A receiver that sees every change made after this call.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Signal> {
        self.tx.subscribe()
    }
}

struct Watcher {
    signals: watch::Receiver<Signal>,
    epoch: watch::Receiver<u64>,
    started: u64,
    seen: Signal,
    queued: Option<Notice>,
}

/// Turns a receiver into notices until the store's `epoch` moves away from `started` (the
/// store disconnected) or the queue's data is dropped.
pub(crate) fn notices(
    mut signals: watch::Receiver<Signal>,
    epoch: watch::Receiver<u64>,
    started: u64,
) -> BoxStream<'static, Notice> {
    let seen = *signals.borrow_and_update();
    let watcher = Watcher { signals, epoch, started, seen, queued: None };
    stream::unfold(watcher, |mut w| async move {
        loop {
            if let Some(notice) = w.queued.take() {
                return Some((notice, w));
            }
            let started = w.started;
            let changed = tokio::select! {
                biased;
                _ = w.epoch.wait_for(|e| *e != started) => false,
                changed = w.signals.changed() => changed.is_ok(),
            };
            if !changed {
                return None;
            }
            let now = *w.signals.borrow_and_update();
            let closed = now.closed != w.seen.closed;
            let available = now.available != w.seen.available;
            w.seen = now;
            // A close followed by a new incarnation's push reports both, close first.
            match (closed, available) {
                (true, true) => {
                    w.queued = Some(Notice::Available);
                    return Some((Notice::Closed, w));
                }
                (true, false) => return Some((Notice::Closed, w)),
                (false, true) => return Some((Notice::Available, w)),
                (false, false) => {}
            }
        }
    })
    .boxed()
}
