//! The translation of a failed call into busmq's typed [`Error`] (no `redis::` type escapes
//! the crate): what the call was about, and which variant its failure is. A driver error is
//! kept as the error's source and not repeated in its message (DESIGN "Errors").

use crate::fault::{CallError, is_connection_error};
use crate::script::keys::LAYOUT_VERSION;
use crate::session::access::{Who, denial, script_refusal};
use busmq_core::Error;
use busmq_core::error::Source;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use std::sync::Arc;
use std::time::Duration;

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

/// The detail of a busmq script error (`<CODE> <detail>`), without what Redis appends
/// (" script: <sha>, on @user_script:<line>.").
fn script_detail(e: &RedisError) -> &str {
    let detail = e.detail().unwrap_or("");
    detail.split(" script: ").next().unwrap_or(detail).trim()
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

    fn timed_out(&self) -> Error {
        Error::Timeout { operation: self.operation, target: self.target(), after: self.timeout }
    }

    /// A script called a command the server does not have: `CommandSet::Full` against a server
    /// that disabled or renamed `RENAME` or `SORT` (Redis says "Unknown Redis command called
    /// from script", Valkey "Unknown command called from script").
    fn missing_command(&self, e: &RedisError) -> Option<String> {
        let detail = e.detail().unwrap_or("");
        if e.code() != Some("ERR")
            || !detail.starts_with("Unknown ")
            || !detail.contains("command called from script")
        {
            return None;
        }
        Some(format!(
            "redis {} lacks a command that CommandSet::Full assumes (disabled or renamed with \
             rename-command): {}; use CommandSet::Auto or CommandSet::Restricted",
            self.instance,
            script_refusal(detail)
        ))
    }

    /// The busmq error for a failed call.
    pub(crate) fn error(&self, e: CallError) -> Error {
        let e = match e {
            CallError::Down => return Error::Offline { target: self.target() },
            CallError::Timeout => return self.timed_out(),
            CallError::Denied(reason) => return self.denied(reason),
            CallError::Unsupported(reason) => {
                let reason = format!("redis {}: {reason}", self.instance);
                return Error::InvalidOption { option: "command_set", reason };
            }
            CallError::Tls(problem, reason) => {
                return Error::Tls { target: self.instance.to_string(), problem, reason };
            }
            CallError::Redis(e) => e,
        };
        if let Some(reason) = denial(&e, self.who) {
            return self.denied(reason);
        }
        if e.is_timeout() {
            return self.timed_out();
        }
        if e.is_connection_refusal() {
            return Error::Offline { target: self.target() };
        }
        if is_connection_error(&e) {
            return Error::Interrupted { operation: self.operation, target: self.target() };
        }
        if let Some(reason) = self.missing_command(&e) {
            return Error::InvalidOption { option: "command_set", reason };
        }
        if let Some(queue) = self.queue {
            let queue = queue.to_string();
            match e.code().unwrap_or("") {
                "WRONGTYPE" => {
                    let detail = "a key of the queue holds another Redis type than busmq writes";
                    return Error::ForeignData { queue, detail: detail.to_string() };
                }
                "BUSMQFOREIGN" => {
                    return Error::ForeignData { queue, detail: script_detail(&e).to_string() };
                }
                "BUSMQLAYOUT" => {
                    let found = script_detail(&e).to_string();
                    return Error::UnknownLayout {
                        queue,
                        found,
                        supported: LAYOUT_VERSION.to_string(),
                    };
                }
                _ => {}
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
                    // Redis refuses an unknown script before running anything: a failover
                    // reached a node whose script cache the reload has not filled yet.
                    | ServerErrorKind::NoScript
            )
        );
        let message = format!("{} answered with an error", self.target());
        let source: Source = Arc::new(e);
        Error::Store {
            backend: "redis",
            operation: self.operation,
            message,
            retryable,
            source: Some(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(queue: Option<&str>) -> Context<'_> {
        Context {
            operation: "take",
            instance: "h:1/0",
            who: Who::new(None, false),
            queue,
            topic: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn server(code: &str, detail: &str) -> CallError {
        CallError::Redis(redis::make_extension_error(code.to_string(), Some(detail.to_string())))
    }

    #[test]
    fn an_unknown_layout_names_the_queue_and_both_versions() {
        let e =
            context(Some("jobs")).error(server("BUSMQLAYOUT", "3 script: abc, on @user_script:9."));
        match e {
            Error::UnknownLayout { queue, found, supported } => {
                assert_eq!((queue.as_str(), found.as_str()), ("jobs", "3"));
                assert_eq!(supported, LAYOUT_VERSION);
            }
            other => panic!("expected UnknownLayout, got {other:?}"),
        }
    }

    #[test]
    fn other_server_errors_keep_the_driver_error_as_source_and_do_not_repeat_it() {
        let e = context(Some("jobs"))
            .error(server("OOM", "command not allowed when used memory > 'maxmemory'"));
        let text = e.to_string();
        assert!(!text.contains("maxmemory"), "{text}");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.to_string().contains("maxmemory"), "{source}");
        assert!(!e.is_retryable());
    }

    #[test]
    fn a_command_missing_inside_a_script_names_the_command_set() {
        for detail in [
            "Unknown Redis command called from script script: abc, on @user_script:16.",
            "Unknown command called from script script: abc, on @user_script:16.",
        ] {
            match context(Some("jobs")).error(server("ERR", detail)) {
                Error::InvalidOption { option: "command_set", reason } => {
                    assert!(reason.contains("CommandSet::Restricted"), "{reason}");
                }
                other => panic!("expected InvalidOption, got {other:?}"),
            }
        }
    }

    #[test]
    fn noscript_is_retryable_because_nothing_ran() {
        let kind = ErrorKind::Server(ServerErrorKind::NoScript);
        let e = context(Some("jobs")).error(CallError::Redis((kind, "No matching script").into()));
        assert!(e.is_retryable() && e.is_unapplied(), "{e:?}");
    }
}
