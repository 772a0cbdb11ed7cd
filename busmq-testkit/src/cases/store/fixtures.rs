//! What the Store contract cases share: connected stores, unique names, specs and batches, and
//! plain views of taken entries, so that each case reads as the rule it checks.

use crate::backend::Backend;
use crate::support::{unique, within};
use busmq_core::store::{
    Entry, NewEntry, Notice, PushBatch, QueueSpec, Settle, Settlement, StoreState, TakeMode,
};
use busmq_core::{QueueName, Result, Store, StoreHandle, TopicName};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::time::Duration;

pub(crate) const SEC: Duration = Duration::from_secs(1);

/// An at-most-once take.
pub(crate) const AMO: TakeMode = TakeMode::AtMostOnce;

/// A new store of `backend`, connected and online.
pub(crate) async fn connected(backend: &dyn Backend) -> StoreHandle {
    let store = backend.store().await;
    store.connect().await.expect("connect");
    online(&*store).await;
    store
}

/// Waits until `store` reports `Online` (a connect may return before every instance answers).
pub(crate) async fn online(store: &dyn Store) {
    let mut state = store.state();
    within("the store to be online", state.wait_for(|s| *s == StoreState::Online))
        .await
        .expect("the store's state is watched while it lives");
}

/// A queue name no other case uses.
pub(crate) fn queue(label: &str) -> QueueName {
    QueueName::new(unique(label)).expect("a valid queue name")
}

/// A topic name no other case uses.
pub(crate) fn topic(label: &str) -> TopicName {
    TopicName::new(unique(label)).expect("a valid topic name")
}

pub(crate) fn spec() -> QueueSpec {
    QueueSpec::default()
}

pub(crate) fn spec_ttl(ttl: Duration) -> QueueSpec {
    QueueSpec { ttl, ..QueueSpec::default() }
}

pub(crate) fn maxsize(max: u64) -> QueueSpec {
    QueueSpec { maxsize: Some(max), ..QueueSpec::default() }
}

pub(crate) fn reliable(visibility: Duration, max_deliveries: u32) -> TakeMode {
    TakeMode::Reliable { visibility, max_deliveries }
}

pub(crate) fn entries(payloads: &[&str]) -> Vec<NewEntry> {
    payloads.iter().map(|p| NewEntry::new(p.to_string())).collect()
}

/// `m<from>` .. `m<to - 1>`, for cases that push many.
pub(crate) fn numbered(range: std::ops::Range<u32>) -> Vec<NewEntry> {
    range.map(|i| NewEntry::new(format!("m{i}"))).collect()
}

pub(crate) fn names(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

/// Pushes `batch` as one batch of generation `generation`.
pub(crate) async fn try_push(
    store: &dyn Store,
    queue: &QueueName,
    generation: u64,
    spec: &QueueSpec,
    batch: &[NewEntry],
) -> Result<u64> {
    store.push(queue, &PushBatch::new(generation, spec, batch)).await
}

/// Pushes `payloads` as one batch; returns the first id.
pub(crate) async fn push(
    store: &dyn Store,
    queue: &QueueName,
    generation: u64,
    spec: &QueueSpec,
    payloads: &[&str],
) -> u64 {
    try_push(store, queue, generation, spec, &entries(payloads)).await.expect("push")
}

/// Attaches `queue` with `spec` and pushes `payloads` to it; returns the generation.
pub(crate) async fn filled(
    store: &dyn Store,
    queue: &QueueName,
    spec: &QueueSpec,
    payloads: &[&str],
) -> u64 {
    let generation = store.attach(queue, spec).await.expect("attach").generation;
    if !payloads.is_empty() {
        push(store, queue, generation, spec, payloads).await;
    }
    generation
}

pub(crate) fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect()
}

pub(crate) fn ids(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.id).collect()
}

pub(crate) fn deliveries(entries: &[Entry]) -> Vec<u32> {
    entries.iter().map(|e| e.deliveries).collect()
}

/// The same settlement of each entry, with the receipt its take gave.
pub(crate) fn settle_all(entries: &[Entry], action: Settlement) -> Vec<Settle> {
    entries.iter().map(|e| Settle::of(e, action)).collect()
}

/// The next notice, which must come within the suite's deadline.
pub(crate) async fn notice(watch: &mut BoxStream<'static, Notice>, what: &str) -> Notice {
    within(what, watch.next()).await.unwrap_or_else(|| panic!("the watch ended: {what}"))
}

/// What a consumer does before it waits for a notice: a read that comes back short (it is at
/// the end), which asks the store to tell pushes (see `Store::watch`); removes nothing.
pub(crate) async fn about_to_wait(store: &dyn Store, queue: &QueueName) {
    let _ = store.read(queue, busmq_core::store::Position::Start, 100_000).await;
}

/// Reads notices until `wanted` (others may come first: notices are hints, not a log).
pub(crate) async fn notice_of(watch: &mut BoxStream<'static, Notice>, wanted: Notice) {
    let what = format!("a {wanted:?} notice");
    within(&what, async { while notice(watch, &what).await != wanted {} }).await;
}

/// Whether `queue` exists now.
pub(crate) async fn exists(store: &dyn Store, queue: &QueueName) -> bool {
    store.stat(queue).await.expect("stat").exists
}

/// Waits (polling) until `queue` no longer exists, for cases that let a ttl pass.
pub(crate) async fn gone(store: &dyn Store, queue: &QueueName) {
    crate::support::eventually("the queue to expire", || async { !exists(store, queue).await })
        .await;
}
