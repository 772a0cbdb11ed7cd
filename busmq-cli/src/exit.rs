//! The exit codes of `busmq` and the one error type of its commands, which classifies busmq's
//! errors into those codes, so that scripts can tell a typo in a URL from an outage from a
//! refused password without reading messages.

use busmq::Error;
use std::fmt;

/// Why `busmq` exits, as its process exit code (documented in the README and `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Anything else went wrong.
    Failure = 1,
    /// The command line is wrong (clap uses the same code for its own usage errors).
    Usage = 2,
    /// A connection URL (or the set of URLs) cannot be used.
    BadUrl = 3,
    /// Redis did not answer in time, or went away while the command ran.
    Unreachable = 4,
    /// Redis refused the credentials, the user lacks a right busmq needs, or TLS could not be
    /// set up (an untrusted certificate, a TLS/plain mismatch, a refused client certificate).
    Denied = 5,
    /// The queue (or the dead letters asked for) does not exist.
    NotFound = 6,
    /// A request got no reply: no server, a failure, or its deadline passed.
    NoReply = 7,
}

/// A command's failure: the exit code and what to tell the user.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) exit: Exit,
    pub(crate) message: String,
    /// The reader of stdout went away (`busmq peek q | head -1`): the command stops, and that
    /// is no failure of it.
    pub(crate) reader_gone: bool,
}

impl CliError {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError { exit, message: message.into(), reader_gone: false }
    }

    pub(crate) fn reader_gone() -> Self {
        CliError { reader_gone: true, ..CliError::new(Exit::Failure, "stdout was closed") }
    }

    pub(crate) fn not_found(queue: &str, namespace: &str) -> Self {
        CliError::new(
            Exit::NotFound,
            format!("queue {queue:?} not found in namespace {namespace:?}"),
        )
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code of a busmq error.
pub(crate) fn classify(error: &Error) -> Exit {
    match error {
        Error::NoResponders { .. }
        | Error::ServiceFailed { .. }
        | Error::Timeout { operation: "request", .. } => Exit::NoReply,
        Error::InvalidUrl { .. } | Error::InvalidOption { option: "urls", .. } => Exit::BadUrl,
        Error::InvalidName { .. } | Error::InvalidOption { .. } => Exit::Usage,
        Error::Offline { .. } | Error::Timeout { .. } | Error::Interrupted { .. } => {
            Exit::Unreachable
        }
        Error::NotConnected => Exit::Unreachable,
        Error::AccessDenied { .. } | Error::Tls { .. } => Exit::Denied,
        _ => Exit::Failure,
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        // busmq's messages never print a source twice; the source often says what failed
        // underneath (the driver's words), which a user at a terminal wants to see.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        CliError::new(classify(&error), message)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::new(Exit::Failure, error.to_string())
    }
}

/// `Result` of a command.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn errors_map_to_their_documented_codes() {
        let url = Error::InvalidUrl { url: "x".into(), reason: "y".into() };
        assert_eq!(classify(&url), Exit::BadUrl);
        assert_eq!(classify(&Error::invalid_option("urls", "two clusters")), Exit::BadUrl);
        assert_eq!(classify(&Error::invalid_option("ttl", "zero")), Exit::Usage);
        assert_eq!(classify(&Error::Offline { target: "redis".into() }), Exit::Unreachable);
        let denied = Error::AccessDenied { target: "redis".into(), reason: "wrong".into() };
        assert_eq!(classify(&denied), Exit::Denied);
        assert_eq!(classify(&Error::Closed { queue: "q".into() }), Exit::Failure);
        assert_eq!(Exit::NotFound as i32, 6);
        let timeout =
            Error::Timeout { operation: "request", target: "s".into(), after: Duration::ZERO };
        assert_eq!(classify(&timeout), Exit::NoReply);
        assert_eq!(classify(&Error::NoResponders { service: "s".into() }), Exit::NoReply);
    }
}
