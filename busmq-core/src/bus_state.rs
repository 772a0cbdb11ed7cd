//! The bus's reachability as a small state machine: store reports in, one event per real
//! transition out (SPEC B2: node busmq could emit `online` twice or never emit `offline`), and
//! the events the bus reports.

use crate::error::Error;
use crate::store::StoreState;

/// Whether the bus can reach its store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusState {
    /// Every instance answers.
    Online,
    /// Some instances answer; the listed ones do not. Queues on them fail with `Offline`.
    Degraded {
        /// The instances that do not answer, sorted.
        down: Vec<String>,
    },
    /// Nothing answers, or the bus is not connected.
    Offline,
}

impl From<StoreState> for BusState {
    fn from(state: StoreState) -> Self {
        match state {
            StoreState::Online => BusState::Online,
            StoreState::Degraded { mut down } => {
                down.sort();
                BusState::Degraded { down }
            }
            StoreState::Offline => BusState::Offline,
        }
    }
}

/// What the bus reports on its event stream.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BusEvent {
    /// Every store instance answers.
    Online,
    /// Some instances are down (their names are listed); the others work.
    Degraded {
        /// The instances that do not answer.
        down: Vec<String>,
    },
    /// No instance answers, or the bus was disconnected.
    Offline,
    /// A background failure (the bus keeps going).
    Error(Error),
    /// This event stream fell behind and missed `missed` events; [`Bus::state`](crate::Bus::state) tells the
    /// current state.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

impl From<BusState> for BusEvent {
    fn from(state: BusState) -> Self {
        match state {
            BusState::Online => BusEvent::Online,
            BusState::Degraded { down } => BusEvent::Degraded { down },
            BusState::Offline => BusEvent::Offline,
        }
    }
}

/// Remembers the last state reported to users and says whether a new report is a transition.
#[derive(Debug, Default)]
pub(crate) struct StateTracker {
    last: Option<BusState>,
}

impl StateTracker {
    /// Records `next`; returns it when it differs from the last reported state.
    pub(crate) fn observe(&mut self, next: BusState) -> Option<BusState> {
        if self.last.as_ref() == Some(&next) {
            return None;
        }
        self.last = Some(next.clone());
        Some(next)
    }

    #[cfg(test)]
    /// The last reported state (`Offline` before any report).
    pub(crate) fn current(&self) -> BusState {
        self.last.clone().unwrap_or(BusState::Offline)
    }

    /// Forgets the last state so that the next connection reports its first state again, but
    /// keeps `Offline` as last when it was, so that a disconnect right after does not repeat it.
    pub(crate) fn reset_for_connect(&mut self) {
        if self.last != Some(BusState::Offline) {
            self.last = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_transition_once() {
        let mut t = StateTracker::default();
        assert_eq!(t.observe(BusState::Online), Some(BusState::Online));
        assert_eq!(t.observe(BusState::Online), None);
        let degraded = BusState::Degraded { down: vec!["b".into()] };
        assert_eq!(t.observe(degraded.clone()), Some(degraded.clone()));
        assert_eq!(t.observe(degraded), None);
        assert_eq!(t.observe(BusState::Offline), Some(BusState::Offline));
        assert_eq!(t.observe(BusState::Offline), None);
        assert_eq!(t.current(), BusState::Offline);
    }

    #[test]
    fn degraded_lists_are_compared_in_a_stable_order() {
        let mut t = StateTracker::default();
        let a: BusState = StoreState::Degraded { down: vec!["x".into(), "a".into()] }.into();
        let b: BusState = StoreState::Degraded { down: vec!["a".into(), "x".into()] }.into();
        assert!(t.observe(a).is_some());
        assert!(t.observe(b).is_none());
    }

    #[test]
    fn reconnecting_reports_online_again_but_not_a_second_offline() {
        let mut t = StateTracker::default();
        t.observe(BusState::Online);
        t.observe(BusState::Offline);
        t.reset_for_connect();
        assert_eq!(t.observe(BusState::Offline), None, "still offline: no repeat");
        assert_eq!(t.observe(BusState::Online), Some(BusState::Online));
    }
}
