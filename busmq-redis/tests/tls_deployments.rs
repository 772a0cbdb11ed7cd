//! TLS for the multi-node deployments (issue 17): a Redis Cluster whose nodes talk TLS to
//! clients and to each other (`tls-cluster yes`), reached as `rediss+cluster://`, and a
//! Sentinel set whose sentinels and data nodes all speak TLS (`tls-replication yes`), reached
//! as `rediss+sentinel://`; both with mutual TLS against the test CA. Each carries a queue
//! (push, reliable consume, ack); the Sentinel set also through a failover.

mod common;

use busmq_core::{Bus, ConsumeOptions, ReliableOptions};
use busmq_redis::RedisStoreBuilder;
use busmq_testkit::cluster::{RedisCluster, require_cli_or_skip};
use busmq_testkit::redis::require_or_skip;
use busmq_testkit::sentinel::SentinelSet;
use busmq_testkit::tls::TestCerts;
use common::DEADLINE;
use futures::StreamExt;
use std::time::Duration;

fn verified(url: String) -> RedisStoreBuilder {
    let certs = TestCerts::shared();
    common::builder([url])
        .tls_ca_pem(certs.ca_pem.clone())
        .tls_client_cert(certs.client.cert_pem.clone(), certs.client.key_pem.clone())
}

/// Pushes `values` and consumes them reliably, acknowledging each, over `bus`.
async fn round_trip(bus: &Bus, label: &str, values: std::ops::Range<u32>) {
    let queue = bus.queue(common::queue(label).as_str()).expect("queue");
    queue.attach().await.expect("attach");
    for v in values.clone() {
        queue.push(&v).await.expect("push");
    }
    let options = ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    let mut got = Vec::new();
    while got.len() < values.len() {
        let next = tokio::time::timeout(DEADLINE, consumer.next()).await.expect("in time");
        let delivery = next.expect("a delivery").expect("decodes");
        got.push(*delivery.body());
        delivery.ack().await.expect("ack");
    }
    got.sort_unstable();
    assert_eq!(got, values.collect::<Vec<_>>());
    drop(consumer);
    queue.detach().await.expect("detach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_tls_carries_queues() {
    if require_or_skip("tls_cluster").is_none() || !require_cli_or_skip("tls_cluster") {
        return;
    }
    let cluster = RedisCluster::builder().tls(true).start().await.expect("the cluster starts");
    let url = cluster.url();
    assert!(url.starts_with("rediss+cluster://"), "{url}");
    let bus = Bus::new(verified(url).build().expect("valid options"));
    bus.connect().await.expect("connect over TLS");
    bus.wait_online(DEADLINE).await.expect("online");
    // Several queues, so that more than one master (slot) is used.
    for n in 0..3 {
        round_trip(&bus, &format!("tls-cluster-{n}"), 0..20).await;
    }
    bus.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_set_over_tls_carries_queues_through_a_failover() {
    if require_or_skip("tls_sentinel").is_none() {
        return;
    }
    let set = SentinelSet::builder().tls(true).start().await.expect("the sentinel set starts");
    let url = set.url();
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    let store = verified(url)
        .response_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .expect("valid options");
    let bus = Bus::new(store);
    bus.connect().await.expect("connect over TLS");
    bus.wait_online(DEADLINE).await.expect("online");
    round_trip(&bus, "tls-sentinel", 0..20).await;

    // A graceful failover: the store follows the sentinels (over TLS) to the new master.
    let old = set.failover().await.expect("SENTINEL FAILOVER");
    let new = set.wait_for_new_master(old).await.expect("a new master");
    assert_ne!(old, new);
    let queue = bus.queue(common::queue("tls-after-failover").as_str()).expect("queue");
    common::eventually("a push to the new master", || {
        let queue = queue.clone();
        async move {
            let attached = queue.attach().await.is_ok() || queue.is_attached();
            (attached && queue.push(&1u32).await.is_ok()).then_some(())
        }
    })
    .await;
    let options = ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    let next = tokio::time::timeout(DEADLINE, consumer.next()).await.expect("in time");
    let delivery = next.expect("a delivery").expect("decodes");
    assert_eq!(*delivery.body(), 1);
    delivery.ack().await.expect("ack");
    // The data now lives on the new master, reached on its TLS port.
    let role = set.node_command(new, &["ROLE"]).await.expect("ROLE");
    assert_eq!(role.items().first().and_then(|r| r.text()).as_deref(), Some("master"));
    drop(consumer);
    bus.disconnect().await.expect("disconnect");
}
