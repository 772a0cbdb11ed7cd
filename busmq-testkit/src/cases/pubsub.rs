//! Pub/sub cases (SPEC P1).

use crate::backend::Backend;
use crate::support::{bus, drain_quiet, take, unique};

/// P1 (study 7.2 #27): every live subscriber, on this bus and on another, receives every
/// message published after it subscribed, in order; a dropped subscription receives nothing.
pub async fn pubsub_delivers_to_every_live_subscriber(backend: &dyn Backend) {
    let topic = unique("topic");
    let (a, b) = (bus(backend).await, bus(backend).await);
    let mut first = a.pubsub(&topic).unwrap().subscribe::<String>().await.unwrap();
    let mut second = a.pubsub(&topic).unwrap().subscribe::<String>().await.unwrap();
    let mut remote = b.pubsub(&topic).unwrap().subscribe::<String>().await.unwrap();
    let publisher = b.pubsub(&topic).unwrap();
    publisher.publish(&"hello").await.unwrap();
    publisher.publish(&"world").await.unwrap();
    for subscription in [&mut first, &mut second, &mut remote] {
        let got: Vec<String> =
            take(subscription, 2, "both messages").await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, ["hello", "world"]);
    }
    drop(second);
    publisher.publish(&"again").await.unwrap();
    assert_eq!(take(&mut first, 1, "again").await.pop().unwrap().unwrap(), "again");
    assert_eq!(take(&mut remote, 1, "again").await.pop().unwrap().unwrap(), "again");
    assert!(drain_quiet(&mut first).await.is_empty(), "no duplicates");
}

/// P1: messages are not stored: a subscriber does not receive what was published before it
/// subscribed.
pub async fn pubsub_does_not_store_messages(backend: &dyn Backend) {
    let topic = unique("volatile");
    let b = bus(backend).await;
    let publisher = b.pubsub(&topic).unwrap();
    publisher.publish(&"before").await.unwrap();
    let mut late = publisher.subscribe::<String>().await.unwrap();
    publisher.publish(&"after").await.unwrap();
    assert_eq!(take(&mut late, 1, "after").await.pop().unwrap().unwrap(), "after");
    assert!(drain_quiet(&mut late).await.is_empty());
}
