//! What the Redis layout of priorities and ordering keys (SPEC P11, P12; "Side entries" in
//! `lua/lib.lua`) adds to the conformance cases, against real redis-server processes: the side
//! keys share the queue's hash tag and expiry and go with flush and close; a side key of another
//! Redis type is ForeignData for its queue and loses nothing; a restricted server (no RENAME,
//! SORT) and a cluster keep take order and gates; an AOF restart keeps levels and gates; and an
//! idle consumer blocked in `BLMPOP` is woken by a priority push, a gate passing, a schedule
//! that moves the earliest due time earlier, and a restore to the returned zset.

mod common;

use busmq_core::store::{
    Entry, NewEntry, PushBatch, QueueSpec, ScheduleBatch, Settle, Settlement, TakeMode,
};
use busmq_core::{Error, QueueName, Store};
use busmq_redis::{CommandSet, RedisStore};
use busmq_testkit::redis::RedisServer;
use common::{queue, spec};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const AMO: TakeMode = TakeMode::AtMostOnce;
const RELIABLE: TakeMode =
    TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 10 };

fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect()
}

/// Pushes one message per payload with level `p` and key `k`.
async fn push(
    s: &impl Store,
    q: &QueueName,
    g: u64,
    sp: &QueueSpec,
    p: u8,
    k: Option<&str>,
    m: &[&str],
) {
    let route = |e: NewEntry| e.with_priority(p).with_ordering_key(k.map(Into::into));
    let entries: Vec<NewEntry> = m.iter().map(|m| route(NewEntry::new(m.to_string()))).collect();
    s.push(q, &PushBatch::new(g, sp, &entries)).await.unwrap();
}

async fn ack(s: &impl Store, q: &QueueName, entries: &[Entry]) {
    let ops: Vec<Settle> = entries.iter().map(|e| Settle::of(e, Settlement::Ack)).collect();
    s.settle(q, &ops).await.unwrap();
}

async fn keys(raw: &mut redis::aio::MultiplexedConnection, q: &QueueName) -> Vec<String> {
    let pattern = format!("busmq:{{{}}}:*", q.as_str());
    let mut out: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(raw).await.unwrap();
    out.sort();
    out
}

/// The scenario every configuration runs: levels, a key's gate through a reliable take and
/// its ack, at-most-once passing at the take, and the entries' level and key round-tripping.
async fn scenario(s: &impl Store) {
    let q = queue("side");
    let sp = spec();
    let g = s.attach(&q, &sp).await.unwrap().generation;
    push(s, &q, g, &sp, 0, None, &["plain0"]).await;
    push(s, &q, g, &sp, 0, Some("K"), &["k0", "k1"]).await;
    push(s, &q, g, &sp, 9, Some("K"), &["k2"]).await;
    push(s, &q, g, &sp, 5, None, &["five"]).await;
    push(s, &q, g, &sp, 0, None, &["plain1"]).await;
    assert_eq!(s.stat(&q).await.unwrap().count, 6);
    let first = s.take(&q, 10, RELIABLE).await.unwrap().entries;
    // Level 5, then level 0 in id order; K's next entries wait behind k0 (k2's level 9 too).
    assert_eq!(payloads(&first), ["five", "plain0", "k0", "plain1"]);
    assert_eq!((first[0].priority, first[2].ordering_key.as_deref()), (5, Some("K")));
    assert!(s.take(&q, 10, RELIABLE).await.unwrap().entries.is_empty());
    ack(s, &q, &first).await;
    let next = s.take(&q, 1, AMO).await.unwrap().entries;
    assert_eq!(payloads(&next), ["k1"]);
    // At most once: the gate passed at the take.
    let last = s.take(&q, 10, AMO).await.unwrap().entries;
    assert_eq!(payloads(&last), ["k2"]);
    // And within one take: a key's next entry follows at once.
    push(s, &q, g, &sp, 0, Some("K"), &["k3", "k4"]).await;
    push(s, &q, g, &sp, 0, None, &["plain2"]).await;
    let both = s.take(&q, 10, AMO).await.unwrap().entries;
    assert_eq!(payloads(&both), ["k3", "k4", "plain2"]);
    assert_eq!((last[0].priority, last[0].ordering_key.as_deref()), (9, Some("K")));
    assert_eq!(s.stat(&q).await.unwrap().count, 0);
    assert!(s.close(&q, Some(g)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_keys_share_the_tag_and_expiry_and_go_with_flush_and_close() {
    let Some(srv) = common::server("side_keys_share_the_tag_and_expiry").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    scenario(&s).await;
    let q = queue("layout");
    let sp = spec();
    let g = s.attach(&q, &sp).await.unwrap().generation;
    push(&s, &q, g, &sp, 3, None, &["a"]).await;
    push(&s, &q, g, &sp, 0, Some("K"), &["b", "c"]).await;
    let tag = format!("busmq:{{{}}}:", q.as_str());
    let found = keys(&mut raw, &q).await;
    for suffix in ["h", "hi", "kg", "kw", "wk"] {
        assert!(found.contains(&format!("{tag}{suffix}")), "{suffix} in {found:?}");
    }
    let meta: i64 =
        redis::cmd("PEXPIRETIME").arg(format!("{tag}m")).query_async(&mut raw).await.unwrap();
    assert!(meta > 0);
    for key in &found {
        // The tombstone and the notice lease have lives of their own.
        if key.ends_with(":t") || key.ends_with(":n") {
            continue;
        }
        let at: i64 = redis::cmd("PEXPIRETIME").arg(key).query_async(&mut raw).await.unwrap();
        assert_eq!(at, meta, "{key} expires with the queue");
    }
    s.flush(&q).await.unwrap();
    let left = keys(&mut raw, &q).await;
    for suffix in ["h", "hi", "kg", "kw", "wk"] {
        assert!(!left.contains(&format!("{tag}{suffix}")), "{suffix} flushed: {left:?}");
    }
    assert_eq!(s.stat(&q).await.unwrap().count, 0);
    // A new key after the flush starts with no gate.
    push(&s, &q, g, &sp, 0, Some("K"), &["d"]).await;
    assert_eq!(payloads(&s.take(&q, 10, AMO).await.unwrap().entries), ["d"]);
    push(&s, &q, g, &sp, 0, Some("K"), &["e", "f"]).await;
    assert!(s.close(&q, Some(g)).await.unwrap());
    let mut gone = keys(&mut raw, &q).await;
    gone.retain(|k| !k.ends_with(":n"));
    assert_eq!(gone, [format!("{tag}t")], "only the tombstone (and notice lease) outlive a close");
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_key_of_another_type_is_foreign_data_and_loses_nothing() {
    let Some(srv) = common::server("a_side_key_of_another_type").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let sp = spec();
    for suffix in ["h", "hi", "kg", "kw", "wk"] {
        let q = queue("wrongtype");
        let g = s.attach(&q, &sp).await.unwrap().generation;
        push(&s, &q, g, &sp, 0, None, &["p0", "p1"]).await;
        push(&s, &q, g, &sp, 4, None, &["four"]).await;
        let key = format!("busmq:{{{}}}:{suffix}", q.as_str());
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut raw).await.unwrap();
        let _: () = redis::cmd("SET").arg(&key).arg("x").query_async(&mut raw).await.unwrap();
        for mode in [AMO, RELIABLE] {
            match s.take(&q, 10, mode).await {
                Err(Error::ForeignData { queue, .. }) => assert_eq!(queue, q.as_str()),
                other => panic!("{suffix}: expected ForeignData, got {other:?}"),
            }
        }
        let one = [NewEntry::new("k").with_ordering_key(Some("K".into()))];
        let keyed = PushBatch::new(g, &sp, &one);
        assert!(matches!(s.push(&q, &keyed).await, Err(Error::ForeignData { .. })), "{suffix}");
        // Another queue is not affected.
        scenario(&s).await;
        // With the foreign key gone, nothing was lost (but what that key held).
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut raw).await.unwrap();
        let got = payloads(&s.take(&q, 10, AMO).await.unwrap().entries);
        let want: &[&str] = if suffix == "h" { &["p0", "p1"] } else { &["four", "p0", "p1"] };
        assert_eq!(got, want, "{suffix}");
        s.close(&q, Some(g)).await.unwrap();
    }
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_server_keeps_levels_and_gates() {
    let Some(_) = busmq_testkit::redis::require_or_skip("a_restricted_server_keeps") else {
        return;
    };
    let srv = RedisServer::builder()
        .config("rename-command RENAME \"\"")
        .config("rename-command SORT \"\"")
        .start()
        .await
        .unwrap();
    let s = common::store_with(
        common::builder([srv.url()]).page_size(8).command_set(CommandSet::Restricted),
    )
    .await;
    scenario(&s).await;
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_passes_gates_in_the_queues_slot() {
    if !busmq_testkit::cluster::require_cli_or_skip("a_cluster_passes_gates") {
        return;
    }
    let cluster = busmq_testkit::cluster::RedisCluster::builder().start().await.unwrap();
    let s = common::store_with(common::builder([cluster.url()])).await;
    scenario(&s).await;
    common::stop(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aof_restart_keeps_levels_and_gates() {
    let Some(_) = busmq_testkit::redis::require_or_skip("an_aof_restart_keeps") else {
        return;
    };
    let mut srv = RedisServer::builder()
        .config("appendonly yes")
        .config("appendfsync always")
        .start()
        .await
        .unwrap();
    let s = common::store(&[&srv]).await;
    let q = queue("aof");
    let sp = spec();
    let g = s.attach(&q, &sp).await.unwrap().generation;
    push(&s, &q, g, &sp, 0, Some("K"), &["k0", "k1"]).await;
    push(&s, &q, g, &sp, 7, None, &["seven"]).await;
    push(&s, &q, g, &sp, 0, None, &["plain"]).await;
    let out = s.take(&q, 1, RELIABLE).await.unwrap().entries;
    assert_eq!(payloads(&out), ["seven"]);
    srv.restart().await.unwrap();
    let t = Instant::now();
    let first = loop {
        match s.take(&q, 10, RELIABLE).await {
            Ok(t) => break t.entries,
            Err(_) if t.elapsed() < common::DEADLINE => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(payloads(&first), ["k0", "plain"]);
    ack(&s, &q, &first).await;
    assert_eq!(payloads(&s.take(&q, 10, RELIABLE).await.unwrap().entries), ["k1"]);
    common::stop(&s).await;
}

/// A consumer blocked in BLMPOP (nothing ready) is woken by `act` within a second or two, not
/// at the end of its 20 s block; returns the entries it then takes.
async fn woken_by<F: std::future::Future<Output = ()>>(
    s: &RedisStore,
    srv: &RedisServer,
    q: &QueueName,
    act: F,
) -> Vec<String> {
    let mut conn = common::raw(srv).await;
    let cancel = Notify::new();
    let none = busmq_core::store::Receipt::none();
    let blocking = s.blocking().expect("a single instance can block");
    let started = Instant::now();
    let waiting = blocking.take_wait(q, 10, Duration::from_secs(20), &cancel, &none);
    let acting = async {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let info: String =
                redis::cmd("INFO").arg("clients").query_async(&mut conn).await.unwrap();
            if info.lines().any(|l| l.starts_with("blocked_clients:") && !l.ends_with(":0")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        act.await
    };
    let (taken, ()) = tokio::join!(waiting, acting);
    let mut got = payloads(&taken.unwrap().entries);
    assert!(started.elapsed() < Duration::from_secs(5), "woken after {:?}", started.elapsed());
    got.extend(payloads(&s.take(q, 10, AMO).await.unwrap().entries));
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_consumers_wake_for_priorities_gates_and_earlier_due_times() {
    let Some(srv) = common::server("blocked_consumers_wake").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("wake");
    let sp = spec();
    let g = s.attach(&q, &sp).await.unwrap().generation;
    let got = woken_by(&s, &srv, &q, push(&s, &q, g, &sp, 6, None, &["six"])).await;
    assert_eq!(got, ["six"]);
    push(&s, &q, g, &sp, 0, Some("K"), &["k0", "k1"]).await;
    let out = s.take(&q, 10, RELIABLE).await.unwrap().entries;
    assert_eq!(payloads(&out), ["k0"]);
    let got = woken_by(&s, &srv, &q, ack(&s, &q, &out)).await;
    assert_eq!(got, ["k1"]);
    let later = NewEntry::new("late");
    let sched = ScheduleBatch::new(g, &sp, &later, Duration::from_millis(300));
    let scheduling = async {
        s.schedule(&q, &sched).await.unwrap();
    };
    let started = Instant::now();
    let mut got = woken_by(&s, &srv, &q, scheduling).await;
    while got.is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = payloads(&s.take(&q, 10, AMO).await.unwrap().entries);
    }
    assert_eq!(got, ["late"]);
    common::stop(&s).await;
}

/// Restores that go to the returned zset (side entries, or deliveries pending or given back,
/// make them go there) end a consumer's `BLMPOP` through the wake list: the pop does not read
/// the notice the restore publishes, and the restored messages sat out the block (up to 20 s
/// here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_consumers_wake_for_restores_to_the_returned_set() {
    let Some(srv) = common::server("blocked_consumers_wake_for_restores").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let q = queue("wake-restore");
    let sp = spec();
    let g = s.attach(&q, &sp).await.unwrap().generation;
    // No side entries: a pending delivery alone sends restores to the returned zset.
    push(&s, &q, g, &sp, 0, None, &["held"]).await;
    assert_eq!(payloads(&s.take(&q, 1, RELIABLE).await.unwrap().entries), ["held"]);
    push(&s, &q, g, &sp, 0, None, &["r1", "r2"]).await;
    let taken = s.take(&q, 10, AMO).await.unwrap().entries;
    assert_eq!(payloads(&taken), ["r1", "r2"]);
    let mut raw = common::raw(&srv).await;
    let wake_list = format!("busmq:{{{}}}:wk", q.as_str());
    let _: () = redis::cmd("DEL").arg(&wake_list).query_async(&mut raw).await.unwrap();
    let got = woken_by(&s, &srv, &q, async {
        let restored = s.restore(&q, g, &taken).await.unwrap();
        assert_eq!(restored, busmq_core::store::Restored::Done);
    })
    .await;
    assert_eq!(got, ["r1", "r2"]);
    common::stop(&s).await;
}

/// Calls of `command` since the last `CONFIG RESETSTAT` (script-internal calls included).
async fn calls(raw: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(raw).await.unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

async fn reset_stats(raw: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(raw).await.unwrap();
}

/// A push mixing 100 keys is one script call, and an at-most-once take of every key's head
/// and then (gates passed at the take) every key's next entry scans the side entries a few
/// times per take, not once per entry, in the order one-at-a-time takes give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_push_is_one_call_and_a_take_runs_through_many_keys_at_once() {
    let Some(srv) = common::server("a_mixed_push_is_one_call").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("runs");
    let sp = spec();
    let g = s.attach(&q, &sp).await.unwrap().generation;
    // Loads the scripts, so that the counted calls below are the push and the take alone.
    push(&s, &q, g, &sp, 0, Some("warm"), &["w"]).await;
    assert_eq!(payloads(&s.take(&q, 10, AMO).await.unwrap().entries), ["w"]);
    let names: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let batch: Vec<NewEntry> = names
        .iter()
        .enumerate()
        .map(|(i, m)| {
            NewEntry::new(m.clone()).with_ordering_key(Some(format!("k{}", i % 100).into()))
        })
        .collect();
    reset_stats(&mut raw).await;
    s.push(&q, &PushBatch::new(g, &sp, &batch)).await.unwrap();
    assert_eq!(calls(&mut raw, "evalsha").await, 1, "one script call for the mixed push");
    reset_stats(&mut raw).await;
    let taken = s.take(&q, 200, AMO).await.unwrap();
    assert_eq!(payloads(&taken.entries), names, "heads by id, then the next entries by id");
    let scans = calls(&mut raw, "zrangebyscore").await;
    assert!(scans <= 8, "{scans} ZRANGEBYSCORE calls for one take of 200 entries");
    common::stop(&s).await;
}
