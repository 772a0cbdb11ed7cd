//! Identities given to the store: one per bus (client) and one per consumer.

use std::fmt;
use std::sync::Arc;

/// Identifies one bus (one client process) to the store. Random, unique per bus instance.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// Wraps an id. Ids are opaque; use [`ClientId::random`] for new clients.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        ClientId(id.into())
    }

    /// A fresh random id (16 hex digits).
    pub fn random() -> Self {
        ClientId(format!("{:016x}", crate::util::random_u64()).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one consumer (one `consume` call) of one queue: `<client id>.<sequence>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerId(Arc<str>);

impl ConsumerId {
    /// The consumer number `seq` of `client`.
    pub fn new(client: &ClientId, seq: u64) -> Self {
        ConsumerId(format!("{}.{}", client.as_str(), seq).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConsumerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsumerId({})", self.0)
    }
}

impl fmt::Display for ConsumerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
