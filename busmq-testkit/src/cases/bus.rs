//! Bus cases: connection state and its events (SPEC B1-B4).

use crate::backend::Backend;
use crate::support::{DEADLINE, bus, drain_quiet, next, within};
use busmq_core::{Bus, BusEvent, BusState, ConsumeOptions, Error};
use futures::StreamExt;

fn states(events: &[BusEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            BusEvent::Online => "online".to_string(),
            BusEvent::Degraded { down } => format!("degraded {down:?}"),
            BusEvent::Offline => "offline".to_string(),
            BusEvent::Error(e) => format!("error: {e}"),
            other => format!("{other:?}"),
        })
        .collect()
}

async fn unconnected(backend: &dyn Backend) -> Bus {
    Bus::builder_from_handle(backend.store().await).build().expect("bus")
}

/// B2, B3 (seed "online/offline", study 7.2 #1): `Online` after connecting, `Offline` after
/// disconnecting, nothing else, and `is_online` follows.
pub async fn bus_connects_online_and_disconnects_offline(backend: &dyn Backend) {
    let bus = unconnected(backend).await;
    let mut events = bus.events();
    assert_eq!(bus.state(), BusState::Offline);
    assert!(!bus.is_online());
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("online");
    assert!(bus.is_online());
    assert_eq!(bus.state(), BusState::Online);
    bus.disconnect().await.expect("disconnect");
    assert!(!bus.is_online());
    let mut seen = vec![next(&mut events, "online").await, next(&mut events, "offline").await];
    seen.extend(drain_quiet(&mut events).await);
    assert_eq!(states(&seen), ["online", "offline"]);
}

/// B3 (seed "connect twice", study 7.2 #2): a second connect is `AlreadyConnected`; exactly one
/// `Online` and one `Offline` are reported.
pub async fn second_connect_is_already_connected(backend: &dyn Backend) {
    let bus = unconnected(backend).await;
    let mut events = bus.events();
    bus.connect().await.expect("connect");
    let second = bus.connect().await;
    assert!(matches!(second, Err(Error::AlreadyConnected)), "{second:?}");
    assert_eq!(second.unwrap_err().to_string(), "the bus is already connected");
    bus.wait_online(DEADLINE).await.expect("online");
    bus.disconnect().await.expect("disconnect");
    let mut seen = vec![next(&mut events, "online").await, next(&mut events, "offline").await];
    seen.extend(drain_quiet(&mut events).await);
    assert_eq!(states(&seen), ["online", "offline"]);
}

/// B3: disconnecting is idempotent (also before any connect) and ends with one `Offline`.
pub async fn disconnect_is_idempotent_and_ends_offline(backend: &dyn Backend) {
    let bus = unconnected(backend).await;
    bus.disconnect().await.expect("disconnect before connect is a no-op");
    let mut events = bus.events();
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("online");
    bus.disconnect().await.expect("first disconnect");
    bus.disconnect().await.expect("second disconnect");
    let mut seen = vec![next(&mut events, "online").await, next(&mut events, "offline").await];
    seen.extend(drain_quiet(&mut events).await);
    assert_eq!(states(&seen), ["online", "offline"]);
    assert_eq!(bus.state(), BusState::Offline);
}

/// B3 (study 7.2 #1, 3.x): a bus connects again after a disconnect and works.
pub async fn bus_can_connect_again_after_disconnect(backend: &dyn Backend) {
    let bus = unconnected(backend).await;
    let mut events = bus.events();
    for round in 0..2 {
        bus.connect().await.expect("connect");
        bus.wait_online(DEADLINE).await.expect("online");
        let q = bus.queue(crate::support::unique("again")).expect("name");
        assert!(!q.attach().await.expect("attach"), "round {round}: a fresh queue");
        q.push(&round).await.expect("push");
        assert_eq!(q.count().await.expect("count"), 1);
        bus.disconnect().await.expect("disconnect");
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next(&mut events, "state").await);
    }
    seen.extend(drain_quiet(&mut events).await);
    assert_eq!(states(&seen), ["online", "offline", "online", "offline"]);
}

/// B4: operations on a bus that is not connected fail with the typed `NotConnected`.
pub async fn operations_need_a_connected_bus(backend: &dyn Backend) {
    let bus = unconnected(backend).await;
    let q = bus.queue("never-connected").expect("name");
    assert!(matches!(q.attach().await, Err(Error::NotConnected)));
    assert!(matches!(q.count().await, Err(Error::NotConnected)));
    assert!(matches!(q.close().await, Err(Error::NotConnected)));
    let topic = bus.pubsub("never").expect("topic");
    assert!(matches!(topic.publish(&1).await, Err(Error::NotConnected)));
    let channel = bus.channel("never").expect("channel");
    assert!(matches!(channel.connect::<String>().await, Err(Error::NotConnected)));
    bus.connect().await.expect("connect");
    bus.disconnect().await.expect("disconnect");
    assert!(matches!(q.exists().await, Err(Error::NotConnected)));
}

/// B3, Q12: disconnecting stops consumers, returns what they had taken to the queue and
/// detaches every attached queue.
pub async fn disconnect_detaches_and_returns_undelivered_messages(backend: &dyn Backend) {
    let name = crate::support::unique("disconnect");
    let a = bus(backend).await;
    let q = a.queue(&name).expect("name");
    q.attach().await.expect("attach");
    let ids = q.push_all(0..10).await.expect("push");
    let mut events = q.events();
    let mut consumer =
        q.consume_with::<i32>(ConsumeOptions::new().prefetch(10)).await.expect("consume");
    let first = next(&mut consumer, "first").await.expect("delivery");
    assert_eq!((first.id(), *first.body()), (ids[0], 0));
    a.disconnect().await.expect("disconnect");
    within("consumer end", async { while consumer.next().await.is_some() {} }).await;
    let mut kinds = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(crate::support::QUIET, events.next()).await {
        kinds.push(format!("{event:?}"));
    }
    assert!(kinds.iter().any(|k| k == "Detached"), "events: {kinds:?}");
    let b = bus(backend).await;
    let q = b.queue(&name).expect("name");
    assert!(q.attach().await.expect("attach"), "the queue outlives the disconnect (ttl)");
    assert_eq!(q.count().await.expect("count"), 9, "undelivered messages went back");
    let mut consumer = q.consume::<i32>().await.expect("consume");
    let next_one = next(&mut consumer, "second").await.expect("delivery");
    assert_eq!(*next_one.body(), 1, "order is kept");
    b.disconnect().await.expect("disconnect");
}
