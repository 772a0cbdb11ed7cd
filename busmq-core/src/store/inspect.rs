//! The optional listing of a store's queues, for operators' tools (`busmq ls`): a backend that
//! can enumerate the queues of its namespace without blocking the store (Redis `SCAN` over
//! every instance, never `KEYS`; the memory store's own map) offers it through
//! [`Store::inspect`](super::Store::inspect).
//!
//! Listing is paged so that a store with millions of keys is walked in bounded steps, each a
//! short call that other clients' operations interleave with.

use crate::error::Result;
use crate::name::QueueName;
use async_trait::async_trait;

/// One page of a listing (see [`Inspect::list_queues`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueuePage {
    /// Queues that existed when this page was read (not expired, not closed). A page may be
    /// empty while the listing goes on, and a name may come again on a later page.
    pub queues: Vec<QueueName>,
    /// Where the next page starts (opaque, backend-specific); `None` once the listing is
    /// complete.
    pub next: Option<String>,
}

/// Lists the queues that exist. Offered through [`Store::inspect`](super::Store::inspect).
#[async_trait]
pub trait Inspect: Send + Sync {
    /// One page of queue names: from the start when `cursor` is `None`, else from the
    /// [`QueuePage::next`] of the previous page. `count` is a hint of how much work one page
    /// may do (Redis: the `COUNT` of one `SCAN` step), not an exact page size.
    ///
    /// Walking every page until `next` is `None` returns each queue that existed during the
    /// whole walk at least once; queues created or removed meanwhile may or may not be
    /// returned. A cursor the backend did not give is `InvalidOption("cursor")`.
    async fn list_queues(&self, cursor: Option<&str>, count: u32) -> Result<QueuePage>;
}
