//! What a queue handle reports on its event stream.

use crate::error::Error;

/// What a queue handle reports, in this order over its life (SPEC section 2, "Events").
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum QueueEvent {
    /// `attach` started.
    Attaching,
    /// `attach` succeeded; `existed` says whether the queue was there before.
    Attached {
        /// Whether the queue existed before this attach.
        existed: bool,
    },
    /// A consumer of this handle started (`true`) or ended (`false`).
    Consuming(bool),
    /// `detach` started.
    Detaching,
    /// `detach` finished.
    Detached,
    /// The queue was closed, by this handle or by another client (SPEC Q4).
    Closed,
    /// A background failure (a push nobody awaited, a renewal, a consumer's store call, an
    /// entry busmq did not write that was moved aside).
    Error(Error),
    /// This event stream fell behind and missed `missed` events (they were dropped for it
    /// only; the queue itself is unaffected).
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}
