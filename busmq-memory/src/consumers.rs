//! Consumer registrations with leases, for the rule that removing and replaying consumers never
//! share a queue (SPEC Q15).

use crate::clock::deadline;
use busmq_core::store::{ConsumerId, ConsumerKind, ConsumerOp};
use busmq_core::{Error, QueueName, Result};
use std::collections::HashMap;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct Consumers {
    leases: HashMap<ConsumerId, (ConsumerKind, Instant)>,
}

impl Consumers {
    /// Forgets lapsed leases (a consumer that stopped renewing is gone).
    pub(crate) fn prune(&mut self, now: Instant) {
        self.leases.retain(|_, (_, until)| *until > now);
    }

    pub(crate) fn count(&self) -> u64 {
        self.leases.len() as u64
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.leases.clear();
    }

    /// Applies `op`; expects lapsed leases to be pruned already.
    pub(crate) fn apply(&mut self, queue: &QueueName, op: ConsumerOp, now: Instant) -> Result<()> {
        match op {
            ConsumerOp::Register { id, kind, lease } => {
                let other = self.leases.iter().find(|(other, (k, _))| **other != id && *k != kind);
                if let Some((_, (existing, _))) = other {
                    return Err(Error::MixedConsumers {
                        queue: queue.to_string(),
                        existing: existing.as_str(),
                        requested: kind.as_str(),
                    });
                }
                self.leases.insert(id, (kind, deadline(now, lease)));
            }
            ConsumerOp::Renew { id, kind, lease } => {
                self.leases.insert(id, (kind, deadline(now, lease)));
            }
            ConsumerOp::Unregister { id } => {
                self.leases.remove(&id);
            }
        }
        Ok(())
    }
}
