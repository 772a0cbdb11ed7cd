//! What a consumer's task does with a take's result: entries go to the stream, entries the
//! store found it did not write are reported (SPEC E3), and entries past `max_deliveries` are
//! moved to the dead-letter queue (SPEC Q13). Apart from `task.rs`, which decides when to take.

use super::super::event::QueueEvent;
use super::super::inner::QueueInner;
use super::super::settler::Settler;
use super::pipe::{ConsumerShared, Until};
use crate::error::Error;
use crate::observability::{DeadReason, log_error};
use crate::store::{Entry, NewEntry, Settle, Settlement, Taken};
use std::sync::Arc;

/// Hands what a take got to the stream, reports entries busmq did not write (the store moved
/// them aside, SPEC E3) and dead-letters the entries past `max_deliveries`. Returns how many
/// entries the take consumed from the queue; the entries stay the consumer's as `until` says.
pub(super) async fn received(
    shared: &ConsumerShared,
    queue: &QueueInner,
    taken: Taken,
    until: Until,
) -> usize {
    // Entries moved aside count as taken: a take of `want` that met some is not a sign that
    // the queue is drained.
    let n = taken.entries.len() + taken.dead.len() + report_foreign(queue, taken.foreign);
    if let Some(settler) = &shared.settler {
        for entry in taken.dead {
            dead_letter(settler, queue, entry).await;
        }
    }
    shared.deliver(taken.entries, until);
    n
}

/// Reports entries the store found it did not write (each once: the store moved them aside,
/// or a replaying read names each once) and returns how many. Each is a background error,
/// so it is logged (WARN) and counted as `foreign_data`.
pub(super) fn report_foreign(queue: &QueueInner, foreign: Vec<String>) -> usize {
    let n = foreign.len();
    for detail in foreign {
        queue.emit(QueueEvent::Error(Error::ForeignData { queue: queue.name.to_string(), detail }));
    }
    n
}

/// Moves an entry claimed for dead-lettering to the DLQ, then acknowledges it. When the move
/// fails it stays pending and is offered again after its visibility timeout.
async fn dead_letter(settler: &Arc<Settler>, queue: &QueueInner, entry: Entry) {
    let (id, delivered) = (entry.id, entry.deliveries.saturating_sub(1));
    let ack = Settle::of(&entry, Settlement::Ack);
    let message = NewEntry { headers: entry.headers, ..NewEntry::new(entry.payload) };
    let moved = settler.dead_letters.push(id, delivered, message, "max_deliveries".into());
    match moved.await {
        Ok(()) => {
            settler.metrics.dead_lettered(DeadReason::MaxDeliveries);
            tracing::warn!(
                queue = queue.name.as_str(),
                id,
                deliveries = delivered,
                reason = "max_deliveries",
                dead_letter_queue = settler.dead_letters.name(),
                "message dead-lettered"
            );
            // Retried through blips (not once): an ack lost here would bring the message back
            // after its visibility timeout, to be dead-lettered a second time (a duplicate in
            // the dead-letter queue). Not awaited: the entries taken with it wait to be handed
            // out.
            settler.settle_detached(ack);
        }
        Err(error) => {
            log_error(
                "could not dead-letter a message; it comes back",
                Some(queue.name.as_str()),
                &error,
            );
            settler.metrics.error(&error);
        }
    }
}
