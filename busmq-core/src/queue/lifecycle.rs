//! The attach/detach/close life of one queue handle as a pure state machine, so that its rules
//! are tested without a store (DESIGN: sans-IO state machines, thin async glue).

use crate::error::{Error, Result};
use crate::name::QueueName;
use crate::store::QueueSpec;

/// What the handle holds while attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) generation: u64,
    pub(crate) spec: QueueSpec,
}

/// The phase of a queue handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Never attached: pushes and consumes wait for the first attach (SPEC Q7).
    Fresh,
    Attaching,
    Attached(Held),
    /// Detaching: new pushes are refused, pushes already accepted are still written.
    Detaching(Held),
    /// Detached after having been attached: pushes are refused (SPEC Q7).
    Detached,
    /// The queue was closed by this or another client (SPEC Q4).
    Closed,
}

impl Phase {
    pub(crate) fn held(&self) -> Option<Held> {
        match self {
            Phase::Attached(held) | Phase::Detaching(held) => Some(*held),
            _ => None,
        }
    }

    /// May `attach` start?
    pub(crate) fn can_attach(&self, queue: &QueueName) -> Result<()> {
        match self {
            Phase::Fresh | Phase::Detached | Phase::Closed => Ok(()),
            Phase::Attaching | Phase::Attached(_) | Phase::Detaching(_) => {
                Err(Error::AlreadyAttached { queue: queue.to_string() })
            }
        }
    }

    /// May a push be accepted now (it is buffered until attached)?
    pub(crate) fn can_push(&self, queue: &QueueName) -> Result<()> {
        match self {
            Phase::Fresh | Phase::Attaching | Phase::Attached(_) => Ok(()),
            Phase::Detaching(_) | Phase::Detached => {
                Err(Error::Detached { queue: queue.to_string() })
            }
            Phase::Closed => Err(Error::Closed { queue: queue.to_string() }),
        }
    }

    /// Where a buffered push stands: write it with `Held`, keep waiting, or fail.
    pub(crate) fn push_target(&self, queue: &QueueName) -> PushTarget {
        match self {
            Phase::Attached(held) | Phase::Detaching(held) => PushTarget::Write(*held),
            Phase::Fresh | Phase::Attaching => PushTarget::Wait,
            Phase::Detached => PushTarget::Fail(Error::Detached { queue: queue.to_string() }),
            Phase::Closed => PushTarget::Fail(Error::Closed { queue: queue.to_string() }),
        }
    }

    /// May a consumer start (now or once attached)?
    pub(crate) fn can_consume(&self, queue: &QueueName) -> Result<()> {
        match self {
            Phase::Closed => Err(Error::Closed { queue: queue.to_string() }),
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
pub(crate) enum PushTarget {
    Write(Held),
    Wait,
    Fail(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Held {
        Held { generation: 1, spec: QueueSpec::default() }
    }

    #[test]
    fn attach_is_refused_while_attached_and_allowed_after_detach_or_close() {
        let q = QueueName::new("q").unwrap();
        assert!(Phase::Fresh.can_attach(&q).is_ok());
        assert!(matches!(
            Phase::Attached(held()).can_attach(&q),
            Err(Error::AlreadyAttached { .. })
        ));
        assert!(Phase::Attaching.can_attach(&q).is_err());
        assert!(Phase::Detached.can_attach(&q).is_ok());
        assert!(Phase::Closed.can_attach(&q).is_ok());
    }

    #[test]
    fn pushes_wait_before_attach_and_fail_after_detach_or_close() {
        let q = QueueName::new("q").unwrap();
        assert!(matches!(Phase::Fresh.push_target(&q), PushTarget::Wait));
        assert!(matches!(Phase::Attaching.push_target(&q), PushTarget::Wait));
        assert!(matches!(Phase::Attached(held()).push_target(&q), PushTarget::Write(_)));
        // Pushes accepted before a detach are still written while it runs.
        assert!(matches!(Phase::Detaching(held()).push_target(&q), PushTarget::Write(_)));
        assert!(matches!(Phase::Detaching(held()).can_push(&q), Err(Error::Detached { .. })));
        assert!(matches!(Phase::Detached.can_push(&q), Err(Error::Detached { .. })));
        assert!(matches!(Phase::Closed.can_push(&q), Err(Error::Closed { .. })));
    }

    #[test]
    fn consuming_is_deferred_until_attach_but_refused_once_closed() {
        let q = QueueName::new("q").unwrap();
        assert!(Phase::Fresh.can_consume(&q).is_ok());
        assert!(Phase::Detached.can_consume(&q).is_ok());
        assert!(matches!(Phase::Closed.can_consume(&q), Err(Error::Closed { .. })));
    }
}
