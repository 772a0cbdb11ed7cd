//! Small helpers shared by the scenarios: error context, unique names, medians, progress
//! counters for timeout messages, and tasks that are aborted when a measurement is abandoned.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long one measurement may take before it counts as hung.
pub(crate) const HUNG: Duration = Duration::from_secs(90);

pub(crate) trait Ctx<T> {
    /// Turns any displayable error into the bench's `String` error, saying what failed.
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// A name no earlier run or scenario used (queues, channels and raw keys).
pub(crate) fn unique(prefix: &str) -> String {
    format!("bench-{prefix}-{:012x}", busmq_core::support::random_u64() >> 16)
}

pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Messages sent and received so far, so that a measurement that times out says how far it got.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Progress {
    pub(crate) fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    pub(crate) fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn describe(&self, of: u64) -> String {
        format!(
            "{} of {of} sent, {} received",
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed)
        )
    }
}

/// Runs `work` under a deadline; a timeout names what hung and how far it got.
pub(crate) async fn deadline<T>(
    limit: Duration,
    what: &str,
    progress: &Progress,
    of: u64,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("{what} hung: not done after {limit:?} ({})", progress.describe(of))),
    }
}

/// Runs the future `make` returns on a current-thread runtime of its own (what a
/// `#[tokio::main(flavor = "current_thread")]` program runs on): every task the measurement
/// spawns (bus keepers, connection drivers) lives on that one thread. This worker of the bench's
/// runtime waits meanwhile; the new thread inherits the client's CPU pinning.
pub(crate) fn on_current_thread<'a, T, Fut>(
    make: impl FnOnce() -> Fut + Send + 'a,
) -> Result<T, String>
where
    Fut: Future<Output = Result<T, String>>,
    T: Send + 'a,
{
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("current-thread runtime: {e}"))?;
                runtime.block_on(make())
            });
            thread.join().map_err(|_| "the current-thread measurement panicked".to_string())?
        })
    })
}

/// The tasks of one measurement. Dropping them aborts them, so that a measurement that timed
/// out or failed leaves nothing running into the next one.
#[derive(Debug)]
pub(crate) struct Tasks<T> {
    handles: Vec<JoinHandle<T>>,
}

impl<T: Send + 'static> Tasks<T> {
    pub(crate) fn new() -> Self {
        Tasks { handles: Vec::new() }
    }

    pub(crate) fn spawn(&mut self, work: impl Future<Output = T> + Send + 'static) {
        self.handles.push(tokio::spawn(work));
    }

    /// Waits for every task in order; the ones not yet awaited stay owned (and are aborted) if
    /// this is abandoned.
    pub(crate) async fn join(mut self) -> Result<Vec<T>, String> {
        let mut out = Vec::with_capacity(self.handles.len());
        while let Some(handle) = self.handles.first_mut() {
            let value = handle.await.map_err(|e| format!("a bench task failed: {e}"))?;
            self.handles.remove(0);
            out.push(value);
        }
        Ok(out)
    }
}

impl<T> Drop for Tasks<T> {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique("q"), unique("q"));
    }
}
