//! A short, stable name per error variant: the `kind` label of `busmq_errors_total` and the
//! `kind` field of logged errors. Kept apart from `error.rs` because it serves observability;
//! the names are part of the public contract (dashboards and alerts are written against them).

use crate::error::Error;

impl Error {
    /// A short, stable name of this error's variant (`offline`, `timeout`, `foreign_data`,
    /// `decode`, `store`, `access_denied`, ...), as the `kind` label of `busmq_errors_total`.
    /// Names never change once released; a new variant gets a new name.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidName { .. } => "invalid_name",
            Error::InvalidOption { .. } => "invalid_option",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::MessageTooLarge { .. } => "message_too_large",
            Error::AlreadyConnected => "already_connected",
            Error::NotConnected => "not_connected",
            Error::Offline { .. } => "offline",
            Error::Interrupted { .. } => "interrupted",
            Error::AlreadyAttached { .. } => "already_attached",
            Error::NotAttached { .. } => "not_attached",
            Error::Detached { .. } => "detached",
            Error::AlreadyConsuming { .. } => "already_consuming",
            Error::Closed { .. } => "closed",
            Error::QueueFull { .. } => "queue_full",
            Error::Backpressure { .. } => "backpressure",
            Error::MixedConsumers { .. } => "mixed_consumers",
            Error::ChannelNotConnected { .. } => "channel_not_connected",
            Error::ChannelAlreadyConnected { .. } => "channel_already_connected",
            Error::NoResponders { .. } => "no_responders",
            Error::ServiceFailed { .. } => "service_failed",
            Error::Encode { .. } => "encode",
            Error::Decode { .. } => "decode",
            Error::StaleDelivery { .. } => "stale_delivery",
            Error::ForeignData { .. } => "foreign_data",
            Error::UnknownLayout { .. } => "unknown_layout",
            Error::AccessDenied { .. } => "access_denied",
            Error::Tls { .. } => "tls",
            Error::Timeout { .. } => "timeout",
            Error::Shutdown { .. } => "shutdown",
            Error::Conflict { .. } => "conflict",
            Error::NotReplicated { .. } => "not_replicated",
            Error::Store { .. } => "store",
        }
    }

    /// Whether this error needs someone to act rather than wait (logged at ERROR, the others
    /// at WARN): credentials or rights, TLS settings, or data another version of busmq wrote.
    pub(crate) fn needs_action(&self) -> bool {
        matches!(self, Error::AccessDenied { .. } | Error::Tls { .. } | Error::UnknownLayout { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kinds_are_short_snake_case_names() {
        let samples = [
            Error::NotConnected,
            Error::Offline { target: "x".into() },
            Error::Timeout { operation: "take", target: "x".into(), after: Duration::ZERO },
            Error::ForeignData { queue: "q".into(), detail: "d".into() },
            Error::AccessDenied { target: "x".into(), reason: "r".into() },
        ];
        let kinds: Vec<&str> = samples.iter().map(Error::kind).collect();
        assert_eq!(kinds, ["not_connected", "offline", "timeout", "foreign_data", "access_denied"]);
        for kind in kinds {
            assert!(kind.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{kind}");
        }
    }

    #[test]
    fn a_write_too_few_replicas_confirmed_is_retryable_but_was_applied() {
        let e = Error::NotReplicated {
            backend: "redis",
            operation: "push",
            confirmed: 0,
            required: 1,
            detail: "redis 127.0.0.1:1, queue \"q\", waited 10ms".into(),
        };
        assert_eq!(e.kind(), "not_replicated");
        // A retry may write it twice: code that retries only unapplied calls must not.
        assert!(e.is_retryable() && !e.is_unapplied(), "{e}");
        assert!(e.to_string().contains("0 of 1 replicas"), "{e}");
    }
}
