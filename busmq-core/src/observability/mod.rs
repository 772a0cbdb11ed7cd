//! What busmq tells operators (SPEC O1, O2): the `tracing` spans and events it emits and the
//! metrics it records through the `metrics` facade. busmq installs neither a subscriber nor an
//! exporter: the application chooses them. Without them every call site costs a branch.
//!
//! # Tracing
//!
//! Levels are chosen so that INFO is quiet in steady state (nothing per message at INFO or
//! above) and WARN/ERROR mean something needs attention. Per-message work is at TRACE at most.
//! Instances are named by their identity (`host:port/db`), never by a URL, so no password
//! reaches a log.
//!
//! | span / event | level | where |
//! |---|---|---|
//! | span `connect`, `disconnect` (backend) | DEBUG | `Bus::connect` / `Bus::disconnect` |
//! | span `attach`, `detach`, `close` (queue) | DEBUG | the queue handle |
//! | span `push` (queue, entries) | TRACE | each batch written to the store |
//! | span `consumer` (queue, consumer, mode) | DEBUG | a consumer's task, for its life |
//! | span `take` (want) inside `consumer` | TRACE | each take or read |
//! | span `settle` (queue, settlements) | TRACE | each batch of acks/nacks/extensions |
//! | span `job` (queue, id, deliveries) | TRACE | each message a `Worker` handles; its outcome: `job done` at TRACE, `job failed` / `job panicked` (error) at DEBUG |
//! | delivery failed; it comes back (id, deliveries, reason) | DEBUG | `Delivery::fail` below `max_deliveries` |
//! | span `channel` (channel, local, remote, session) | DEBUG | a channel peer's session |
//! | bus online | INFO | state transition |
//! | bus degraded / offline | WARN | state transition (offline after `disconnect` is INFO) |
//! | background error (kind) | WARN, ERROR for `access_denied` / `unknown_layout` | every `BusEvent::Error` and `QueueEvent::Error` |
//! | redelivery (id, deliveries) | DEBUG | a reliable delivery with `deliveries > 1` |
//! | dead-lettered (id, deliveries, reason, dead_letter_queue) | WARN | `max_deliveries` reached (also by `Delivery::fail`), or `Delivery::reject` |
//! | undecodable message (id) | WARN | a message that does not decode into the consumer's type |
//! | foreign data moved aside | WARN | an entry busmq did not write (a background error of kind `foreign_data`) |
//! | queue closed by another client | INFO | the keeper noticed a close |
//! | retries of a failing consumer or renewal | DEBUG | after the first failure, which is a background error |
//!
//! The Redis store adds, per instance (span `redis.instance` with its identity): a WARN on the
//! first failure of an outage, a DEBUG per reconnection attempt with its delay, an INFO when
//! the instance is back, and a DEBUG when a script is reloaded after `NOSCRIPT`.
//!
//! # Metrics
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `busmq_pushed_total` | counter | queue, backend | messages written by pushes |
//! | `busmq_delivered_total` | counter | queue, mode, backend | messages handed to consumers |
//! | `busmq_acked_total` | counter | queue, mode, backend | reliable deliveries acknowledged |
//! | `busmq_nacked_total` | counter | queue, mode, backend | reliable deliveries given back (`nack`, or dropped unsettled) |
//! | `busmq_redelivered_total` | counter | queue, mode, backend | deliveries with `deliveries > 1` |
//! | `busmq_dead_lettered_total` | counter | queue, reason, backend | messages moved to a dead-letter queue; reason `max_deliveries` or `rejected` |
//! | `busmq_errors_total` | counter | kind, backend (and queue for a queue's errors) | errors reported in the background or returned by pushes, settlements and deliveries; `kind` is [`Error::kind`](crate::Error::kind) |
//! | `busmq_consumers` | gauge | queue, mode, backend | running consumers |
//! | `busmq_in_flight` | gauge | queue, mode, backend | reliable deliveries held by user code, not settled yet |
//! | `busmq_queue_depth` | gauge | queue, backend | ready messages of attached queues, sampled when [`BusBuilder::depth_sampling`](crate::BusBuilder::depth_sampling) is set; a queue no longer attached keeps its last sample |
//! | `busmq_push_duration_seconds` | histogram | queue, backend | from the `push` call to its id |
//! | `busmq_end_to_end_seconds` | histogram | queue, mode, backend | from the push to the delivery (see below) |
//!
//! `mode` is `at_most_once`, `reliable` or `replay`; `backend` is the store's name (`memory`,
//! `redis`).
//!
//! **Queue labels are guarded**: a bus gives at most
//! [`DEFAULT_QUEUE_LABELS`] distinct queue names as label values (set another limit with
//! [`BusBuilder::queue_label_limit`](crate::BusBuilder::queue_label_limit)); the queues beyond
//! it are all labelled `_other`, so a program that makes a queue per request cannot grow the
//! metric set without bound. [`BusBuilder::without_queue_label`](crate::BusBuilder::without_queue_label)
//! drops the label altogether.
//!
//! **End-to-end latency** is `now - id` at delivery: ids are the push time in microseconds
//! since the Unix epoch (`max(last id + 1, now)`). It is an approximation: the id is read from
//! the producer's clock (on Redis, the server's clock when the two differ by more than a
//! second), the age from the consumer's, so clock skew between hosts shifts it; a burst of
//! pushes faster than one per microsecond runs ids ahead of the clock; and a replaying
//! consumer or a redelivery sees the message's full age. Negative ages count as zero.
//!
//! Metric handles are made once per queue handle and per consumer, so install the recorder
//! (the exporter) before making them; the two latency histograms read the clock only when a
//! recorder is installed (a zero-sized recorder type counts as none).

mod handles;
mod kind;
mod labels;
mod log;
pub(crate) mod sampler;

pub(crate) use handles::{ConsumerMetrics, DeadReason, QueueMetrics, bus_error, describe};
pub use labels::DEFAULT_QUEUE_LABELS;
pub(crate) use labels::QueueLabels;
pub(crate) use log::{background_error, log_error};

/// `busmq_pushed_total`: messages written by pushes.
pub const PUSHED_TOTAL: &str = "busmq_pushed_total";
/// `busmq_delivered_total`: messages handed to consumers.
pub const DELIVERED_TOTAL: &str = "busmq_delivered_total";
/// `busmq_acked_total`: reliable deliveries acknowledged.
pub const ACKED_TOTAL: &str = "busmq_acked_total";
/// `busmq_nacked_total`: reliable deliveries given back (nack, or dropped unsettled).
pub const NACKED_TOTAL: &str = "busmq_nacked_total";
/// `busmq_redelivered_total`: deliveries of messages delivered before.
pub const REDELIVERED_TOTAL: &str = "busmq_redelivered_total";
/// `busmq_dead_lettered_total`: messages moved to a dead-letter queue.
pub const DEAD_LETTERED_TOTAL: &str = "busmq_dead_lettered_total";
/// `busmq_errors_total`: errors by kind.
pub const ERRORS_TOTAL: &str = "busmq_errors_total";
/// `busmq_consumers`: running consumers.
pub const CONSUMERS: &str = "busmq_consumers";
/// `busmq_in_flight`: reliable deliveries held and not settled.
pub const IN_FLIGHT: &str = "busmq_in_flight";
/// `busmq_queue_depth`: sampled ready messages of attached queues.
pub const QUEUE_DEPTH: &str = "busmq_queue_depth";
/// `busmq_push_duration_seconds`: from a push call to its id.
pub const PUSH_DURATION_SECONDS: &str = "busmq_push_duration_seconds";
/// `busmq_end_to_end_seconds`: from a push to its delivery.
pub const END_TO_END_SECONDS: &str = "busmq_end_to_end_seconds";
