//! Reliable consumers of one queue on one bus take in turn: a push that wakes all of them costs
//! one take when it leaves the queue drained, and a backlog is still shared out. Takes are
//! counted by [`crate::faults::FaultyStore`] around the backend's real store.

use crate::backend::Backend;
use crate::support::{bus, eventually, faulty_bus, unique, within};
use busmq_core::{Bus, ConsumeOptions, Delivery, ReliableOptions};
use futures::StreamExt;
use std::collections::BTreeSet;
use tokio::sync::mpsc;

const CONSUMERS: usize = 4;

/// Four reliable consumers of one queue on one bus, each on a handle of its own, idle; their
/// deliveries arrive on the returned channel as (consumer, delivery), but consumer 0 stops
/// reading after `first` (a busy consumer: its buffer fills up).
async fn idle_consumers(
    backend: &dyn Backend,
    prefetch: u32,
    first: usize,
) -> (Bus, String, mpsc::UnboundedReceiver<(usize, Delivery<String>)>, crate::faults::Faults) {
    let (b, faults) = faulty_bus(backend).await;
    let name = unique("turns");
    let (tx, rx) = mpsc::unbounded_channel();
    for n in 0..CONSUMERS {
        let q = b.queue(&name).unwrap();
        q.attach().await.unwrap();
        let options = ConsumeOptions::new().reliable(ReliableOptions::default()).prefetch(prefetch);
        let mut consumer = q.consume_with::<String>(options).await.unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _handle = q;
            let limit = if n == 0 { first } else { usize::MAX };
            for _ in 0..limit {
                let Some(delivery) = consumer.next().await else { return };
                if tx.send((n, delivery.unwrap())).is_err() {
                    return;
                }
            }
            tx.closed().await;
        });
    }
    // Each consumer's first take found the queue empty: all of them now wait for a notice.
    eventually("the first takes", || async { faults.answered_takes() >= CONSUMERS as u64 }).await;
    (b, name, rx, faults)
}

/// Q13 (issue 14): a push that four idle reliable consumers of one bus are told about is taken
/// once, not once per consumer, when that take finds all of it (the others would find nothing).
pub async fn reliable_consumers_of_one_bus_take_once_per_notice(backend: &dyn Backend) {
    let (_bus, name, mut rx, faults) = idle_consumers(backend, 32, usize::MAX).await;
    let producer = bus(backend).await.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let mut held = Vec::new();
    // A heartbeat (every few seconds) makes every consumer look at the store whatever the
    // notices say; a round it falls into proves nothing and is run again.
    for round in 0..5 {
        let (beats, takes) = (faults.calls("consumers"), faults.calls("take"));
        producer.push_all((0..10).map(|i| format!("{round}.{i}"))).await.unwrap();
        for _ in 0..10 {
            held.push(within("a delivery", rx.recv()).await.unwrap());
        }
        if faults.calls("consumers") != beats {
            continue;
        }
        assert_eq!(
            faults.calls("take") - takes,
            1,
            "one push of 10 to {CONSUMERS} idle consumers (prefetch 32) must cost one take"
        );
        for (_, delivery) in held {
            delivery.ack().await.unwrap();
        }
        return;
    }
    panic!("every round met a heartbeat");
}

/// Q13: consumers of one bus that take in turn still share a backlog: while one sits on what
/// it took (its buffer full), the others get the rest, each message once.
pub async fn reliable_consumers_of_one_bus_share_a_backlog(backend: &dyn Backend) {
    const N: usize = 40;
    const PREFETCH: usize = 4;
    let (_bus, name, mut rx, _faults) = idle_consumers(backend, PREFETCH as u32, 1).await;
    let producer = bus(backend).await.queue(&name).unwrap();
    producer.attach().await.unwrap();
    producer.push_all((0..N).map(|i| i.to_string())).await.unwrap();
    // Consumer 0 reads one and then sits on up to PREFETCH more in its buffer: all the others
    // arrive only if the other consumers take on while it is busy.
    let mut held = Vec::new();
    let mut bodies = BTreeSet::new();
    let mut from_others = 0;
    while held.len() < N - PREFETCH {
        let (n, delivery) = within("a delivery", rx.recv()).await.unwrap();
        assert!(bodies.insert(delivery.body().clone()), "delivered twice: {}", delivery.body());
        from_others += usize::from(n != 0);
        held.push(delivery);
    }
    assert!(from_others >= N - PREFETCH - 1, "{from_others} went to the idle consumers");
    for delivery in held {
        delivery.ack().await.unwrap();
    }
}

/// Q13 (issue 14): a take stuck on its server (a failover, a silent connection) holds the turn
/// of one bus's reliable consumers for a moment only: the others take out of turn, and a push
/// is delivered while that take is still stuck.
pub async fn reliable_consumers_of_one_bus_outlast_a_stuck_take(backend: &dyn Backend) {
    let (_bus, name, mut rx, faults) = idle_consumers(backend, 32, usize::MAX).await;
    let producer = bus(backend).await.queue(&name).unwrap();
    producer.attach().await.unwrap();
    // The next take (whichever consumer the notice wakes first) waits until healed.
    faults.stall_next_takes(1);
    producer.push(&"stuck?".to_string()).await.unwrap();
    let (_, delivery) = within("a delivery while one take is stuck", rx.recv()).await.unwrap();
    assert_eq!(delivery.body(), "stuck?");
    delivery.ack().await.unwrap();
    faults.heal();
}
