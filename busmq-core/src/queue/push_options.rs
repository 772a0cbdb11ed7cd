//! What a single push may ask for besides its message: headers (SPEC P6) and a producer dedupe
//! key (SPEC P10). One options type, so that later per-push features join it instead of
//! adding another `push_*` method each.

use crate::error::{Error, Result};
use crate::headers::Headers;
use std::sync::Arc;
use std::time::Duration;

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
///     .headers(Headers::new().with("tenant", "acme")?)
///     .dedupe("order-1234")
///     .dedupe_window(Duration::from_secs(600));
/// # Ok::<(), busmq_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushOptions {
    pub(crate) headers: Headers,
    pub(crate) dedupe: Option<Arc<str>>,
    pub(crate) window: Option<Duration>,
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

    /// The dedupe key and window, checked; `None` without a key.
    pub(crate) fn checked_dedupe(&self) -> Result<Option<(Arc<str>, Duration)>> {
        let window = self.window.unwrap_or(DEFAULT_DEDUPE_WINDOW);
        let Some(key) = &self.dedupe else {
            return Ok(None);
        };
        if key.is_empty() || key.len() > MAX_DEDUPE_KEY {
            return Err(Error::invalid_option("dedupe", "a dedupe key has 1 to 1024 bytes"));
        }
        if window < Duration::from_millis(1) || window > MAX_DEDUPE_WINDOW {
            return Err(Error::invalid_option("dedupe_window", "the window is 1 ms to 30 days"));
        }
        Ok(Some((key.clone(), window)))
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

    #[test]
    fn keys_and_windows_are_checked() {
        assert_eq!(PushOptions::new().checked_dedupe().unwrap(), None);
        let (key, window) = PushOptions::new().dedupe("k").checked_dedupe().unwrap().unwrap();
        assert_eq!((&*key, window), ("k", DEFAULT_DEDUPE_WINDOW));
        assert!(PushOptions::new().dedupe("").checked_dedupe().is_err());
        assert!(PushOptions::new().dedupe("x".repeat(1025)).checked_dedupe().is_err());
        let zero = PushOptions::new().dedupe("k").dedupe_window(Duration::ZERO);
        assert!(zero.checked_dedupe().is_err());
    }
}
