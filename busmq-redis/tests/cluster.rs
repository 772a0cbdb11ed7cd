//! Redis Cluster under failure and change: a master killed with SIGKILL while a producer and a
//! reliable consumer run (its replica takes over), and a live queue's slot moved to another
//! master; in both, nothing acknowledged is lost and the consumer resumes by itself. Also:
//! notices travel on shard channels, and topics survive a failover.

mod common;

use busmq_core::store::{NewEntry, PushBatch, Session, StoreState};
use busmq_core::{Bus, ConsumeOptions, Queue, ReliableOptions, Store};
use busmq_redis::RedisStore;
use busmq_testkit::cluster::{RedisCluster, require_cli_or_skip};
use busmq_testkit::redis::require_or_skip;
use busmq_testkit::sentinel::Resp;
use common::DEADLINE;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many messages each run pushes, one every [`PACE`].
const TOTAL: u32 = 300;
const PACE: Duration = Duration::from_millis(10);

async fn cluster(test: &str) -> Option<RedisCluster> {
    require_or_skip(test)?;
    if !require_cli_or_skip(test) {
        return None;
    }
    Some(RedisCluster::builder().start().await.expect("the cluster starts"))
}

/// A connected bus on the cluster; pushes wait for one replica (`WAIT 1`), so that an
/// acknowledged push survives the failover of its master.
async fn bus(cluster: &RedisCluster) -> Bus {
    let store = common::builder([cluster.url()])
        .replicas_ack(1, Duration::from_millis(1000))
        .build()
        .expect("valid options");
    let bus = Bus::new(store);
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("online");
    bus
}

async fn slot_of(cluster: &RedisCluster, name: &str) -> u16 {
    cluster.slot_of(&format!("busmq:{{{name}}}:m")).await.expect("CLUSTER KEYSLOT")
}

/// Pushes 0..TOTAL, retrying what fails retryably; returns the values whose push was
/// acknowledged (a retried push may have been applied twice, which is allowed).
fn produce(queue: Queue, pushed: Arc<Mutex<u32>>) -> tokio::task::JoinHandle<BTreeSet<u32>> {
    tokio::spawn(async move {
        let mut acked = BTreeSet::new();
        for value in 0..TOTAL {
            let started = tokio::time::Instant::now();
            loop {
                match queue.push(&value).await {
                    Ok(_) => {
                        acked.insert(value);
                        break;
                    }
                    Err(e) if e.is_retryable() && started.elapsed() < DEADLINE => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("push {value} failed for good: {e} ({e:?})"),
                }
            }
            *pushed.lock().unwrap() = value + 1;
            tokio::time::sleep(PACE).await;
        }
        acked
    })
}

/// A reliable consumer that acknowledges everything and records what it got.
async fn consume(queue: &Queue, got: Arc<Mutex<Vec<u32>>>) -> tokio::task::JoinHandle<()> {
    let options = ConsumeOptions::new().reliable(ReliableOptions::default()).prefetch(16);
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    tokio::spawn(async move {
        while let Some(next) = consumer.next().await {
            if let Ok(d) = next {
                got.lock().unwrap().push(*d.body());
                let _ = d.ack().await;
            }
        }
    })
}

async fn wait_pushed(pushed: &Mutex<u32>, n: u32) {
    common::eventually("the producer to make progress", || async {
        (*pushed.lock().unwrap() >= n).then_some(())
    })
    .await;
}

/// Waits until every acknowledged value arrived; returns how many arrived more than once.
async fn check_delivered(got: &Mutex<Vec<u32>>, acked: &BTreeSet<u32>) -> usize {
    let deadline = tokio::time::Instant::now() + DEADLINE * 2;
    loop {
        let seen: BTreeSet<u32> = got.lock().unwrap().iter().copied().collect();
        let missing: Vec<u32> = acked.difference(&seen).copied().collect();
        if missing.is_empty() {
            let total = got.lock().unwrap().len();
            return total - seen.len();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{} acknowledged messages never arrived: {missing:?}", missing.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_master_loses_nothing_acknowledged_and_the_consumer_resumes() {
    let Some(mut cluster) = cluster("killing_a_master_loses_nothing_acknowledged").await else {
        return;
    };
    let (pb, cb) = (bus(&cluster).await, bus(&cluster).await);
    let name = common::queue("failover").to_string();
    let slot = slot_of(&cluster, &name).await;
    let producer = pb.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let consumer_q = cb.queue(&name).unwrap();
    consumer_q.attach().await.unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let consumer = consume(&consumer_q, got.clone()).await;
    let pushed = Arc::new(Mutex::new(0));
    let producing = produce(producer, pushed.clone());

    wait_pushed(&pushed, TOTAL / 3).await;
    let old = cluster.kill_master_of(slot).await.expect("kill the queue's master");
    let new = cluster.wait_for_failover(old).await.expect("a replica takes over");
    assert_ne!(old, new);
    // The promoted replica has no replica of its own, so pushes that must reach one fail
    // (retryably) until the old master is back, as a replica of its successor.
    cluster.restart_node(old).await.expect("the old master rejoins as a replica");

    let acked = producing.await.expect("the producer finishes");
    assert_eq!(acked.len(), TOTAL as usize, "every value was eventually acknowledged");
    let duplicates = check_delivered(&got, &acked).await;
    // Reliable mode may redeliver (an ack lost with the old master); it must not lose.
    eprintln!("failover: {} deliveries, {duplicates} redelivered", got.lock().unwrap().len());
    consumer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_live_queues_slot_loses_nothing_and_the_consumer_resumes() {
    let Some(cluster) = cluster("moving_a_live_queues_slot_loses_nothing").await else {
        return;
    };
    let (pb, cb) = (bus(&cluster).await, bus(&cluster).await);
    let name = common::queue("reshard").to_string();
    let slot = slot_of(&cluster, &name).await;
    let producer = pb.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let consumer_q = cb.queue(&name).unwrap();
    consumer_q.attach().await.unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let consumer = consume(&consumer_q, got.clone()).await;
    let pushed = Arc::new(Mutex::new(0));
    let producing = produce(producer, pushed.clone());

    let masters: Vec<usize> = cluster
        .topology()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.master && !n.slots.is_empty())
        .map(|n| n.index)
        .collect();
    let home = cluster.master_of(slot).await.unwrap();
    let away = *masters.iter().find(|m| **m != home).expect("another master");
    wait_pushed(&pushed, TOTAL / 3).await;
    cluster.move_slot(slot, away).await.expect("move the queue's slot");
    assert_eq!(cluster.master_of(slot).await.unwrap(), away);
    wait_pushed(&pushed, 2 * TOTAL / 3).await;
    cluster.move_slot(slot, home).await.expect("move the slot back");

    let acked = producing.await.expect("the producer finishes");
    assert_eq!(acked.len(), TOTAL as usize);
    let duplicates = check_delivered(&got, &acked).await;
    eprintln!("reshard: {} deliveries, {duplicates} redelivered", got.lock().unwrap().len());
    consumer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_with_redis_cli_keeps_every_queue_working() {
    let Some(cluster) = cluster("resharding_with_redis_cli_keeps_every_queue_working").await else {
        return;
    };
    let b = bus(&cluster).await;
    let queues: Vec<Queue> =
        (0..20).map(|i| b.queue(format!("{}-{i}", common::queue("many"))).unwrap()).collect();
    for q in &queues {
        q.attach().await.unwrap();
        q.push_all(0..5u32).await.unwrap();
    }
    let nodes = cluster.topology().await.unwrap();
    let masters: Vec<usize> =
        nodes.iter().filter(|n| n.master && !n.slots.is_empty()).map(|n| n.index).collect();
    // A third of one master's slots, with every key of a queue in one MIGRATE batch.
    cluster.reshard(masters[0], masters[1], 1800, 1000).await.expect("redis-cli reshard");
    for q in &queues {
        q.push_all(5..10u32).await.unwrap();
        let mut consumer = q.consume::<u32>().await.unwrap();
        let mut values = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            while values.len() < 10 {
                values.push(consumer.next().await.unwrap().unwrap().into_body());
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{}: only {values:?}", q.name()));
        assert_eq!(values, (0..10).collect::<Vec<_>>(), "{}", q.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_use_shard_channels_on_the_queues_node() {
    let Some(cluster) = cluster("notices_use_shard_channels_on_the_queues_node").await else {
        return;
    };
    let b = bus(&cluster).await;
    let name = common::queue("sharded").to_string();
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let mut consumer = q.consume::<u32>().await.unwrap();
    q.push(&7u32).await.unwrap();
    let first = tokio::time::timeout(DEADLINE, consumer.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(*first.body(), 7);
    let owner = cluster.master_of(slot_of(&cluster, &name).await).await.unwrap();
    let channel = format!("busmq:{{{name}}}:s");
    let sharded = cluster.node_command(owner, &["PUBSUB", "SHARDCHANNELS"]).await.unwrap();
    let listed: Vec<String> = sharded.items().iter().filter_map(Resp::text).collect();
    assert!(listed.contains(&channel), "{channel} on its owner: {listed:?}");
    for i in 0..cluster.node_count() {
        let plain = cluster.node_command(i, &["PUBSUB", "CHANNELS"]).await.unwrap();
        assert!(plain.items().is_empty(), "no broadcast channel on node {i}: {plain:?}");
    }
}

/// Publishes `text` until the subscription hears it (published while it was being
/// re-established, a message may be lost: pub/sub stores nothing).
async fn hear(
    publisher: &busmq_core::PubSub,
    sub: &mut busmq_core::Subscription<String>,
    text: &str,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let _ = publisher.publish(&text.to_string()).await;
        let heard = tokio::time::timeout(Duration::from_millis(200), async {
            while let Some(m) = sub.next().await {
                if m.is_ok_and(|m| m == text) {
                    return true;
                }
            }
            false
        });
        if heard.await == Ok(true) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the subscription never heard {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_survive_the_failover_of_their_master() {
    let Some(mut cluster) = cluster("topics_survive_the_failover_of_their_master").await else {
        return;
    };
    let store = common::builder([cluster.url()]).build().unwrap();
    let (a, b) = (Bus::new(store), bus(&cluster).await);
    a.connect().await.unwrap();
    a.wait_online(DEADLINE).await.unwrap();
    let topic = format!("news-{:x}", busmq_core::support::random_u64());
    let mut sub = a.pubsub(&topic).unwrap().subscribe::<String>().await.unwrap();
    let publisher = b.pubsub(&topic).unwrap();
    hear(&publisher, &mut sub, "before").await;
    let slot = cluster.slot_of(&format!("busmq:t:{{{topic}}}")).await.unwrap();
    let old = cluster.kill_master_of(slot).await.unwrap();
    cluster.wait_for_failover(old).await.unwrap();
    hear(&publisher, &mut sub, "after").await;
    let store = RedisStore::open(cluster.url()).unwrap();
    assert!(store.instances()[0].starts_with("cluster:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cluster_down_is_offline_once_then_online_once() {
    let Some(mut cluster) = cluster("the_whole_cluster_down_is_offline_once_then_online").await
    else {
        return;
    };
    let store = common::store_with(common::builder([cluster.url()])).await;
    let mut events = store.events();
    let q = common::queue("down");
    let att = store.attach(&q, &common::spec()).await.unwrap();
    cluster.kill_all();
    assert_eq!(common::next_state(&mut events).await, StoreState::Offline);
    let during = store
        .push(&q, &PushBatch::new(att.generation, &common::spec(), &[NewEntry::new("x")]))
        .await;
    assert!(during.as_ref().is_err_and(|e| e.is_retryable()), "{during:?}");
    cluster.restart_all().await.expect("the cluster forms again");
    assert_eq!(common::next_state(&mut events).await, StoreState::Online);
    let quiet = common::quiet_states(&mut events, Duration::from_millis(800)).await;
    assert!(quiet.is_empty(), "one event per transition: {quiet:?}");
    // Nothing was persisted: the queue is created again and works.
    let att = common::eventually("an attach on the reformed cluster", || async {
        store.attach(&q, &common::spec()).await.ok()
    })
    .await;
    store
        .push(&q, &PushBatch::new(att.generation, &common::spec(), &[NewEntry::new("y")]))
        .await
        .unwrap();
    assert_eq!(store.stat(&q).await.unwrap().count, 1);
    common::stop(&store).await;
}

/// A node losing a slot sends an unsolicited `sunsubscribe` to connections subscribed in it;
/// the redis crate would take it for the reply of a script in flight on the same connection
/// (a push failed with "unexpected reply", and later replies were matched with the wrong
/// requests). Scripts and subscriptions therefore use separate connections; here every push
/// must succeed, and at-most-once delivery stays exact and ordered across repeated moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_slot_moves_keep_at_most_once_exact_and_ordered() {
    let Some(cluster) = cluster("repeated_slot_moves_keep_at_most_once_exact").await else {
        return;
    };
    let (pb, cb) = (bus(&cluster).await, bus(&cluster).await);
    let name = common::queue("moves").to_string();
    let slot = slot_of(&cluster, &name).await;
    let producer = pb.queue(&name).unwrap();
    producer.attach().await.unwrap();
    let consumer_q = cb.queue(&name).unwrap();
    consumer_q.attach().await.unwrap();
    let mut consumer = consumer_q.consume::<u32>().await.unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let receiving = tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            sink.lock().unwrap().push(d.into_body());
        }
    });
    let pushing = tokio::spawn(async move {
        let mut failures = Vec::new();
        for value in 0..TOTAL * 5 {
            if let Err(e) = producer.push(&value).await {
                failures.push(format!("{value}: {e}"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        failures
    });
    let masters: Vec<usize> = cluster
        .topology()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.master && !n.slots.is_empty())
        .map(|n| n.index)
        .collect();
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        cluster.move_slot(slot, masters[i % masters.len()]).await.expect("move the slot");
    }
    let failures = pushing.await.unwrap();
    assert!(failures.is_empty(), "pushes failed: {failures:?}");
    let want: Vec<u32> = (0..TOTAL * 5).collect();
    common::eventually("every message", || async {
        (got.lock().unwrap().len() >= want.len()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*got.lock().unwrap(), want, "exactly once, in order");
    receiving.abort();
}

/// The epoch race of a slot move (busmq-testkit's cluster/slots.rs): the new owner yields the
/// slot while the old one already names the new one, so no master serves it and every call on
/// its queues meets `MOVED` back and forth (a chaos run stalled so). Moving the slot where it
/// belongs reclaims it, and a queue on it works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_its_new_owner_yielded_is_reclaimed_by_moving_it_there() {
    let Some(cluster) = cluster("reclaim").await else { return };
    let name = common::queue("reclaim").to_string();
    let slot = slot_of(&cluster, &name).await;
    let topology = cluster.topology().await.unwrap();
    let home = cluster.master_of(slot).await.unwrap();
    // Not node 0, whose view the harness reads first: it must name the new owner.
    let away = topology
        .iter()
        .find(|n| n.master && !n.slots.is_empty() && n.index != home && n.index != 0)
        .expect("a third master")
        .index;
    let home_id = topology.iter().find(|n| n.index == home).unwrap().id.clone();
    cluster.move_slot(slot, away).await.expect("move the slot");
    // The new owner yields the (empty) slot to the old one, which names the new one.
    let s = slot.to_string();
    let yielded = cluster.node_command(away, &["CLUSTER", "SETSLOT", &s, "NODE", &home_id]).await;
    assert!(!matches!(yielded.unwrap(), Resp::Error(_)));

    cluster.move_slot(slot, away).await.expect("reclaim the slot");
    for node in cluster.topology().await.unwrap().iter().filter(|n| n.master) {
        let view = cluster.view_of(node.index).await.unwrap().unwrap_or_default();
        let owner = view.iter().find(|n| n.master && n.serves(slot)).map(|n| n.index);
        assert_eq!(owner, Some(away), "node {}'s view of slot {slot}", node.index);
    }
    let bus = bus(&cluster).await;
    let queue = bus.queue(&name).unwrap();
    queue.attach().await.unwrap();
    queue.push(&7u32).await.expect("a push on the reclaimed slot");
    let mut consumer = queue.consume_with::<u32>(ConsumeOptions::new()).await.expect("consume");
    let got = tokio::time::timeout(DEADLINE, consumer.next()).await;
    assert_eq!(*got.expect("a delivery in time").unwrap().unwrap().body(), 7);
}
