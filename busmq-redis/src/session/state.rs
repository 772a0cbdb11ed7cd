//! The store's reachability, derived from the instances' health, and its event broadcast:
//! a state event is sent exactly once per real transition (SPEC B2).

use crate::instance::Instance;
use busmq_core::Error;
use busmq_core::store::{StoreEvent, StoreState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

#[derive(Debug)]
pub(crate) struct StateTracker {
    current: Mutex<StoreState>,
    events: broadcast::Sender<StoreEvent>,
    // While connecting or disconnecting, instances change one by one; the intermediate states
    // (e.g. Degraded while the second instance is still being dialled) are not transitions.
    quiet: AtomicBool,
}

impl StateTracker {
    pub(crate) fn new() -> StateTracker {
        StateTracker {
            current: Mutex::new(StoreState::Offline),
            events: broadcast::channel(256).0,
            quiet: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self) -> StoreState {
        self.lock().clone()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    pub(crate) fn set_quiet(&self, quiet: bool) {
        self.quiet.store(quiet, Ordering::SeqCst);
    }

    /// Recomputes the state from the instances and emits it if it changed.
    pub(crate) fn recompute(&self, instances: &[Arc<Instance>]) {
        let mut current = self.lock();
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
        self.transition(&mut current, next);
    }

    /// Sets the state regardless of the instances (disconnect).
    pub(crate) fn force(&self, next: StoreState) {
        let mut current = self.lock();
        self.transition(&mut current, next);
    }

    fn transition(&self, current: &mut StoreState, next: StoreState) {
        if *current != next {
            *current = next.clone();
            let _ = self.events.send(StoreEvent::State(next));
        }
    }

    pub(crate) fn error(&self, error: Error) {
        let _ = self.events.send(StoreEvent::Error(error));
    }
}
