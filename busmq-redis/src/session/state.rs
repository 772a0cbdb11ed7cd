//! The store's reachability, derived from the instances' health: the current state in a
//! `watch` (what `Session::state` hands out) and the event broadcast, where a state event is
//! sent exactly once per real transition (SPEC B2).

use crate::session::instance::Instance;
use busmq_core::Error;
use busmq_core::store::{StoreEvent, StoreState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{broadcast, watch};

#[derive(Debug)]
pub(crate) struct StateTracker {
    current: watch::Sender<StoreState>,
    events: broadcast::Sender<StoreEvent>,
    // While connecting or disconnecting, instances change one by one; the intermediate states
    // (e.g. Degraded while the second instance is still being dialled) are not transitions.
    quiet: AtomicBool,
}

impl StateTracker {
    pub(crate) fn new() -> StateTracker {
        StateTracker {
            current: watch::Sender::new(StoreState::Offline),
            events: broadcast::channel(256).0,
            quiet: AtomicBool::new(false),
        }
    }

    pub(crate) fn get(&self) -> StoreState {
        self.current.borrow().clone()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<StoreState> {
        self.current.subscribe()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    pub(crate) fn set_quiet(&self, quiet: bool) {
        self.quiet.store(quiet, Ordering::SeqCst);
    }

    /// Recomputes the state from the instances and emits it if it changed.
    pub(crate) fn recompute(&self, instances: &[Arc<Instance>]) {
        if self.quiet.load(Ordering::SeqCst) {
            return;
        }
        let down: Vec<String> =
            instances.iter().filter(|i| !i.is_up()).map(|i| i.identity().to_string()).collect();
        let next = if down.is_empty() {
            StoreState::Online
        } else if down.len() == instances.len() {
            StoreState::Offline
        } else {
            StoreState::Degraded { down }
        };
        self.transition(next);
    }

    /// Sets the state regardless of the instances (disconnect).
    pub(crate) fn force(&self, next: StoreState) {
        self.transition(next);
    }

    fn transition(&self, next: StoreState) {
        // The event is sent under the watch's lock, so that two racing transitions are
        // broadcast in the order the watch took them.
        self.current.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            *current = next.clone();
            let _ = self.events.send(StoreEvent::State(next));
            true
        });
    }

    pub(crate) fn error(&self, error: Error) {
        let _ = self.events.send(StoreEvent::Error(error));
    }
}
