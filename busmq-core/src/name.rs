//! Validated names (SPEC E1): queue, channel, role, topic, object and metadata-key names are checked
//! once, before anything touches the store, and then carried as cheap clonable values.

use crate::error::{Error, NameKind, Result};
use std::fmt;
use std::sync::Arc;

/// The longest name accepted, in bytes (SPEC section 2: "up to 1 KiB").
pub const MAX_NAME_BYTES: usize = 1024;

pub(crate) fn shorten(name: &str) -> String {
    const SHOW: usize = 64;
    if name.len() <= SHOW {
        return name.to_string();
    }
    let mut end = SHOW;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &name[..end])
}

/// Checks a name: non-empty, at most [`MAX_NAME_BYTES`] bytes, no control characters.
pub fn validate(kind: NameKind, name: &str) -> Result<()> {
    let reject = |reason: String| Error::InvalidName { kind, name: shorten(name), reason };
    if name.is_empty() {
        return Err(reject("it is empty".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(reject(format!(
            "it is {} bytes long, the limit is {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(reject(format!("it contains the control character {c:?}")));
    }
    Ok(())
}

/// Checks a name given as bytes, so that non-UTF-8 input gets a typed error instead of a panic.
pub fn validate_bytes(kind: NameKind, name: &[u8]) -> Result<&str> {
    let text = std::str::from_utf8(name).map_err(|e| Error::InvalidName {
        kind,
        name: String::from_utf8_lossy(&name[..name.len().min(64)]).into_owned(),
        reason: format!("it is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()),
    })?;
    validate(kind, text)?;
    Ok(text)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(Arc<str>);

        impl $ty {
            /// Validates `name` and wraps it.
            pub fn new(name: impl AsRef<str>) -> Result<Self> {
                let name = name.as_ref();
                validate($kind, name)?;
                Ok(Self(Arc::from(name)))
            }

            /// Validates raw bytes (which must be UTF-8) and wraps them.
            pub fn from_bytes(name: &[u8]) -> Result<Self> {
                Ok(Self(Arc::from(validate_bytes($kind, name)?)))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = Error;
            fn try_from(name: &str) -> Result<Self> {
                Self::new(name)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(name: String) -> Result<Self> {
                Self::new(name)
            }
        }
    };
}

name_type!(
    /// The validated name of a queue.
    QueueName,
    NameKind::Queue
);
name_type!(
    /// The validated name of a pub/sub topic.
    TopicName,
    NameKind::Topic
);
name_type!(
    /// The validated name of a persisted object (SPEC P3).
    ObjectName,
    NameKind::Object
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_unicode_names() {
        assert_eq!(QueueName::new("orders").unwrap().as_str(), "orders");
        assert!(QueueName::new("ünïcode:with/sep{tag}").is_ok());
        assert!(QueueName::new("x".repeat(MAX_NAME_BYTES)).is_ok());
    }

    #[test]
    fn rejects_empty_long_control_and_non_utf8_names_with_a_reason() {
        let e = QueueName::new("").unwrap_err().to_string();
        assert_eq!(e, "invalid queue name \"\": it is empty");
        let e = QueueName::new("y".repeat(MAX_NAME_BYTES + 1)).unwrap_err().to_string();
        assert!(e.contains("1025 bytes long, the limit is 1024"), "{e}");
        assert!(e.contains("yyy..."), "long names are shortened in messages: {e}");
        let e = TopicName::new("a\nb").unwrap_err().to_string();
        assert!(e.starts_with("invalid topic name"), "{e}");
        assert!(e.contains("control character '\\n'"), "{e}");
        let e = QueueName::from_bytes(b"ab\xff").unwrap_err().to_string();
        assert!(e.contains("not valid UTF-8 (invalid byte at offset 2)"), "{e}");
    }
}
