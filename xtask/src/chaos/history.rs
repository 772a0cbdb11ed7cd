//! What one chaos scenario records, as plain data: every push (acknowledged or not), every
//! delivery, and the window of every fault. The checker reads only this.

use std::sync::Mutex;
use tokio::time::Instant;

/// One push attempt. Sequence numbers are per queue, from 1, in push order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushRecord {
    pub(crate) queue: usize,
    pub(crate) seq: u64,
    /// When the push was issued (ms since the scenario started).
    pub(crate) started_ms: u64,
    /// Whether the bus acknowledged it (an error leaves it unknown: it may or may not exist).
    pub(crate) acked: bool,
}

/// One delivery handed to user code, in the order the recorder received them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeliveryRecord {
    pub(crate) queue: usize,
    pub(crate) seq: u64,
    /// Which consumer (task or process) got it.
    pub(crate) consumer: u32,
    /// The delivery count (reliable mode; 0 in at-most-once mode).
    pub(crate) deliveries: u32,
    pub(crate) at_ms: u64,
}

/// When a fault was injected and when it ended (the moment the system could work again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FaultWindow {
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
}

/// Everything one mode of one scenario recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    pub(crate) pushes: Vec<PushRecord>,
    pub(crate) deliveries: Vec<DeliveryRecord>,
    pub(crate) faults: Vec<FaultWindow>,
}

/// Collects a [`History`] from concurrent workers, on one clock.
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    history: Mutex<History>,
    /// Anomalies the workers saw (a consumer stream that ended by itself, ...).
    notes: Mutex<Vec<String>>,
}

impl Recorder {
    pub(crate) fn new(start: Instant) -> Recorder {
        Recorder { start, history: Mutex::new(History::default()), notes: Mutex::new(Vec::new()) }
    }

    /// Milliseconds since the scenario started.
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn with<T>(&self, f: impl FnOnce(&mut History) -> T) -> T {
        f(&mut self.history.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn pushed(&self, queue: usize, seq: u64, started_ms: u64, acked: bool) {
        self.with(|h| h.pushes.push(PushRecord { queue, seq, started_ms, acked }));
    }

    pub(crate) fn delivered(&self, queue: usize, seq: u64, consumer: u32, deliveries: u32) {
        let at_ms = self.now();
        self.with(|h| {
            h.deliveries.push(DeliveryRecord { queue, seq, consumer, deliveries, at_ms })
        });
    }

    pub(crate) fn fault(&self, window: FaultWindow) {
        self.with(|h| h.faults.push(window));
    }

    /// How many deliveries were recorded so far (to see whether a drain still progresses).
    pub(crate) fn delivery_count(&self) -> usize {
        self.with(|h| h.deliveries.len())
    }

    /// Whether every acknowledged push was delivered at least once.
    pub(crate) fn all_acked_delivered(&self) -> bool {
        self.with(|h| {
            let seen: std::collections::HashSet<(usize, u64)> =
                h.deliveries.iter().map(|d| (d.queue, d.seq)).collect();
            h.pushes.iter().filter(|p| p.acked).all(|p| seen.contains(&(p.queue, p.seq)))
        })
    }

    pub(crate) fn note(&self, note: String) {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).push(note);
    }

    pub(crate) fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn snapshot(&self) -> History {
        self.with(|h| h.clone())
    }
}
