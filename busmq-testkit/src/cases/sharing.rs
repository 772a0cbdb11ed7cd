//! Many reliable consumers sharing one queue, settling at random: nothing lost, every extra
//! delivery explained (SPEC Q13, fix of node busmq #40).

use super::reliable::reliable_with;
use crate::backend::Backend;
use crate::support::{bus, eventually, unique, within};
use busmq_core::{Queue, ReliableOptions};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Q13 (fix of node busmq #40): consumers share a queue safely. Each consumer acks, releases or
/// drops at random; in the end every message is acknowledged exactly once and every extra
/// delivery is explained by a release or a drop.
async fn shared_queue_random_settlements(backend: &dyn Backend, consumers: usize) {
    const N: usize = 200;
    let name = unique("shared");
    let b = bus(backend).await;
    let producer = b.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let ids = producer.push_all((0..N).map(|i| i.to_string())).await.unwrap();
    #[derive(Default)]
    struct Log {
        acked: BTreeMap<u64, usize>,
        deliveries: BTreeMap<u64, u32>,
        given_back: BTreeMap<u64, u32>,
    }
    let log = Arc::new(Mutex::new(Log::default()));
    let options = ReliableOptions { max_deliveries: 1000, ..ReliableOptions::default() };
    let mut buses = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..consumers {
        let wb = bus(backend).await;
        let q: Queue = wb.queue(&name).unwrap();
        q.attach().await.unwrap();
        let mut consumer =
            q.consume_with::<String>(reliable_with(options.clone()).prefetch(7)).await.unwrap();
        let log = log.clone();
        workers.push(tokio::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let d = delivery.unwrap();
                let id = d.id();
                log.lock().unwrap().deliveries.insert(id, d.deliveries());
                match busmq_core::support::random_u64() % 10 {
                    0 => {
                        log.lock()
                            .unwrap()
                            .given_back
                            .entry(id)
                            .and_modify(|n| *n += 1)
                            .or_insert(1);
                        d.nack().await.unwrap();
                    }
                    1 => {
                        log.lock()
                            .unwrap()
                            .given_back
                            .entry(id)
                            .and_modify(|n| *n += 1)
                            .or_insert(1);
                        drop(d);
                    }
                    _ => {
                        d.ack().await.unwrap();
                        *log.lock().unwrap().acked.entry(id).or_default() += 1;
                    }
                }
            }
            drop(q);
        }));
        buses.push(wb);
    }
    eventually("every message to be acknowledged", || {
        let log = log.clone();
        async move { log.lock().unwrap().acked.len() == N }
    })
    .await;
    for b in &buses {
        b.disconnect().await.unwrap();
    }
    for worker in workers {
        within("worker end", worker).await.unwrap();
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    let acked: BTreeSet<u64> = log.acked.keys().copied().collect();
    assert_eq!(acked, ids.iter().copied().collect(), "nothing lost");
    assert!(log.acked.values().all(|n| *n == 1), "acknowledged exactly once");
    for id in &ids {
        let last = log.deliveries[id];
        let given_back = log.given_back.get(id).copied().unwrap_or(0);
        assert_eq!(
            last,
            given_back + 1,
            "message {id}: every redelivery follows a release or drop"
        );
    }
    assert_eq!(producer.stat().await.unwrap().pending, 0);
    assert_eq!(producer.count().await.unwrap(), 0);
}

/// Q13: two reliable consumers with random acks, releases and drops: no loss, duplicates only
/// after a release.
pub async fn reliable_two_consumers_share_a_queue_without_loss(backend: &dyn Backend) {
    shared_queue_random_settlements(backend, 2).await;
}

/// Q13: the same with four consumers.
pub async fn reliable_four_consumers_share_a_queue_without_loss(backend: &dyn Backend) {
    shared_queue_random_settlements(backend, 4).await;
}
