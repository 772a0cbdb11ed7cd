//! Metric handles, made once per queue handle and per consumer: registering a metric with
//! labels allocates and looks the key up in the recorder, so it is never done per message.
//! With no recorder installed every handle is a no-op and each use costs a branch.

use super::{
    ACKED_TOTAL, CONSUMERS, DEAD_LETTERED_TOTAL, DELIVERED_TOTAL, END_TO_END_SECONDS, ERRORS_TOTAL,
    IN_FLIGHT, NACKED_TOTAL, PUSH_DURATION_SECONDS, PUSHED_TOTAL, QUEUE_DEPTH, REDELIVERED_TOTAL,
};
use crate::error::Error;
use crate::util::now_micros;
use metrics::{Counter, Gauge, Histogram, Label, SharedString, Unit};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether a recorder is installed. The facade does not say; its no-op recorder is the only
/// zero-sized one a program gets without writing its own, so a zero-sized recorder counts as
/// none. Used to skip reading the clock for histograms nobody records.
fn recording() -> bool {
    metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

static DESCRIBED: AtomicBool = AtomicBool::new(false);

/// Describes every metric to the recorder, once per process (after a recorder is installed:
/// a description given to the no-op recorder would be lost).
pub(crate) fn describe() {
    if DESCRIBED.load(Ordering::Relaxed) || !recording() || DESCRIBED.swap(true, Ordering::SeqCst) {
        return;
    }
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(PUSHED_TOTAL, Unit::Count, "Messages written by pushes.");
    describe_counter!(DELIVERED_TOTAL, Unit::Count, "Messages handed to consumers.");
    describe_counter!(ACKED_TOTAL, Unit::Count, "Reliable deliveries acknowledged.");
    describe_counter!(
        NACKED_TOTAL,
        Unit::Count,
        "Reliable deliveries given back (nack, or dropped unsettled)."
    );
    describe_counter!(REDELIVERED_TOTAL, Unit::Count, "Deliveries of messages delivered before.");
    describe_counter!(
        DEAD_LETTERED_TOTAL,
        Unit::Count,
        "Messages moved to a dead-letter queue, by reason (max_deliveries, rejected)."
    );
    describe_counter!(ERRORS_TOTAL, Unit::Count, "Errors reported by busmq, by kind.");
    describe_gauge!(CONSUMERS, Unit::Count, "Running consumers.");
    describe_gauge!(IN_FLIGHT, Unit::Count, "Reliable deliveries held by user code, not settled.");
    describe_gauge!(QUEUE_DEPTH, Unit::Count, "Ready messages of attached queues (sampled).");
    describe_histogram!(
        PUSH_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a push call to its message id."
    );
    describe_histogram!(
        END_TO_END_SECONDS,
        Unit::Seconds,
        "Time from a push to its delivery (message id to the consumer's clock)."
    );
}

/// `labels` followed by `extra`.
fn with(labels: &[Label], extra: Label) -> Vec<Label> {
    let mut all = labels.to_vec();
    all.push(extra);
    all
}

/// The labels every metric of one queue carries: `queue` (unless turned off) and `backend`.
fn base(queue: Option<SharedString>, backend: &'static str) -> Vec<Label> {
    let mut labels = Vec::with_capacity(3);
    if let Some(queue) = queue {
        labels.push(Label::new("queue", queue));
    }
    labels.push(Label::from_static_parts("backend", backend));
    labels
}

/// Counts one error of a queue (made on demand: errors are rare).
fn count_error(labels: &[Label], error: &Error) {
    describe();
    metrics::counter!(ERRORS_TOTAL, with(labels, Label::from_static_parts("kind", error.kind())))
        .increment(1);
}

/// Counts one error of the bus itself (no queue).
pub(crate) fn bus_error(backend: &'static str, error: &Error) {
    count_error(&base(None, backend), error);
}

/// The metrics of one queue handle: its pushes and its errors.
pub(crate) struct QueueMetrics {
    labels: Vec<Label>,
    pushed: Counter,
    push_seconds: Histogram,
    timed: bool,
}

impl fmt::Debug for QueueMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueMetrics").field("labels", &self.labels).finish_non_exhaustive()
    }
}

impl QueueMetrics {
    /// `queue` is the guarded label value (`None`: no queue label).
    pub(crate) fn new(queue: Option<SharedString>, backend: &'static str) -> Self {
        describe();
        let labels = base(queue, backend);
        QueueMetrics {
            pushed: metrics::counter!(PUSHED_TOTAL, labels.clone()),
            push_seconds: metrics::histogram!(PUSH_DURATION_SECONDS, labels.clone()),
            timed: recording(),
            labels,
        }
    }

    /// Whether pushes should be timed (a recorder was installed when this handle was made).
    pub(crate) fn timed(&self) -> bool {
        self.timed
    }

    pub(crate) fn pushed(&self, messages: u64) {
        self.pushed.increment(messages);
    }

    pub(crate) fn push_took(&self, took: Duration) {
        self.push_seconds.record(took);
    }

    pub(crate) fn error(&self, error: &Error) {
        count_error(&self.labels, error);
    }

    /// The metrics of a consumer of this queue in `mode` (`at_most_once`, `reliable`,
    /// `replay`).
    pub(crate) fn consumer(&self, mode: &'static str) -> ConsumerMetrics {
        let labels = with(&self.labels, Label::from_static_parts("mode", mode));
        let reason = |r: &'static str| with(&self.labels, Label::from_static_parts("reason", r));
        ConsumerMetrics {
            delivered: metrics::counter!(DELIVERED_TOTAL, labels.clone()),
            redelivered: metrics::counter!(REDELIVERED_TOTAL, labels.clone()),
            acked: metrics::counter!(ACKED_TOTAL, labels.clone()),
            nacked: metrics::counter!(NACKED_TOTAL, labels.clone()),
            dead_max: metrics::counter!(DEAD_LETTERED_TOTAL, reason("max_deliveries")),
            dead_rejected: metrics::counter!(DEAD_LETTERED_TOTAL, reason("rejected")),
            consumers: metrics::gauge!(CONSUMERS, labels.clone()),
            in_flight: metrics::gauge!(IN_FLIGHT, labels.clone()),
            end_to_end: metrics::histogram!(END_TO_END_SECONDS, labels),
            timed: self.timed,
            errors: self.labels.clone(),
        }
    }
}

/// Why a message was dead-lettered, as the `reason` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeadReason {
    MaxDeliveries,
    Rejected,
}

/// The metrics of one consumer.
pub(crate) struct ConsumerMetrics {
    delivered: Counter,
    redelivered: Counter,
    acked: Counter,
    nacked: Counter,
    dead_max: Counter,
    dead_rejected: Counter,
    consumers: Gauge,
    in_flight: Gauge,
    end_to_end: Histogram,
    timed: bool,
    errors: Vec<Label>,
}

impl fmt::Debug for ConsumerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerMetrics").field("labels", &self.errors).finish_non_exhaustive()
    }
}

impl ConsumerMetrics {
    /// One message handed to user code: its id is its push time (see the module docs).
    pub(crate) fn delivered(&self, id: u64, deliveries: u32) {
        self.delivered.increment(1);
        if deliveries > 1 {
            self.redelivered.increment(1);
        }
        if self.timed {
            let age = now_micros().saturating_sub(id);
            self.end_to_end.record(Duration::from_micros(age));
        }
    }

    pub(crate) fn acked(&self) {
        self.acked.increment(1);
    }

    pub(crate) fn nacked(&self) {
        self.nacked.increment(1);
    }

    pub(crate) fn dead_lettered(&self, reason: DeadReason) {
        match reason {
            DeadReason::MaxDeliveries => self.dead_max.increment(1),
            DeadReason::Rejected => self.dead_rejected.increment(1),
        }
    }

    /// A reliable delivery is now held by user code (+1) or no longer (-n).
    pub(crate) fn in_flight(&self, change: i64) {
        self.in_flight.increment(change as f64);
    }

    pub(crate) fn error(&self, error: &Error) {
        count_error(&self.errors, error);
    }

    /// Counts a running consumer until the returned guard is dropped (however its task ends).
    pub(crate) fn running(&self) -> Running {
        self.consumers.increment(1.0);
        Running(self.consumers.clone())
    }
}

/// A running consumer, counted in `busmq_consumers` while it lives.
#[derive(Debug)]
pub(crate) struct Running(Gauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The depth gauge of the queues labelled `queue` (see `sampler.rs`).
pub(super) fn depth_gauge(queue: Option<SharedString>, backend: &'static str) -> Gauge {
    describe();
    metrics::gauge!(QUEUE_DEPTH, base(queue, backend))
}
