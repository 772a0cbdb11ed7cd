//! The coalescing buffer behind the producer and the settler: many callers queue items, one
//! worker at a time drains them in batches, so that concurrent pushes (or acks) become one
//! store call and their order is kept. The owner runs the worker; this type only decides when
//! one must be started and what goes into each batch, so it is tested without a runtime.

use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::watch;

struct State<T> {
    items: VecDeque<T>,
    /// A worker is draining (or about to).
    running: bool,
}

/// Items waiting for the worker. See the module documentation.
pub(crate) struct Coalescer<T> {
    state: Mutex<State<T>>,
    /// Whether a worker is running, for those who wait until everything queued was handled.
    busy: watch::Sender<bool>,
}

/// Whether the caller must start a worker for what it just queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Start {
    /// No worker was running: start one.
    Worker,
    /// A worker is running and will take the item.
    Running,
}

impl<T> Coalescer<T> {
    pub(crate) fn new() -> Self {
        Coalescer {
            state: Mutex::new(State { items: VecDeque::new(), running: false }),
            busy: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        crate::util::lock(&self.state)
    }

    /// Queues `item` unless `admit` (given the items waiting) refuses it.
    pub(crate) fn push<E>(
        &self,
        item: T,
        admit: impl FnOnce(&VecDeque<T>) -> Result<(), E>,
    ) -> Result<Start, E> {
        let mut state = self.lock();
        admit(&state.items)?;
        state.items.push_back(item);
        if std::mem::replace(&mut state.running, true) {
            return Ok(Start::Running);
        }
        // Under the lock, so that a worker finishing at the same time cannot clear it after
        // this push set it.
        self.busy.send_replace(true);
        Ok(Start::Worker)
    }

    /// The next batch for the worker: items from the front while `fits` accepts them (the
    /// first item is always taken, so a single oversized item still goes through). `None`
    /// when nothing is waiting; the worker must then stop, and the next push starts a new one.
    pub(crate) fn next_batch(&self, fits: impl FnMut(&T) -> bool) -> Option<Vec<T>> {
        self.batch(fits, true)
    }

    /// As [`Coalescer::next_batch`], but `None` leaves the worker running: for a worker that
    /// still has work of its own to finish (writes in flight) before it may stop.
    pub(crate) fn more(&self, fits: impl FnMut(&T) -> bool) -> Option<Vec<T>> {
        self.batch(fits, false)
    }

    fn batch(&self, mut fits: impl FnMut(&T) -> bool, stop: bool) -> Option<Vec<T>> {
        let mut state = self.lock();
        if state.items.is_empty() {
            if stop {
                state.running = false;
                self.busy.send_replace(false);
            }
            return None;
        }
        let mut taken = 0;
        for item in &state.items {
            if !fits(item) && taken > 0 {
                break;
            }
            taken += 1;
        }
        if taken == state.items.len() {
            // Everything fits (the common case): the whole buffer is handed over instead of
            // moving the items one by one into a vector grown as it goes, and the next batch
            // starts with room for as many.
            let next = VecDeque::with_capacity(taken);
            return Some(Vec::from(std::mem::replace(&mut state.items, next)));
        }
        Some(state.items.drain(..taken).collect())
    }

    /// Waits until every item queued so far was taken by a worker and the worker stopped.
    pub(crate) async fn drained(&self) {
        let mut busy = self.busy.subscribe();
        let _ = busy.wait_for(|busy| !*busy).await;
    }

    #[cfg(test)]
    /// How many items wait.
    pub(crate) fn waiting(&self) -> usize {
        self.lock().items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_push_starts_a_worker_and_later_ones_join_it() {
        let c = Coalescer::new();
        assert_eq!(c.push(1, |_| Ok::<_, ()>(())), Ok(Start::Worker));
        assert_eq!(c.push(2, |_| Ok::<_, ()>(())), Ok(Start::Running));
        assert_eq!(c.next_batch(|_| true), Some(vec![1, 2]));
        assert_eq!(c.more(|_| true), None);
        assert_eq!(c.push(3, |_| Ok::<_, ()>(())), Ok(Start::Running), "still running");
        assert_eq!(c.more(|_| true), Some(vec![3]));
        assert_eq!(c.next_batch(|_| true), None, "drained: the worker stops");
        assert_eq!(c.push(4, |_| Ok::<_, ()>(())), Ok(Start::Worker), "a new worker");
    }

    #[test]
    fn batches_follow_the_limit_but_always_take_one_item() {
        let c = Coalescer::new();
        for n in [5, 5, 20, 1] {
            let _ = c.push(n, |_| Ok::<_, ()>(()));
        }
        let mut budget = 0;
        let mut under_12 = |n: &i32| {
            budget += n;
            budget <= 12
        };
        assert_eq!(c.next_batch(&mut under_12), Some(vec![5, 5]));
        let mut budget = 0;
        let mut under_12 = |n: &i32| {
            budget += n;
            budget <= 12
        };
        assert_eq!(c.next_batch(&mut under_12), Some(vec![20]), "oversized alone");
        assert_eq!(c.next_batch(|_| true), Some(vec![1]));
    }

    #[test]
    fn admission_sees_what_waits_and_may_refuse() {
        let c = Coalescer::new();
        let full = |items: &VecDeque<i32>| if items.len() >= 2 { Err("full") } else { Ok(()) };
        assert!(c.push(1, full).is_ok());
        assert!(c.push(2, full).is_ok());
        assert_eq!(c.push(3, full), Err("full"));
        assert_eq!(c.waiting(), 2);
    }

    #[tokio::test]
    async fn drained_waits_for_the_worker_to_stop() {
        let c = std::sync::Arc::new(Coalescer::new());
        c.drained().await;
        let _ = c.push(1, |_| Ok::<_, ()>(()));
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(c.next_batch(|_| true), Some(vec![1]));
        assert_eq!(c.next_batch(|_| true), None);
        waiter.await.unwrap();
    }
}
