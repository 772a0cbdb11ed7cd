//! Helpers shared by the store tests: names, specs, connected stores and payload checks.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use busmq_core::store::{ClientId, ConsumerId, Entry, NewEntry, QueueSpec, TakeMode};
use busmq_core::{QueueName, Store, TopicName};
use busmq_memory::{Memory, MemoryStore};
use std::time::Duration;

pub(crate) const SEC: Duration = Duration::from_secs(1);

pub(crate) fn q(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

pub(crate) fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

pub(crate) fn spec_ttl(ttl: Duration) -> QueueSpec {
    QueueSpec { ttl, ..QueueSpec::default() }
}

pub(crate) fn spec() -> QueueSpec {
    QueueSpec::default()
}

pub(crate) async fn connected(memory: &Memory) -> MemoryStore {
    let store = memory.store();
    store.connect().await.unwrap();
    store
}

pub(crate) async fn store() -> MemoryStore {
    connected(&Memory::new()).await
}

pub(crate) fn consumer() -> ConsumerId {
    ConsumerId::new(&ClientId::new("test"), 1)
}

pub(crate) fn entries(payloads: &[&str]) -> Vec<NewEntry> {
    payloads.iter().map(|p| NewEntry::new(p.to_string())).collect()
}

pub(crate) fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect()
}

pub(crate) fn ids(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.id).collect()
}

pub(crate) fn deliveries(entries: &[Entry]) -> Vec<u32> {
    entries.iter().map(|e| e.deliveries).collect()
}

pub(crate) fn reliable(visibility: Duration, max_deliveries: u32) -> TakeMode {
    TakeMode::Reliable { visibility, max_deliveries }
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
        store.push(queue, generation, spec, &entries(payloads)).await.unwrap();
    }
    generation
}
