//! Delayed messages as they cross the Store boundary (SPEC P8): what to schedule, and the
//! handle that names a scheduled message again to cancel it.

use super::entry::NewEntry;
use super::queue::QueueSpec;
use std::time::Duration;

/// The longest delay a message may be scheduled with: a schedule is for work to do later, not
/// an archive, and the bound keeps every due time far inside the range of every clock.
pub const MAX_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

/// One message to schedule, for [`Store::schedule`](super::Store::schedule).
#[derive(Clone, Copy, Debug)]
pub struct ScheduleBatch<'a> {
    /// The generation the caller is attached to (a closed one makes the call fail).
    pub generation: u64,
    /// The spec to create the queue from if it vanished.
    pub spec: &'a QueueSpec,
    /// The message.
    pub entry: &'a NewEntry,
    /// How long from now (on the store's clock) the message stays invisible; at most
    /// [`MAX_DELAY`]. When it comes due it is routed with its own
    /// [`NewEntry::priority`] and [`NewEntry::ordering_key`] like a push made then.
    pub delay: Duration,
}

impl<'a> ScheduleBatch<'a> {
    /// `entry` to come due after `delay` in the incarnation `generation` created from `spec`.
    pub fn new(generation: u64, spec: &'a QueueSpec, entry: &'a NewEntry, delay: Duration) -> Self {
        ScheduleBatch { generation, spec, entry, delay }
    }
}

/// A scheduled message, as [`Store::schedule`](super::Store::schedule) names it; give it back
/// to [`Store::cancel`](super::Store::cancel) to withdraw the message while it waits.
///
/// The message gets its id only when it comes due (ids are in push order, which is what replay
/// positions, retention by age and restores rely on), so the handle is not an id: it holds the
/// incarnation, a sequence number unique in it, and the backend's due stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scheduled {
    generation: u64,
    seq: u64,
    due: u64,
}

impl Scheduled {
    /// A handle (for backends): the incarnation, the sequence number the backend gave, and
    /// whatever due stamp the backend needs to find the message again (Redis: the due time in
    /// milliseconds on its clock; 0 when the backend needs none).
    pub fn new(generation: u64, seq: u64, due: u64) -> Self {
        Scheduled { generation, seq, due }
    }

    /// The queue incarnation the message was scheduled in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The sequence number: unique per incarnation, growing in schedule order.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The backend's due stamp.
    pub fn due(&self) -> u64 {
        self.due
    }
}
