//! What one chaos scenario records, as plain data: every push (acknowledged or not), every
//! delivery, every acknowledgement issued, and the window of every fault. The checker reads
//! only this.

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
    /// The same moment in microseconds: the per-key checks order handouts and acks finer than
    /// a millisecond.
    pub(crate) at_us: u64,
}

/// A reliable consumer about to acknowledge a delivery (recorded before the ack is sent: the
/// store cannot pass the delivery's key on before this moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckRecord {
    pub(crate) queue: usize,
    pub(crate) seq: u64,
    pub(crate) consumer: u32,
    pub(crate) deliveries: u32,
    pub(crate) issued_us: u64,
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
    pub(crate) acks: Vec<AckRecord>,
    pub(crate) faults: Vec<FaultWindow>,
    /// Ordering keys per queue when the producers pushed with keys: message `seq` has key
    /// `seq % keys`.
    pub(crate) keys: Option<u64>,
}

/// Collects a [`History`] from concurrent workers, on one clock.
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    /// `start` on the wall clock (µs since the Unix epoch), for times child processes report.
    start_unix_us: u64,
    history: Mutex<History>,
    /// Anomalies the workers saw (a consumer stream that ended by itself, ...).
    notes: Mutex<Vec<String>>,
}

impl Recorder {
    /// A recorder whose producers push with `keys` ordering keys per queue, if any.
    pub(crate) fn new(start: Instant, keys: Option<u64>) -> Recorder {
        let history = History { keys, ..History::default() };
        let start_unix_us = unix_us().saturating_sub(micros(start.elapsed()));
        Recorder {
            start,
            start_unix_us,
            history: Mutex::new(history),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// Milliseconds since the scenario started.
    pub(crate) fn now(&self) -> u64 {
        self.now_us() / 1_000
    }

    /// Microseconds since the scenario started.
    pub(crate) fn now_us(&self) -> u64 {
        micros(self.start.elapsed())
    }

    /// A child process's wall-clock time (µs since the Unix epoch) on this recorder's clock.
    pub(crate) fn unix_us_to_run(&self, unix_us: u64) -> u64 {
        unix_us.saturating_sub(self.start_unix_us)
    }

    fn with<T>(&self, f: impl FnOnce(&mut History) -> T) -> T {
        f(&mut self.history.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn pushed(&self, queue: usize, seq: u64, started_ms: u64, acked: bool) {
        self.with(|h| h.pushes.push(PushRecord { queue, seq, started_ms, acked }));
    }

    pub(crate) fn delivered(&self, queue: usize, seq: u64, consumer: u32, deliveries: u32) {
        self.delivered_at(queue, seq, consumer, deliveries, self.now_us());
    }

    /// A delivery handed out `at_us` after the start.
    pub(crate) fn delivered_at(
        &self,
        queue: usize,
        seq: u64,
        consumer: u32,
        deliveries: u32,
        at_us: u64,
    ) {
        let record =
            DeliveryRecord { queue, seq, consumer, deliveries, at_ms: at_us / 1_000, at_us };
        self.with(|h| h.deliveries.push(record));
    }

    /// An acknowledgement about to be sent, `issued_us` after the start.
    pub(crate) fn ack_issued(
        &self,
        queue: usize,
        seq: u64,
        consumer: u32,
        deliveries: u32,
        issued_us: u64,
    ) {
        let record = AckRecord { queue, seq, consumer, deliveries, issued_us };
        self.with(|h| h.acks.push(record));
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

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Now on the wall clock, in µs since the Unix epoch (what child processes report).
pub(crate) fn unix_us() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(micros).unwrap_or(0)
}
