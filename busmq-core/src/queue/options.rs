//! Options of `attach` and `consume`, validated before anything touches the store (SPEC E1).

use super::retry::RetryPolicy;
use crate::error::{Error, Result};
use crate::name::{MAX_NAME_BYTES, QueueName};
use crate::store::{Position, QueueSpec, Retention};
use std::time::Duration;

/// Options of [`Queue::attach_with`](crate::Queue::attach_with). They apply only when this
/// attach creates the queue; later attachers adopt what the creator stored (SPEC Q1, Q8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachOptions {
    spec: QueueSpec,
}

impl AttachOptions {
    /// Defaults: ttl 30 s, no maxsize, no retention limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the queue lives after its last attachment ends (default 30 s, at least 1 ms).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.spec.ttl = ttl;
        self
    }

    /// The most messages the queue may hold; pushes beyond fail with `QueueFull`.
    pub fn maxsize(mut self, maxsize: u64) -> Self {
        self.spec.maxsize = Some(maxsize);
        self
    }

    /// For replay queues: keep at most `count` messages (the oldest are dropped first).
    pub fn retain_count(mut self, count: u64) -> Self {
        self.spec.retention.max_len = Some(count);
        self
    }

    /// For replay queues: drop messages older than `age`.
    pub fn retain_for(mut self, age: Duration) -> Self {
        self.spec.retention.max_age = Some(age);
        self
    }

    pub(crate) fn validated(&self) -> Result<QueueSpec> {
        let spec = self.spec;
        if spec.ttl < Duration::from_millis(1) {
            return Err(Error::invalid_option(
                "ttl",
                "must be at least 1 ms (it was zero or less)",
            ));
        }
        if spec.maxsize == Some(0) {
            return Err(Error::invalid_option(
                "maxsize",
                "must be at least 1; omit it for no limit",
            ));
        }
        let Retention { max_len, max_age } = spec.retention;
        if max_len == Some(0) {
            return Err(Error::invalid_option("retain_count", "must be at least 1"));
        }
        if max_age.is_some_and(|age| age < Duration::from_millis(1)) {
            return Err(Error::invalid_option("retain_for", "must be at least 1 ms"));
        }
        Ok(spec)
    }
}

/// At-least-once options (SPEC Q13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReliableOptions {
    /// A delivery not acknowledged within this time is given to another consumer, unless
    /// extended. Default 30 s.
    pub visibility_timeout: Duration,
    /// While the consumer runs, keep extending the visibility of deliveries it holds (taken and
    /// not yet acknowledged, released or dropped), so that slow work is not redelivered in the
    /// ordinary case. A consumer that dies stops extending, and its deliveries come back after
    /// `visibility_timeout`. Default true.
    pub auto_extend: bool,
    /// After this many deliveries a message moves to the dead-letter queue. Default 5.
    pub max_deliveries: u32,
    /// The dead-letter queue; default `<queue>.dlq`. A queue whose name is within 4 bytes of
    /// the 1 KiB limit needs one named here (the default would be too long).
    pub dead_letter_queue: Option<String>,
    /// When a delivery that was dropped unsettled, nacked without a delay or failed comes
    /// back (SPEC P9). Default [`RetryPolicy::none`]: at once, as before policies existed (see
    /// [`RetryPolicy`] for why).
    pub retry: RetryPolicy,
}

impl Default for ReliableOptions {
    fn default() -> Self {
        ReliableOptions {
            visibility_timeout: Duration::from_secs(30),
            auto_extend: true,
            max_deliveries: 5,
            dead_letter_queue: None,
            retry: RetryPolicy::none(),
        }
    }
}

/// How a consumer consumes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ConsumeMode {
    /// Each message is delivered once, to one consumer, and removed (SPEC Q10). The default.
    #[default]
    AtMostOnce,
    /// Deliveries must be acknowledged; unacknowledged ones are delivered again (SPEC Q13).
    Reliable(ReliableOptions),
    /// Read without removing, from a position, each consumer at its own (SPEC Q14).
    Replay(Position),
}

/// Options of [`Queue::consume_with`](crate::Queue::consume_with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumeOptions {
    pub(crate) max: Option<u64>,
    pub(crate) mode: ConsumeMode,
    pub(crate) prefetch: u32,
}

/// Deliveries taken from the store per round trip by default.
pub const DEFAULT_PREFETCH: u32 = 128;
const MAX_PREFETCH: u32 = 10_000;

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions { max: None, mode: ConsumeMode::AtMostOnce, prefetch: DEFAULT_PREFETCH }
    }
}

impl ConsumeOptions {
    /// At most once, no limit, default prefetch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Deliver at most `max` messages, then stop by itself (SPEC Q11). Must be at least 1.
    pub fn max(mut self, max: u64) -> Self {
        self.max = Some(max);
        self
    }

    /// At-least-once delivery with these options.
    pub fn reliable(mut self, options: ReliableOptions) -> Self {
        self.mode = ConsumeMode::Reliable(options);
        self
    }

    /// Read without removing, starting at `from`.
    pub fn replay(mut self, from: Position) -> Self {
        self.mode = ConsumeMode::Replay(from);
        self
    }

    /// node busmq's `remove` option: `false` reads without removing from the start of the
    /// queue; `true` is the default removing mode.
    pub fn remove(self, remove: bool) -> Self {
        if remove { self.mode(ConsumeMode::AtMostOnce) } else { self.replay(Position::Start) }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: ConsumeMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many messages are taken from the store per round trip (default 128, 1..=10000).
    /// Messages taken and not yet handed out are returned to the queue when consuming stops.
    pub fn prefetch(mut self, prefetch: u32) -> Self {
        self.prefetch = prefetch;
        self
    }

    pub(crate) fn validate(&self, queue: &QueueName) -> Result<()> {
        if self.max == Some(0) {
            return Err(Error::invalid_option(
                "max",
                "must be at least 1; omit it to consume without limit",
            ));
        }
        if self.prefetch == 0 || self.prefetch > MAX_PREFETCH {
            return Err(Error::invalid_option(
                "prefetch",
                format!("must be between 1 and {MAX_PREFETCH}, got {}", self.prefetch),
            ));
        }
        if let ConsumeMode::Reliable(reliable) = &self.mode {
            if reliable.visibility_timeout < Duration::from_millis(10) {
                return Err(Error::invalid_option("visibility_timeout", "must be at least 10 ms"));
            }
            if reliable.max_deliveries == 0 {
                return Err(Error::invalid_option("max_deliveries", "must be at least 1"));
            }
            reliable.retry.validate()?;
            let dlq = dead_letter_name(queue, reliable)?;
            if &dlq == queue {
                return Err(Error::invalid_option(
                    "dead_letter_queue",
                    "must differ from the queue itself",
                ));
            }
        }
        Ok(())
    }
}

/// Appended to a queue's name to name its dead-letter queue when none is configured.
const DEAD_LETTER_SUFFIX: &str = ".dlq";

/// The dead-letter queue of `queue`.
pub(crate) fn dead_letter_name(queue: &QueueName, options: &ReliableOptions) -> Result<QueueName> {
    match &options.dead_letter_queue {
        Some(name) => QueueName::new(name),
        None => default_dead_letter_name(queue),
    }
}

/// `<queue>.dlq`, or an error saying how to name one when that is too long.
pub(crate) fn default_dead_letter_name(queue: &QueueName) -> Result<QueueName> {
    let name = format!("{queue}{DEAD_LETTER_SUFFIX}");
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::invalid_option(
            "dead_letter_queue",
            format!(
                "the default dead-letter queue name (the queue's name followed by \
                 {DEAD_LETTER_SUFFIX:?}) would be {} bytes long, over the limit of \
                 {MAX_NAME_BYTES} bytes; name one with ReliableOptions::dead_letter_queue",
                name.len()
            ),
        ));
    }
    QueueName::new(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_are_rejected_with_the_option_named() {
        let e = AttachOptions::new().ttl(Duration::ZERO).validated().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid option ttl: must be at least 1 ms (it was zero or less)"
        );
        let e = AttachOptions::new().maxsize(0).validated().unwrap_err();
        assert!(e.to_string().starts_with("invalid option maxsize"));
        let q = QueueName::new("q").unwrap();
        let e = ConsumeOptions::new().max(0).validate(&q).unwrap_err();
        assert!(e.to_string().starts_with("invalid option max: must be at least 1"));
        let e = ConsumeOptions::new().prefetch(0).validate(&q).unwrap_err();
        assert!(e.to_string().contains("prefetch"));
        let bad = ReliableOptions { max_deliveries: 0, ..Default::default() };
        assert!(ConsumeOptions::new().reliable(bad).validate(&q).is_err());
        let same = ReliableOptions { dead_letter_queue: Some("q".into()), ..Default::default() };
        assert!(ConsumeOptions::new().reliable(same).validate(&q).is_err());
    }

    #[test]
    fn remove_false_means_replay_from_the_start() {
        assert_eq!(ConsumeOptions::new().remove(false).mode, ConsumeMode::Replay(Position::Start));
        assert_eq!(ConsumeOptions::new().remove(true).mode, ConsumeMode::AtMostOnce);
    }

    #[test]
    fn default_dead_letter_queue_is_named_after_the_queue() {
        let q = QueueName::new("orders").unwrap();
        assert_eq!(
            dead_letter_name(&q, &ReliableOptions::default()).unwrap().as_str(),
            "orders.dlq"
        );
    }
}
