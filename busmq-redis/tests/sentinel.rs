//! A bus over a Sentinel-managed master group, against real processes: SIGKILL of the master
//! and the failover that follows, a graceful `SENTINEL FAILOVER`, a master demoted behind the
//! bus's back (`READONLY`), separate passwords for sentinels and data nodes, and `WAIT`-based
//! pushes. Consumers, channel peers and subscriptions must resume by themselves, and the bus
//! must report each state transition exactly once. Deadlines are generous; nothing here
//! measures speed.

use busmq_core::Store;
use busmq_core::store::{NewEntry, PushBatch, Session};
use busmq_core::{Bus, BusEvent, ChannelEvent, ConsumeOptions, Error, ReliableOptions};
use busmq_redis::{RedisStore, RedisStoreBuilder};
use busmq_testkit::redis::require_or_skip;
use busmq_testkit::sentinel::{SentinelSet, SentinelSetBuilder};
use futures::{Stream, StreamExt};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// The longest anything expected may take (a failover needs `down-after` plus an election).
const DEADLINE: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_millis(1500);

/// Six processes per test and failovers that depend on timers: one set at a time keeps a small
/// shared machine from starving the sentinels.
static ONE_SET_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn start(
    test: &str,
    builder: SentinelSetBuilder,
) -> Option<(MutexGuard<'static, ()>, SentinelSet)> {
    require_or_skip(test)?;
    let guard = ONE_SET_AT_A_TIME.lock().await;
    let set = builder.start().await.expect("the sentinel set starts");
    Some((guard, set))
}

fn store_builder(url: impl Into<String>) -> RedisStoreBuilder {
    RedisStore::builder()
        .url(url)
        .namespace(format!("t{:08x}", busmq_core::support::random_u64() as u32))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(500))
        .ping_interval(Duration::from_millis(200))
        .response_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
}

async fn online_bus(store: RedisStore) -> Bus {
    let bus = Bus::new(store);
    let state = bus.connect().await.expect("connect");
    assert_eq!(state, busmq_core::BusState::Online);
    bus
}

fn unique(label: &str) -> String {
    format!("{label}-{:08x}", busmq_core::support::random_u64() as u32)
}

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn state_name(event: &BusEvent) -> Option<&'static str> {
    match event {
        BusEvent::Online => Some("online"),
        BusEvent::Offline => Some("offline"),
        BusEvent::Degraded { .. } => Some("degraded"),
        _ => None,
    }
}

/// State events up to and including the next `Online`.
async fn states_until_online(
    events: &mut (impl Stream<Item = BusEvent> + Unpin),
) -> Vec<&'static str> {
    within("the bus to come back online", async {
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            if let Some(name) = state_name(&event) {
                seen.push(name);
                if name == "online" {
                    break;
                }
            }
        }
        seen
    })
    .await
}

async fn quiet_states(events: &mut (impl Stream<Item = BusEvent> + Unpin)) -> Vec<&'static str> {
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(QUIET, events.next()).await {
        seen.extend(state_name(&event));
    }
    seen
}

/// Pushes until one push succeeds (the bus may still be settling on the new master).
async fn push_eventually(queue: &busmq_core::Queue, value: u64) {
    within("a push to succeed", async {
        loop {
            if queue.push(&value).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Receives until `want` was seen; returns everything received.
async fn receive_until<S>(stream: &mut S, want: u64, reliable: bool) -> Vec<u64>
where
    S: Stream<Item = busmq_core::Result<busmq_core::Delivery<u64>>> + Unpin,
{
    within("the consumer to deliver", async {
        let mut got = Vec::new();
        while let Some(item) = stream.next().await {
            let delivery = item.expect("a decodable delivery");
            let value = *delivery.body();
            if reliable {
                // An ack may fail while the store fails over; the message then comes again.
                let _ = delivery.ack().await;
            }
            got.push(value);
            if value == want {
                break;
            }
        }
        got
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_master_fails_over_and_everything_resumes_by_itself() {
    let Some((_guard, mut set)) =
        start("killing_the_master_fails_over", SentinelSet::builder()).await
    else {
        return;
    };
    let bus = online_bus(store_builder(set.url()).build().unwrap()).await;
    let mut events = bus.events();

    let plain = bus.queue(unique("plain")).unwrap();
    plain.attach().await.unwrap();
    let mut plain_in = plain.consume::<u64>().await.unwrap();
    let work = bus.queue(unique("work")).unwrap();
    work.attach().await.unwrap();
    let reliable = ConsumeOptions::new().reliable(ReliableOptions::default());
    let mut work_in = work.consume_with::<u64>(reliable).await.unwrap();
    let name = unique("chat");
    let (a, b) = (bus.channel(&name).unwrap(), bus.channel(&name).unwrap());
    let _a_events = a.connect::<String>().await.unwrap();
    let mut b_events = b.listen::<String>().await.unwrap();
    let topic = bus.pubsub(unique("news")).unwrap();
    let mut news = topic.subscribe::<String>().await.unwrap();

    for i in 1..=5 {
        plain.push(&i).await.unwrap();
        work.push(&i).await.unwrap();
    }
    assert_eq!(receive_until(&mut plain_in, 5, false).await, vec![1, 2, 3, 4, 5]);
    assert_eq!(receive_until(&mut work_in, 5, true).await, vec![1, 2, 3, 4, 5]);

    let old = set.kill_master().await.unwrap();
    let new = set.wait_for_new_master(old).await.unwrap();
    assert_ne!(old, new);
    assert_eq!(states_until_online(&mut events).await, vec!["offline", "online"]);

    for i in 6..=10 {
        push_eventually(&plain, i).await;
        push_eventually(&work, i).await;
    }
    let after = receive_until(&mut plain_in, 10, false).await;
    assert!((6..=10).all(|i| after.contains(&i)), "at-most-once consumer resumed: {after:?}");
    let after = receive_until(&mut work_in, 10, true).await;
    assert!((6..=10).all(|i| after.contains(&i)), "reliable consumer resumed: {after:?}");

    within("the channel peers to talk again", async {
        loop {
            if a.send(&"after the failover").await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while let Some(event) = b_events.next().await {
            if let ChannelEvent::Message(m) = event {
                if m.body() == "after the failover" {
                    break;
                }
            }
        }
    })
    .await;
    within("the subscription to hear the topic again", async {
        loop {
            let _ = topic.publish(&"probe").await;
            if let Ok(Some(Ok(_))) =
                tokio::time::timeout(Duration::from_millis(300), news.next()).await
            {
                break;
            }
        }
    })
    .await;
    let later = quiet_states(&mut events).await;
    if set.master_index().await.unwrap() == new {
        assert_eq!(later, Vec::<&str>::new(), "one event per transition");
    } else {
        // The sentinels failed over once more: on a loaded machine the new master can miss
        // down-after-milliseconds too (seen in CI). That is another outage, reported once.
        assert!(
            !later.is_empty() && later.chunks(2).all(|pair| pair == ["offline", "online"]),
            "one offline and one online per further failover: {later:?}"
        );
    }
    bus.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_failover_does_not_stall_producers_or_consumers() {
    let Some((_guard, set)) =
        start("a_graceful_failover_does_not_stall", SentinelSet::builder()).await
    else {
        return;
    };
    let bus = online_bus(store_builder(set.url()).build().unwrap()).await;
    let mut events = bus.events();
    let queue = bus.queue(unique("steady")).unwrap();
    queue.attach().await.unwrap();
    let mut incoming = queue.consume::<u64>().await.unwrap();
    let producer = {
        let queue = queue.clone();
        tokio::spawn(async move {
            for i in 0u64.. {
                let _ = queue.push(&i).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    receive_until(&mut incoming, 10, false).await;
    let old = set.failover().await.unwrap();
    set.wait_for_new_master(old).await.unwrap();
    let seen = states_until_online(&mut events).await;
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]) && seen.last() == Some(&"online"),
        "alternating transitions ending online: {seen:?}"
    );
    // Whatever the producer pushes from now on arrives: there is no stall.
    let mark = within("a push after the failover", async {
        loop {
            if let Ok(id) = queue.push(&u64::MAX).await {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let _ = mark;
    receive_until(&mut incoming, u64::MAX, false).await;
    producer.abort();
    bus.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_demoted_behind_the_bus_is_noticed_by_readonly() {
    let Some((_guard, set)) =
        start("a_master_demoted_behind_the_bus", SentinelSet::builder()).await
    else {
        return;
    };
    let bus = online_bus(store_builder(set.url()).build().unwrap()).await;
    let mut events = bus.events();
    let queue = bus.queue(unique("demoted")).unwrap();
    queue.attach().await.unwrap();
    queue.push(&1u64).await.unwrap();

    let master = set.master_index().await.unwrap();
    let replica = (master + 1) % set.node_count();
    let port = set.node(replica).port().to_string();
    set.node_command(master, &["REPLICAOF", "127.0.0.1", &port]).await.unwrap();
    match queue.push(&2u64).await {
        Err(e) => assert!(e.is_retryable(), "READONLY is retryable: {e}"),
        Ok(id) => panic!("a push to a replica succeeded with id {id}"),
    }
    let offline = within("the bus to notice the demotion", async {
        loop {
            match events.next().await {
                Some(BusEvent::Offline) => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    })
    .await;
    assert!(offline);
    // The sentinels need 20 s and more to call a master that claims to be a replica down: the
    // bus noticed from the READONLY answer, not from them.
    assert_eq!(set.master_index().await.unwrap(), master, "the sentinels have not moved yet");

    set.failover().await.unwrap();
    let new = set.wait_for_new_master(master).await.unwrap();
    assert_ne!(new, master);
    assert_eq!(states_until_online(&mut events).await, vec!["online"]);
    push_eventually(&queue, 3).await;
    bus.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_and_data_nodes_authenticate_separately() {
    let Some((_guard, set)) = start(
        "sentinels_and_data_nodes_authenticate_separately",
        SentinelSet::builder().data_password("data-secret").sentinel_password("sentinel-secret"),
    )
    .await
    else {
        return;
    };
    // The URL form: data credentials before '@', the sentinels' as a parameter.
    let bus = online_bus(store_builder(set.url()).build().unwrap()).await;
    let queue = bus.queue(unique("auth")).unwrap();
    queue.attach().await.unwrap();
    queue.push(&"hello").await.unwrap();
    bus.disconnect().await.unwrap();

    // The builder form.
    let good = RedisStore::builder()
        .sentinel(set.sentinel_addrs(), set.master_name())
        .sentinel_password("sentinel-secret")
        .data_password("data-secret")
        .build()
        .unwrap();
    assert_eq!(good.connect().await.unwrap(), busmq_core::store::StoreState::Online);
    good.disconnect().await.unwrap();

    // Refused credentials are one typed error from connect, on either side, and the store
    // is left disconnected.
    for (sentinel_pw, data_pw, expect) in [
        ("not-it-1", "data-secret", "sentinel 127.0.0.1:"),
        ("sentinel-secret", "not-it-2", "the password or user name is wrong"),
    ] {
        let store = RedisStore::builder()
            .sentinel(set.sentinel_addrs(), set.master_name())
            .sentinel_password(sentinel_pw)
            .data_password(data_pw)
            .connect_timeout(Duration::from_secs(1))
            .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
            .build()
            .unwrap();
        let error = within("connect", store.connect()).await.expect_err("refused");
        let text = format!("{error} {error:?}");
        match &error {
            Error::AccessDenied { target, reason } => {
                assert_eq!(target, "sentinel:mymaster/0");
                assert!(reason.contains(expect), "{reason}");
                assert!(reason.contains("the password or user name is wrong"), "{reason}");
            }
            other => panic!("expected AccessDenied, got {other:?}"),
        }
        assert!(!error.is_retryable());
        assert!(!text.contains("secret") && !text.contains("not-it"), "no password in {text}");
        assert_eq!(*store.state().borrow(), busmq_core::store::StoreState::Offline);
    }
    // Without the sentinels' password.
    let store = RedisStore::builder()
        .sentinel(set.sentinel_addrs(), set.master_name())
        .data_password("data-secret")
        .build()
        .unwrap();
    match within("connect", store.connect()).await {
        Err(Error::AccessDenied { reason, .. }) => {
            assert!(reason.contains("requires a password"), "{reason}");
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_can_wait_for_replicas_and_fail_when_too_few_confirm() {
    let Some((_guard, set)) = start("pushes_can_wait_for_replicas", SentinelSet::builder()).await
    else {
        return;
    };
    let store =
        store_builder(set.url()).replicas_ack(2, Duration::from_millis(500)).build().unwrap();
    let bus = online_bus(store).await;
    let queue = bus.queue(unique("durable")).unwrap();
    queue.attach().await.unwrap();
    queue.push(&1u64).await.unwrap();
    let mut incoming = queue.consume::<u64>().await.unwrap();
    assert_eq!(receive_until(&mut incoming, 1, false).await, vec![1]);

    let master = set.master_index().await.unwrap();
    let replica = (master + 1) % set.node_count();
    set.node(replica).pause().unwrap();
    let refused = queue.push(&2u64).await;
    set.node(replica).resume().unwrap();
    match refused {
        Err(e @ Error::NotReplicated { confirmed: 1, required: 2, .. }) => {
            // Applied by the master: retryable, but not "unapplied" (a retry may write twice).
            assert!(e.is_retryable() && !e.is_unapplied(), "{e}");
            assert!(e.to_string().contains("1 of 2 replicas"), "{e}");
        }
        other => panic!("expected a replication error, got {other:?}"),
    }
    push_eventually(&queue, 3).await;
    let got = receive_until(&mut incoming, 3, false).await;
    assert!(got.contains(&3), "{got:?}");
    bus.disconnect().await.unwrap();
}

/// SPEC P8 with `replicas_ack`: a schedule waits for the replicas like a push (and fails when
/// too few confirm), and a scheduled message survives the master's death: it is delivered
/// once, when due, by the new master. (One replica must confirm: after the failover the set has
/// one replica left.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_messages_wait_for_replicas_and_survive_a_failover() {
    // down-after-milliseconds 2000, not 1000: in one .ci/run the sentinels failed the freshly
    // promoted master over a second time a second after the first failover (its logs: +sdown
    // of the new master 1 s after +switch-master), and the consumer then missed the deadline.
    let timing = SentinelSet::builder().timing(Duration::from_secs(2), Duration::from_secs(5));
    let Some((_guard, mut set)) = start("scheduled_messages_survive_a_failover", timing).await
    else {
        return;
    };
    let store =
        store_builder(set.url()).replicas_ack(1, Duration::from_millis(500)).build().unwrap();
    let bus = online_bus(store).await;
    let queue = bus.queue(unique("delayed-durable")).unwrap();
    queue.attach().await.unwrap();

    let master = set.master_index().await.unwrap();
    let replicas: Vec<usize> = (0..set.node_count()).filter(|&i| i != master).collect();
    for &r in &replicas {
        set.node(r).pause().unwrap();
    }
    let refused = queue.schedule(&0u64, busmq_core::When::After(Duration::from_secs(1))).await;
    for &r in &replicas {
        set.node(r).resume().unwrap();
    }
    match refused {
        Err(e @ Error::NotReplicated { operation: "schedule", confirmed: 0, required: 1, .. }) => {
            assert!(e.to_string().contains("0 of 1 replicas"), "{e}")
        }
        other => panic!("expected a replication error, got {other:?}"),
    }
    let after = busmq_core::When::After(Duration::from_secs(8));
    within("a schedule to be confirmed", async {
        loop {
            if queue.schedule(&1u64, after).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // Idle until the message is due, through the failover.
    let mut incoming = queue.consume::<u64>().await.unwrap();

    let old = set.kill_master().await.unwrap();
    let new = set.wait_for_new_master(old).await.unwrap();
    assert_ne!(old, new);
    let got = receive_until(&mut incoming, 1, false).await;
    // The refused schedule may have reached the master and its replicas before the WAIT gave
    // up (a refusal says "not confirmed", not "not written"), so 0 may come first.
    assert!(got.iter().all(|&v| v <= 1) && got.ends_with(&[1]), "{got:?}");
    let extra = tokio::time::timeout(Duration::from_millis(500), incoming.next()).await;
    assert!(extra.is_err(), "delivered once: {extra:?}");
    bus.disconnect().await.unwrap();
}

/// P10 with `replicas_ack`: a dedupe repeat of a push that too few replicas confirmed waits for
/// them as the push did, also from a client whose connection has written nothing before it
/// (the worry: `WAIT` there has no write of its own to wait for), and resolves to the push's
/// id once they confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedupe_repeat_waits_for_replicas_like_its_push() {
    let Some((_guard, set)) = start("a_dedupe_repeat_waits", SentinelSet::builder()).await else {
        return;
    };
    let namespace = format!("t{:08x}", busmq_core::support::random_u64() as u32);
    let builder = || {
        store_builder(set.url())
            .namespace(namespace.clone())
            .replicas_ack(2, Duration::from_millis(500))
    };
    let name = unique("dedupe-durable");
    let once = busmq_core::PushOptions::new().dedupe("order-1");
    let bus = online_bus(builder().build().unwrap()).await;
    let queue = bus.queue(&name).unwrap();
    queue.attach().await.unwrap();
    let master = set.master_index().await.unwrap();
    let replica = (master + 1) % set.node_count();
    set.node(replica).pause().unwrap();
    let first = queue.push_with(&1u64, once.clone()).await;
    assert!(matches!(first, Err(Error::NotReplicated { .. })), "{first:?}");
    // Another client, the replica still paused: the repeat is not confirmed either. Through the
    // Store API, so that its connection has written nothing before the repeat (an attach would
    // have, and WAIT would then wait for that write).
    let q = busmq_core::QueueName::new(&name).unwrap();
    let looker = builder().build().unwrap();
    looker.connect().await.unwrap();
    let generation = looker.stat(&q).await.unwrap().generation.expect("the queue exists");
    let store = builder().build().unwrap();
    store.connect().await.unwrap();
    let (spec, entry) = (busmq_core::store::QueueSpec::default(), [NewEntry::new("2")]);
    let dedupe = busmq_core::store::Dedupe { key: "order-1", window: Duration::from_secs(60) };
    let batch = PushBatch { dedupe: Some(dedupe), ..PushBatch::new(generation, &spec, &entry) };
    let repeat = store.push(&q, &batch).await;
    set.node(replica).resume().unwrap();
    assert!(matches!(repeat, Err(Error::NotReplicated { .. })), "{repeat:?}");
    let other = online_bus(builder().build().unwrap()).await;
    let again = other.queue(&name).unwrap();
    again.attach().await.unwrap();
    let id = within("the repeat to be confirmed", async {
        loop {
            match again.push_with(&1u64, once.clone()).await {
                Ok(id) => return id,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert_eq!(queue.count().await.unwrap(), 1, "written once (id {id})");
    other.disconnect().await.unwrap();
    bus.disconnect().await.unwrap();
}
