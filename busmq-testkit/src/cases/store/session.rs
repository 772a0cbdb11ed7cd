//! Store contract: the session side of a store, connecting, disconnecting and reporting its
//! state (SPEC B2, B3, B4).

use super::fixtures::{AMO, connected, entries, online, queue, reliable, spec, topic};
use crate::backend::Backend;
use crate::support::within;
use busmq_core::store::{
    ClientId, ConsumerId, ConsumerOp, Entry, MetadataOp, Position, PushBatch, Receipt, Settle,
    Settlement, StoreEvent, StoreState,
};
use busmq_core::{Error, Result, Store};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// The state events up to and including the next `Online` after an `Offline`, skipping
/// background error reports.
async fn states_until_back_online(events: &mut broadcast::Receiver<StoreEvent>) -> Vec<StoreState> {
    let mut seen = Vec::new();
    within("the state events of disconnect and reconnect", async {
        loop {
            match events.recv().await {
                Ok(StoreEvent::State(state)) => {
                    let done = state == StoreState::Online && seen.contains(&StoreState::Offline);
                    seen.push(state);
                    if done {
                        return;
                    }
                }
                Ok(StoreEvent::Error(_)) => {}
                Err(e) => panic!("the events ended or lagged: {e}"),
            }
        }
    })
    .await;
    seen
}

/// B2, B3: a store is `Offline` until connected; connecting again is a no-op; disconnecting is
/// idempotent and ends `Offline`; it connects again afterwards. Each real transition is one
/// state event: never the same state twice in a row, and one `Offline` for one disconnect.
pub async fn store_connect_and_disconnect_report_each_state_transition_once(backend: &dyn Backend) {
    let store = backend.store().await;
    assert!(!store.backend().is_empty());
    assert_eq!(*store.state().borrow(), StoreState::Offline, "not connected yet");
    let mut events = store.events();
    store.connect().await.expect("connect");
    online(&*store).await;
    assert_eq!(store.connect().await.expect("connect again"), StoreState::Online, "a no-op");
    assert_eq!(*store.state().borrow(), StoreState::Online);
    store.disconnect().await.expect("disconnect");
    store.disconnect().await.expect("disconnect again");
    assert_eq!(*store.state().borrow(), StoreState::Offline);
    store.connect().await.expect("connect after disconnect");
    online(&*store).await;
    let seen = states_until_back_online(&mut events).await;
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "a state repeated: {seen:?}");
    assert_ne!(
        seen.first(),
        Some(&StoreState::Offline),
        "connecting starts from Offline: {seen:?}"
    );
    let offline = seen.iter().filter(|s| **s == StoreState::Offline).count();
    assert_eq!(offline, 1, "one disconnect, one Offline: {seen:?}");
    let before = seen.iter().position(|s| *s == StoreState::Offline).unwrap_or(0);
    assert!(seen[..before].contains(&StoreState::Online), "online before: {seen:?}");
    store.disconnect().await.expect("disconnect");
}

fn not_connected<T: std::fmt::Debug>(what: &str, result: Result<T>) {
    assert!(matches!(result, Err(Error::NotConnected)), "{what}: {result:?}");
}

/// Every operation of a store that is not connected.
async fn every_operation_fails(store: &dyn Store, generation: u64) {
    let (q, t) = (queue("not-connected"), topic("not-connected"));
    let sp = spec();
    let one = entries(&["x"]);
    let taken = Entry::new(1, 1, "x");
    let settle = Settle::of(&taken, Settlement::Ack);
    let consumer = ConsumerId::new(&ClientId::new("not-connected"), 1);
    not_connected("attach", store.attach(&q, &sp).await);
    not_connected("renew", store.renew(&q, generation, &sp).await);
    not_connected("detach", store.detach(&q, generation).await);
    not_connected("close", store.close(&q, None).await);
    not_connected("push", store.push(&q, &PushBatch::new(generation, &sp, &one)).await);
    not_connected("take", store.take(&q, 1, AMO).await);
    not_connected("reliable take", store.take(&q, 1, reliable(Duration::from_secs(5), 3)).await);
    not_connected("restore", store.restore(&q, generation, std::slice::from_ref(&taken)).await);
    not_connected("settle", store.settle(&q, &[settle]).await);
    not_connected("read", store.read(&q, Position::Start, 1).await);
    not_connected("consumers", store.consumers(&q, ConsumerOp::Unregister { id: consumer }).await);
    not_connected("stat", store.stat(&q).await);
    not_connected("flush", store.flush(&q).await);
    not_connected("metadata", store.metadata(&q, MetadataOp::GetAll).await);
    not_connected("watch", store.watch(&q).await.map(drop));
    not_connected("publish", store.publish(&t, "x".into()).await);
    not_connected("subscribe", store.subscribe(&t).await.map(drop));
    if let Some(blocking) = store.blocking() {
        let (cancel, resume) = (Notify::new(), Receipt::none());
        let wait = blocking.take_wait(&q, 1, Duration::from_secs(1), &cancel, &resume);
        not_connected("take_wait", wait.await);
    }
}

/// B4: every operation before `connect` and after `disconnect` fails with `NotConnected`
/// (typed, and without waiting), while the data stays there for other clients.
pub async fn store_operations_outside_a_connection_fail_with_not_connected(backend: &dyn Backend) {
    let store = backend.store().await;
    every_operation_fails(&*store, 1).await;
    store.connect().await.expect("connect");
    online(&*store).await;
    let q = queue("kept");
    let generation = store.attach(&q, &spec()).await.expect("attach").generation;
    store.disconnect().await.expect("disconnect");
    every_operation_fails(&*store, generation).await;
    let other = connected(backend).await;
    assert!(other.stat(&q).await.expect("stat").exists, "the data outlives the connection");
}
