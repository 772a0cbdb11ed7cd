//! The private failure type of one Redis call, and its translation into busmq's typed
//! [`Error`] (no `redis::` type escapes the crate).

use crate::access::{Who, denial};
use busmq_core::Error;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use std::time::Duration;

/// Why one call to one instance failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The instance is known to be down: the call was not sent.
    Down,
    /// No answer within the response timeout.
    Timeout,
    /// The redis crate or the server reported an error.
    Redis(RedisError),
    /// The server refused this client's credentials or rights; the reason says which.
    Denied(String),
}

impl From<RedisError> for CallError {
    fn from(e: RedisError) -> Self {
        if e.is_timeout() { CallError::Timeout } else { CallError::Redis(e) }
    }
}

/// Whether the error means the connection is unusable (so the instance must be re-checked).
pub(crate) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// What the failing call was about, for the error message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) operation: &'static str,
    pub(crate) instance: &'a str,
    pub(crate) who: Who<'a>,
    pub(crate) queue: Option<&'a str>,
    pub(crate) topic: Option<&'a str>,
    pub(crate) timeout: Duration,
}

impl Context<'_> {
    fn target(&self) -> String {
        match (self.queue, self.topic) {
            (Some(q), _) => format!("redis {} (queue {q:?})", self.instance),
            (None, Some(t)) => format!("redis {} (topic {t:?})", self.instance),
            (None, None) => format!("redis {}", self.instance),
        }
    }

    /// Access denied to the instance; the queue or topic, if any, ends the reason, so that
    /// `target` is always one of the store's instances.
    fn denied(&self, reason: String) -> Error {
        let reason = match (self.queue, self.topic) {
            (Some(q), _) => format!("{reason} (queue {q:?})"),
            (None, Some(t)) => format!("{reason} (topic {t:?})"),
            (None, None) => reason,
        };
        Error::AccessDenied { target: self.instance.to_string(), reason }
    }

    /// The busmq error for a failed call.
    pub(crate) fn error(&self, e: CallError) -> Error {
        let e = match e {
            CallError::Down => {
                return Error::Offline { target: self.target() };
            }
            CallError::Timeout => {
                return Error::Timeout {
                    operation: self.operation,
                    target: self.target(),
                    after: self.timeout,
                };
            }
            CallError::Denied(reason) => return self.denied(reason),
            CallError::Redis(e) => e,
        };
        if let Some(reason) = denial(&e, self.who) {
            return self.denied(reason);
        }
        if e.is_timeout() {
            return Error::Timeout {
                operation: self.operation,
                target: self.target(),
                after: self.timeout,
            };
        }
        if e.is_connection_refusal() {
            return Error::Offline { target: self.target() };
        }
        if is_connection_error(&e) {
            return Error::Interrupted { operation: self.operation, target: self.target() };
        }
        let code = e.code().unwrap_or("");
        if let Some(queue) = self.queue {
            if code == "WRONGTYPE" {
                return Error::ForeignData {
                    queue: queue.to_string(),
                    detail: "a key of the queue holds another Redis type than busmq writes"
                        .to_string(),
                };
            }
            if code == "BUSMQFOREIGN" {
                let detail = e.detail().unwrap_or("");
                // Redis appends " script: <sha>, on @user_script:<line>." to script errors.
                let detail = detail.split(" script: ").next().unwrap_or(detail).trim();
                return Error::ForeignData { queue: queue.to_string(), detail: detail.to_string() };
            }
        }
        let retryable = matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    // A cluster redirection that reached us: the slot is moving, try again.
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            )
        );
        Error::Store {
            backend: "redis",
            operation: self.operation,
            message: format!("{} answered: {e}", self.target()),
            retryable,
            source: None,
        }
    }
}

/// An answer that does not have the shape the script promises (a bug or a foreign script).
pub(crate) fn unexpected(operation: &'static str, what: impl std::fmt::Display) -> Error {
    Error::Store {
        backend: "redis",
        operation,
        message: format!("unexpected reply: {what}"),
        retryable: false,
        source: None,
    }
}
