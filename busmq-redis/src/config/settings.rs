//! The settings every part of one store shares (timeouts, backoff, page size, replica
//! acknowledgements, command set, TLS), as the builder checked them.

use crate::config::commands::CommandSet;
use crate::config::tls::TlsSettings;
use std::time::Duration;

/// Settings shared by every part of one store.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) response_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_cap: Duration,
    pub(crate) page_size: u32,
    /// `WAIT <replicas> <timeout>` after every push and at-most-once take.
    pub(crate) replicas_ack: Option<ReplicaAck>,
    /// Whether the fast paths may use `RENAME` and `SORT`.
    pub(crate) commands: CommandSet,
    /// The CA and client certificate of `rediss://` connections.
    pub(crate) tls: TlsSettings,
}

impl Config {
    /// How long any one call may take in all. The connections have the response timeout of
    /// their own; this outer deadline only guarantees that no call outlives it, whatever the
    /// driver does (SPEC E4).
    pub(crate) fn call_deadline(&self) -> Duration {
        self.response_timeout + self.response_timeout / 4
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            response_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(1),
            backoff_base: Duration::from_millis(100),
            // Low enough that a store that comes back is found within about two seconds
            // (the target is delivery within 5 s of a fault ending).
            backoff_cap: Duration::from_secs(2),
            page_size: 4096,
            replicas_ack: None,
            commands: CommandSet::Auto,
            tls: TlsSettings::default(),
        }
    }
}

/// How many replicas must confirm a write, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplicaAck {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}
