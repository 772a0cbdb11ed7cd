//! Why one call to one instance failed, before it is translated into busmq's typed error (see
//! `errors.rs`): the private failure type of the crate's transport, sessions and access checks.

use busmq_core::TlsProblem;
use redis::RedisError;

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
    /// The server lacks what the configuration requires (`CommandSet::Full` without `RENAME`
    /// or `SORT`); the reason says what. Trying again cannot help.
    Unsupported(String),
    /// TLS could not be set up, for a reason the same configuration cannot get past.
    Tls(TlsProblem, String),
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
