//! Helpers shared by the memory-only tests: names, specs, connected stores and payload views.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use busmq_core::store::{Entry, NewEntry, PushBatch, QueueSpec, Session, TakeMode};
use busmq_core::{QueueName, Result, Store, TopicName};
use busmq_memory::{Memory, MemoryStore};
use std::time::Duration;

pub(crate) const SEC: Duration = Duration::from_secs(1);
pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const AMO: TakeMode = TakeMode::AtMostOnce;

pub(crate) fn q(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

pub(crate) fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

pub(crate) fn spec() -> QueueSpec {
    QueueSpec::default()
}

pub(crate) fn spec_ttl(ttl: Duration) -> QueueSpec {
    QueueSpec { ttl, ..QueueSpec::default() }
}

pub(crate) fn reliable(visibility: Duration, max_deliveries: u32) -> TakeMode {
    TakeMode::Reliable { visibility, max_deliveries }
}

pub(crate) async fn connected(memory: &Memory) -> MemoryStore {
    let store = memory.store();
    store.connect().await.unwrap();
    store
}

pub(crate) async fn store() -> MemoryStore {
    connected(&Memory::new()).await
}

pub(crate) fn entries(payloads: &[&str]) -> Vec<NewEntry> {
    payloads.iter().map(|p| NewEntry::new(p.to_string())).collect()
}

pub(crate) fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect()
}

/// Pushes `payloads` as one batch of `generation`.
pub(crate) async fn push(
    store: &MemoryStore,
    queue: &QueueName,
    generation: u64,
    spec: &QueueSpec,
    payloads: &[&str],
) -> Result<u64> {
    store.push(queue, &PushBatch::new(generation, spec, &entries(payloads))).await
}

/// Attaches `queue` with `spec` and pushes `payloads` to it; returns the generation.
pub(crate) async fn filled(
    store: &MemoryStore,
    queue: &QueueName,
    spec: &QueueSpec,
    payloads: &[&str],
) -> u64 {
    let generation = store.attach(queue, spec).await.unwrap().generation;
    if !payloads.is_empty() {
        push(store, queue, generation, spec, payloads).await.unwrap();
    }
    generation
}
