//! How errors reach the log: one event per reported error, at ERROR when someone must act
//! (credentials, layout) and at WARN otherwise, with the error's sources in the message,
//! since busmq's own Display never repeats them. Their target is `busmq` (they are reported
//! from many modules; this one only formats them).

use crate::error::Error;
use std::fmt;

/// An error followed by its sources, `: `-separated; a source whose text the previous one
/// already ends with (drivers often repeat their own source) is left out.
struct Chain<'a>(&'a Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            source = cause.source();
        }
        Ok(())
    }
}

/// Logs one error reported in the background (an event of the bus or of a queue), or met by a
/// consumer (`what` says which). `queue` names the queue it concerns, if any.
pub(crate) fn log_error(what: &'static str, queue: Option<&str>, error: &Error) {
    let kind = error.kind();
    if error.needs_action() {
        tracing::error!(target: "busmq", queue, kind, error = %Chain(error), "{what}");
    } else {
        tracing::warn!(target: "busmq", queue, kind, error = %Chain(error), "{what}");
    }
}

/// [`log_error`] for a background error (what every `BusEvent::Error` and `QueueEvent::Error`
/// is also logged as).
pub(crate) fn background_error(queue: Option<&str>, error: &Error) {
    log_error("busmq background error", queue, error);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Debug)]
    struct Driver(&'static str, Option<Box<Driver>>);

    impl fmt::Display for Driver {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Driver {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|d| d as _)
        }
    }

    #[test]
    fn sources_follow_the_error_without_repeats() {
        let io = Driver("connection refused", None);
        let driver = Driver("io error: connection refused", Some(Box::new(io)));
        let error = Error::Store {
            backend: "redis",
            operation: "connect",
            message: "cannot connect".into(),
            retryable: true,
            source: Some(Arc::new(driver)),
        };
        assert_eq!(
            Chain(&error).to_string(),
            "redis store failed during connect: cannot connect: io error: connection refused"
        );
    }
}
