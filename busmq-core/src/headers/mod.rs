//! Message headers (SPEC P6): a small ordered map of strings that travels with a message
//! through every store and arrives unchanged with its delivery, its channel message and its
//! dead letter.

#[cfg(any(feature = "opentelemetry", feature = "fuzzing", test))]
pub(crate) mod traceparent;
#[cfg(feature = "opentelemetry")]
pub(crate) mod w3c;
mod wire;

use crate::error::{NameKind, Result};
use crate::name::validate;
use std::fmt;
use std::sync::Arc;

/// The headers of a message: string keys and values, in the order they were first inserted,
/// each key at most once.
///
/// Keys follow the rules of names: non-empty, at most
/// [`MAX_NAME_BYTES`](crate::name::MAX_NAME_BYTES) bytes, no control characters; values are any
/// text. Invalid keys are refused when the message is pushed, with
/// [`Error::InvalidName`](crate::Error::InvalidName) of kind [`NameKind::HeaderKey`], and
/// nothing is written.
///
/// Headers count towards the bus's message size limit
/// ([`BusBuilder::max_message_size`](crate::BusBuilder::max_message_size)): the size of a
/// message is its encoded body plus the bytes of every key and value ([`Headers::size`]).
///
/// A message without headers stores nothing for them: they cost no memory in the store and
/// no bytes in Redis.
///
/// ```
/// use busmq_core::Headers;
///
/// let headers = Headers::new().with("tenant", "acme").with("kind", "resize");
/// assert_eq!(headers.get("tenant"), Some("acme"));
/// assert_eq!(headers.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["tenant", "kind"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    pairs: Vec<(String, String)>,
}

/// What [`Delivery::headers`](crate::Delivery::headers) lends for a message without headers.
pub(crate) static EMPTY: Headers = Headers::new();

impl Headers {
    /// The header holding a W3C trace context's `traceparent` (written on push and read on
    /// delivery with the `opentelemetry` feature).
    pub const TRACEPARENT: &'static str = "traceparent";
    /// The header holding a W3C trace context's `tracestate`.
    pub const TRACESTATE: &'static str = "tracestate";

    /// No headers.
    pub const fn new() -> Self {
        Headers { pairs: Vec::new() }
    }

    /// These headers with `key` set to `value` (see [`Headers::insert`]).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value` and returns the value it replaced. A new key goes last; a key
    /// already there keeps its place.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let (key, value) = (key.into(), value.into());
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.pairs.push((key, value));
                None
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(at).1)
    }

    /// How many keys are set.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The keys and values, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// What the headers add to a message's size: the bytes of every key and value.
    pub fn size(&self) -> usize {
        self.pairs.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Checks every key (see the type's documentation).
    pub fn validate(&self) -> Result<()> {
        self.pairs.iter().try_for_each(|(key, _)| validate(NameKind::HeaderKey, key))
    }

    /// The headers as a store entry carries them: `None` when empty, so that a message without
    /// headers costs nothing.
    pub fn into_shared(self) -> Option<Arc<Headers>> {
        (!self.is_empty()).then(|| Arc::new(self))
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut headers = Headers::new();
        headers.extend(pairs);
        headers
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Headers {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl IntoIterator for Headers {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn keys_keep_their_first_place_and_the_last_value() {
        let mut h: Headers = [("a", "1"), ("b", "2")].into_iter().collect();
        assert_eq!(h.insert("a", "3"), Some("1".to_string()));
        assert_eq!(h.iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);
        assert_eq!(h.remove("a"), Some("3".to_string()));
        assert_eq!((h.len(), h.get("b"), h.contains_key("a")), (1, Some("2"), false));
        assert_eq!(format!("{h:?}"), r#"{"b": "2"}"#);
    }

    #[test]
    fn size_counts_keys_and_values_and_empty_headers_are_not_shared() {
        assert_eq!(Headers::new().with("ab", "cde").with("f", "").size(), 6);
        assert!(Headers::new().into_shared().is_none());
        assert!(Headers::new().with("k", "v").into_shared().is_some());
    }

    #[test]
    fn invalid_keys_are_invalid_header_key_names() {
        assert!(Headers::new().with("ok", "\n is fine in a value").validate().is_ok());
        for (key, says) in [("", "empty"), ("a\tb", "control character")] {
            match Headers::new().with("good", "v").with(key, "v").validate() {
                Err(Error::InvalidName { kind: NameKind::HeaderKey, reason, .. }) => {
                    assert!(reason.contains(says), "{reason}")
                }
                other => panic!("{key:?}: {other:?}"),
            }
        }
    }
}
