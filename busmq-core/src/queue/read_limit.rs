//! The bound on one read ([`Queue::peek`](crate::Queue::peek), a dead-letter listing): a read
//! is one store reply held whole in memory.

use crate::error::{Error, Result};

/// The most messages one [`Queue::peek`](crate::Queue::peek) or [`DeadLetterQueue::list_after`] returns: a read
/// is one store reply, held whole in memory, so a larger one is refused rather than let a
/// queue of millions fill the memory of the store and the reader.
///
/// [`DeadLetterQueue::list_after`]: crate::DeadLetterQueue::list_after
pub const MAX_READ: u32 = 10_000;

/// Refuses a read of more than [`MAX_READ`] messages, naming the limit.
pub(crate) fn check_read_max(max: u32) -> Result<()> {
    if max > MAX_READ {
        return Err(Error::invalid_option(
            "max",
            format!("a read returns at most {MAX_READ} messages (MAX_READ), got {max}"),
        ));
    }
    Ok(())
}
