//! What a single push may ask for besides its message: headers (SPEC P6), a producer dedupe
//! key (SPEC P10), a retry deadline, a priority level (SPEC P12) and an ordering key (SPEC P11).
//! One options type, so that later per-push features join it instead of adding another
//! `push_*` method each.

use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::store::{NewEntry, QueueSpec, check_retention, check_routing};
use crate::util::random_u64;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a dedupe key is remembered when [`PushOptions::dedupe_window`] is not given.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(120);

/// The longest dedupe window: keys are for retries, not an archive of every push.
const MAX_DEDUPE_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest dedupe key: a key is a name for a message, not a message.
const MAX_DEDUPE_KEY: usize = 1024;

/// Options of one push, for [`Queue::push_with`](super::Queue::push_with) and
/// [`Queue::push_raw_with`](super::Queue::push_raw_with). `Headers` convert into them, so
/// `push_with(&message, headers)` keeps working.
///
/// ```
/// # use busmq_core::{Headers, PushOptions};
/// # use std::time::Duration;
/// let options = PushOptions::new()
///     .headers(Headers::new().with("tenant", "acme"))
///     .dedupe("order-1234")
///     .dedupe_window(Duration::from_secs(600))
///     .retry_for(Duration::from_secs(30))
///     .priority(5)
///     .ordering_key("customer-42");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushOptions {
    pub(crate) headers: Headers,
    pub(crate) dedupe: Option<Arc<str>>,
    pub(crate) window: Option<Duration>,
    pub(crate) retry: Option<Duration>,
    pub(crate) priority: u8,
    pub(crate) ordering_key: Option<Arc<str>>,
}

/// Where a push is routed among the ready messages: its level and ordering key, checked, then
/// written into the entry (each entry of a store call carries its own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Routing {
    pub(crate) priority: u8,
    pub(crate) key: Option<Arc<str>>,
}

impl Routing {
    /// `entry` with this level and ordering key.
    pub(crate) fn apply(self, entry: NewEntry) -> NewEntry {
        entry.with_priority(self.priority).with_ordering_key(self.key)
    }

    /// Refuses routing on a queue with retention: a replay queue is read, not taken, so levels
    /// and key gates would mean nothing there.
    pub(crate) fn check_spec(&self, spec: &QueueSpec) -> Result<()> {
        if self.priority == 0 && self.key.is_none() {
            // Unrouted: nothing to refuse, and no probe entry to build for every push.
            return Ok(());
        }
        // The stores' own check, on an entry routed like this one (one rule, one wording).
        let probe = self.clone().apply(NewEntry::new(bytes::Bytes::new()));
        check_retention(spec, [&probe])
    }
}

/// A keyed push as the producer writes it: its dedupe key and window, and until when a
/// retryable failure is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keyed {
    pub(crate) key: Arc<str>,
    pub(crate) window: Duration,
    pub(crate) retry_until: Option<Instant>,
}

impl PushOptions {
    /// No options: a plain push.
    pub fn new() -> Self {
        PushOptions::default()
    }

    /// The message's headers (SPEC P6).
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Producer dedupe (SPEC P10): if a push to this queue with the same `key` was written
    /// within the window, this push writes nothing and resolves to that push's id. So a
    /// producer that did not learn whether a push was written (an error, a timeout, a
    /// failover) retries it with the same key without risking a duplicate. Keys are per queue
    /// and per queue incarnation (a closed or expired queue forgets them). A push with a key
    /// is written in a store call of its own, never coalesced with other pushes.
    pub fn dedupe(mut self, key: impl Into<Arc<str>>) -> Self {
        self.dedupe = Some(key.into());
        self
    }

    /// How long the dedupe key is remembered after the push that wrote it; default
    /// [`DEFAULT_DEDUPE_WINDOW`] (2 minutes). Longer windows keep more keys in the store:
    /// one small entry per keyed push within the window. At most 30 days.
    pub fn dedupe_window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }

    /// Opt-in producer retry: while the store is offline or the push fails with a retryable
    /// error ([`Error::is_retryable`]), the push waits for the store (with backoff) and is
    /// written again, for up to `deadline` from the call to `push_with`; then it fails with
    /// the last error. Retries are safe because the push is keyed: with the [`dedupe`] key
    /// when there is one, else with a random key of its own, and the key's window is made at
    /// least as long as the deadline. Pushes of the same handle keep their order: those after
    /// a retrying push wait behind it, up to the usual bound of waiting pushes (beyond which a
    /// push fails with `Backpressure`). A deadline of 30 days or more is refused
    /// (`InvalidOption` naming `retry_for`).
    ///
    /// [`dedupe`]: PushOptions::dedupe
    pub fn retry_for(mut self, deadline: Duration) -> Self {
        self.retry = Some(deadline);
        self
    }

    /// The priority level (SPEC P12): 0 (the default, lowest) to
    /// [`MAX_PRIORITY`](crate::store::MAX_PRIORITY) (9). Ready messages are taken by level,
    /// highest first, and in push order within a level; messages
    /// given back by consumers (released, expired, restored) still come before all of them.
    /// Within an [`ordering_key`](PushOptions::ordering_key), push order wins over levels. A
    /// level above 9 is `InvalidOption("priority")`, and so is any level above 0 on a queue with
    /// retention; nothing is written.
    pub fn priority(mut self, level: u8) -> Self {
        self.priority = level;
        self
    }

    /// The ordering key (SPEC P11): messages with the same key are delivered one at a time, in
    /// push order, while messages of other keys go in parallel. In reliable mode the key's next
    /// message is handed out only once the previous delivery is acknowledged (a release, a
    /// nack, an expired visibility keep it first in line); in at-most-once mode once it is
    /// taken. A key has 1 to [`MAX_ORDERING_KEY`](crate::store::MAX_ORDERING_KEY) (1024)
    /// bytes and no NUL byte; otherwise, or on a queue with retention, the push is
    /// `InvalidOption("ordering_key")` and nothing is
    /// written. The key is independent of the [`dedupe`](PushOptions::dedupe) key.
    pub fn ordering_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// The level and ordering key, checked.
    pub(crate) fn checked_routing(&self) -> Result<Routing> {
        check_routing(self.priority, self.ordering_key.as_deref())?;
        Ok(Routing { priority: self.priority, key: self.ordering_key.clone() })
    }

    /// The dedupe key, window and retry deadline, checked; `None` for an unkeyed push.
    pub(crate) fn checked_dedupe(&self) -> Result<Option<Keyed>> {
        let mut window = self.window.unwrap_or(DEFAULT_DEDUPE_WINDOW);
        // The key must outlive the deadline by a little: a deadline the longest window cannot
        // cover is refused as what the caller set, not as a window they never chose.
        if self.retry.is_some_and(|d| d.saturating_add(Duration::from_secs(1)) > MAX_DEDUPE_WINDOW)
        {
            let reason = "a retry deadline is under 30 days (its key is kept a second longer)";
            return Err(Error::invalid_option("retry_for", reason));
        }
        let retry_until = self.retry.map(|d| Instant::now() + d);
        if let Some(retry) = self.retry {
            window = window.max(retry.saturating_add(Duration::from_secs(1)));
        }
        let key = match (&self.dedupe, self.retry) {
            (Some(key), _) => key.clone(),
            (None, Some(_)) => format!("retry:{:016x}{:016x}", random_u64(), random_u64()).into(),
            (None, None) => return Ok(None),
        };
        if key.is_empty() || key.len() > MAX_DEDUPE_KEY {
            return Err(Error::invalid_option("dedupe", "a dedupe key has 1 to 1024 bytes"));
        }
        if window < Duration::from_millis(1) || window > MAX_DEDUPE_WINDOW {
            return Err(Error::invalid_option("dedupe_window", "the window is 1 ms to 30 days"));
        }
        Ok(Some(Keyed { key, window, retry_until }))
    }
}

impl From<Headers> for PushOptions {
    fn from(headers: Headers) -> Self {
        PushOptions::new().headers(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MAX_ORDERING_KEY, MAX_PRIORITY};

    #[test]
    fn keys_and_windows_are_checked() {
        assert_eq!(PushOptions::new().checked_dedupe().unwrap(), None);
        let keyed = PushOptions::new().dedupe("k").checked_dedupe().unwrap().unwrap();
        assert_eq!((&*keyed.key, keyed.window), ("k", DEFAULT_DEDUPE_WINDOW));
        assert_eq!(keyed.retry_until, None);
        assert!(PushOptions::new().dedupe("").checked_dedupe().is_err());
        assert!(PushOptions::new().dedupe("x".repeat(1025)).checked_dedupe().is_err());
        let zero = PushOptions::new().dedupe("k").dedupe_window(Duration::ZERO);
        assert!(zero.checked_dedupe().is_err());
    }

    #[test]
    fn a_retrying_push_is_keyed_for_at_least_its_deadline() {
        let long = Duration::from_secs(600);
        let keyed = PushOptions::new().retry_for(long).checked_dedupe().unwrap().unwrap();
        assert!(keyed.key.starts_with("retry:") && keyed.window > long);
        assert!(keyed.retry_until.is_some());
        let other = PushOptions::new().retry_for(long).checked_dedupe().unwrap().unwrap();
        assert_ne!(keyed.key, other.key, "each push its own key");
    }

    #[test]
    fn a_retry_deadline_beyond_the_longest_window_names_retry_for() {
        let forever = PushOptions::new().dedupe("k").retry_for(Duration::MAX);
        match forever.checked_dedupe() {
            Err(Error::InvalidOption { option, .. }) => assert_eq!(option, "retry_for"),
            other => panic!("expected InvalidOption(retry_for), got {other:?}"),
        }
        let longest = MAX_DEDUPE_WINDOW - Duration::from_secs(2);
        assert!(PushOptions::new().retry_for(longest).checked_dedupe().is_ok());
    }

    fn refused(options: PushOptions) -> &'static str {
        match options.checked_routing() {
            Err(Error::InvalidOption { option, .. }) => option,
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    #[test]
    fn levels_are_0_to_9() {
        assert_eq!(PushOptions::new().checked_routing().unwrap(), Routing::default());
        for level in 0..=MAX_PRIORITY {
            let routing = PushOptions::new().priority(level).checked_routing().unwrap();
            assert_eq!(routing.priority, level);
        }
        assert_eq!(refused(PushOptions::new().priority(10)), "priority");
        assert_eq!(refused(PushOptions::new().priority(u8::MAX)), "priority");
    }

    #[test]
    fn ordering_keys_have_1_to_1024_bytes_and_no_nul() {
        let routing = PushOptions::new().ordering_key("k").checked_routing().unwrap();
        assert_eq!(routing.key.as_deref(), Some("k"));
        assert_ne!(routing, Routing::default());
        let longest = "é".repeat(MAX_ORDERING_KEY / 2);
        assert!(PushOptions::new().ordering_key(longest).checked_routing().is_ok());
        assert_eq!(refused(PushOptions::new().ordering_key("")), "ordering_key");
        assert_eq!(refused(PushOptions::new().ordering_key("x".repeat(1025))), "ordering_key");
        assert_eq!(refused(PushOptions::new().ordering_key("a\0b")), "ordering_key");
    }

    #[test]
    fn routing_goes_with_dedupe_but_not_with_retention() {
        let both = PushOptions::new().dedupe("d").ordering_key("k").priority(3);
        assert!(both.checked_dedupe().unwrap().is_some());
        let routing = both.checked_routing().unwrap();
        let mut spec = QueueSpec::default();
        assert!(routing.check_spec(&spec).is_ok());
        spec.retention.max_len = Some(10);
        assert!(matches!(
            routing.check_spec(&spec),
            Err(Error::InvalidOption { option: "priority", .. })
        ));
        let keyed = PushOptions::new().ordering_key("k").checked_routing().unwrap();
        assert!(matches!(
            keyed.check_spec(&spec),
            Err(Error::InvalidOption { option: "ordering_key", .. })
        ));
        assert!(Routing::default().check_spec(&spec).is_ok(), "plain pushes are unchanged");
    }
}
