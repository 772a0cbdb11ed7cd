//! Helpers shared by the conformance cases: connected buses, unique names, bounded waits and
//! event collection. Waits have generous deadlines and never assert on speed.

use crate::backend::Backend;
use crate::faults::{Faults, FaultyStore};
use busmq_core::{Bus, Codec};
use futures::{Stream, StreamExt};
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest any single expected thing may take before a case fails.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// How long a case watches for something that must *not* happen (an extra event).
pub const QUIET: Duration = Duration::from_millis(300);

/// A name no other case or run uses, so that cases isolate themselves without flushing.
pub fn unique(label: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{:08x}{seq}", busmq_core::support::random_u64() as u32)
}

/// A new, connected bus over a new store of `backend`.
pub async fn bus(backend: &dyn Backend) -> Bus {
    bus_with(backend, Codec::Json).await
}

/// A new, connected bus with a given codec.
pub async fn bus_with(backend: &dyn Backend, codec: Codec) -> Bus {
    let bus = Bus::builder_from_handle(backend.store().await).codec(codec).build().expect("bus");
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("bus online");
    bus
}

/// A new, connected bus over a new store of `backend` wrapped in a [`FaultyStore`], and the
/// switch of its faults.
pub async fn faulty_bus(backend: &dyn Backend) -> (Bus, Faults) {
    let (store, faults) = FaultyStore::wrap(backend.store().await);
    let bus = Bus::new(store);
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("bus online");
    (bus, faults)
}

/// Awaits `future`, failing the case with `what` if it takes longer than [`DEADLINE`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// The next item of a stream, which must come within [`DEADLINE`].
pub async fn next<S: Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    within(what, stream.next())
        .await
        .unwrap_or_else(|| panic!("stream ended while waiting for {what}"))
}

/// Takes `n` items.
pub async fn take<S: Stream + Unpin>(stream: &mut S, n: usize, what: &str) -> Vec<S::Item> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(next(stream, &format!("{what} (item {} of {n})", i + 1)).await);
    }
    out
}

/// Whatever the stream yields within [`QUIET`] (used to check that nothing more happens).
pub async fn drain_quiet<S: Stream + Unpin>(stream: &mut S) -> Vec<S::Item> {
    let mut out = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(QUIET, stream.next()).await {
        out.push(item);
    }
    out
}

/// Whether the stream ends within [`DEADLINE`] (yielding nothing more).
pub async fn ends<S: Stream + Unpin>(stream: &mut S, what: &str) -> Vec<S::Item>
where
    S::Item: Debug,
{
    let mut rest = Vec::new();
    within(what, async {
        while let Some(item) = stream.next().await {
            rest.push(item);
        }
    })
    .await;
    rest
}

/// Polls `check` until it returns true, failing with `what` after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        loop {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}
