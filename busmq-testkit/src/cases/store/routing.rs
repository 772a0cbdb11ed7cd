//! Store contract: priorities (SPEC P12) and per-key ordering (SPEC P11). Takes find returned
//! entries first in id order, then takeable entries by level (highest first) in id order; at
//! most one entry of an ordering key is out (takeable, or taken reliably and not acknowledged)
//! and the others wait, counted and read in id order like any ready entry; a reliable delivery
//! keeps its key's gate through release, return, extend and visibility expiry and passes it on
//! ack (dead-lettering included); an at-most-once take passes it at once; scheduled entries
//! are routed when they come due; flush drops the gates with the entries.

use super::fixtures::{
    AMO, connected, entries, ids, maxsize, payloads, queue, reliable, spec, try_push,
};
use crate::backend::Backend;
use busmq_core::store::{
    Entry, NewEntry, Position, PushBatch, QueueSpec, ScheduleBatch, Settle, Settled, Settlement,
    Store,
};
use busmq_core::{Error, QueueName};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// Pushes `payloads` as one batch at `priority` with `key`; returns the first id.
pub(crate) async fn push_routed(
    store: &dyn Store,
    q: &QueueName,
    generation: u64,
    spec: &QueueSpec,
    payloads: &[&str],
    priority: u8,
    key: Option<&str>,
) -> busmq_core::Result<u64> {
    let batch: Vec<NewEntry> = entries(payloads)
        .into_iter()
        .map(|e| e.with_priority(priority).with_ordering_key(key.map(Into::into)))
        .collect();
    store.push(q, &PushBatch::new(generation, spec, &batch)).await
}

async fn settle(store: &dyn Store, q: &QueueName, entry: &Entry, action: Settlement) {
    let outcome = store.settle(q, &[Settle::of(entry, action)]).await.expect("settle");
    assert_eq!(outcome, [Settled::Done], "{action:?} of {}", entry.id);
}

fn levels(entries: &[Entry]) -> Vec<u8> {
    entries.iter().map(|e| e.priority).collect()
}

fn keys(entries: &[Entry]) -> Vec<Option<&str>> {
    entries.iter().map(|e| e.ordering_key.as_deref()).collect()
}

/// P12: returned entries first (id order), then levels from 9 down, id order within a level;
/// takes and reads give back the level each entry was pushed with.
pub async fn store_takes_returned_entries_first_then_levels_high_to_low(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-levels"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    for (payload, level) in [("a", 0), ("b", 9), ("c", 0), ("d", 5), ("e", 9)] {
        push_routed(&*store, &q, generation, &sp, &[payload], level, None).await.unwrap();
    }
    let mode = reliable(30 * SEC, 5);
    let first = store.take(&q, 1, mode).await.unwrap();
    assert_eq!(payloads(&first.entries), ["b"], "the oldest of the highest level");
    settle(&*store, &q, &first.entries[0], Settlement::Release).await;
    push_routed(&*store, &q, generation, &sp, &["f"], 9, None).await.unwrap();
    let read = store.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["a", "b", "c", "d", "e", "f"], "reads go by id");
    assert_eq!(levels(&read.entries), [0, 9, 0, 5, 9, 9]);
    let taken = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["b", "e", "f", "d", "a", "c"]);
    assert_eq!(levels(&taken.entries), [9, 9, 9, 5, 0, 0]);

    let (q, sp) = (queue("store-levels-amo"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    for (payload, level) in [("a", 1), ("b", 0), ("c", 1), ("d", 2)] {
        push_routed(&*store, &q, generation, &sp, &[payload], level, None).await.unwrap();
    }
    let taken = store.take(&q, 3, AMO).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["d", "a", "c"]);
    assert_eq!(payloads(&store.take(&q, 3, AMO).await.unwrap().entries), ["b"]);
}

/// P11: one entry of a key out at a time, whatever the levels; the gate stays with a reliable
/// delivery through release, extend, return and visibility expiry, and passes on its ack to
/// the key's oldest waiting entry, which keeps its own level and key.
pub async fn store_a_key_has_one_entry_out_until_its_delivery_is_acked(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-keys"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    push_routed(&*store, &q, generation, &sp, &["a"], 0, Some("k")).await.unwrap();
    push_routed(&*store, &q, generation, &sp, &["b"], 9, Some("k")).await.unwrap();
    push_routed(&*store, &q, generation, &sp, &["x"], 0, Some("j")).await.unwrap();
    push_routed(&*store, &q, generation, &sp, &["p"], 0, None).await.unwrap();
    let mode = reliable(30 * SEC, 10);
    let taken = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["a", "x", "p"], "b waits behind a, level 9 or not");
    assert_eq!(keys(&taken.entries), [Some("k"), Some("j"), None]);
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (1, 3), "a waiting entry is counted as ready");
    let read = store.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["b"]);
    let a = taken.entries[0].clone();

    settle(&*store, &q, &a, Settlement::Release).await;
    let again = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&again.entries), ["a"], "a release keeps the gate");
    let a = again.entries[0].clone();
    settle(&*store, &q, &a, Settlement::Extend(30 * SEC)).await;
    assert!(store.take(&q, 10, mode).await.unwrap().entries.is_empty(), "extend keeps it");
    settle(&*store, &q, &a, Settlement::Return).await;
    let short = store.take(&q, 10, reliable(200 * MS, 10)).await.unwrap();
    assert_eq!(payloads(&short.entries), ["a"], "a return keeps the gate");
    tokio::time::sleep(500 * MS).await;
    let expired = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&expired.entries), ["a"], "an expired visibility keeps the gate");
    let a = expired.entries[0].clone();
    assert_eq!(a.deliveries, 3);
    settle(&*store, &q, &a, Settlement::Ack).await;
    let b = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&b.entries), ["b"], "the ack passes the gate");
    assert_eq!((b.entries[0].priority, b.entries[0].ordering_key.as_deref()), (9, Some("k")));
    for taken in [&taken.entries[1], &taken.entries[2], &b.entries[0]] {
        settle(&*store, &q, taken, Settlement::Ack).await;
    }
    assert_eq!(store.stat(&q).await.unwrap().count, 0);
}

/// P11, Q13: an entry taken for dead-lettering keeps the gate until it is acknowledged (after
/// the caller moved it), then the key's next entry is takeable.
pub async fn store_dead_lettering_passes_the_gate_on_its_ack(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-keys-dead"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    push_routed(&*store, &q, generation, &sp, &["a", "b"], 0, Some("k")).await.unwrap();
    let mode = reliable(30 * SEC, 1);
    let first = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&first.entries), ["a"]);
    settle(&*store, &q, &first.entries[0], Settlement::Release).await;
    let dead = store.take(&q, 10, mode).await.unwrap();
    assert_eq!((payloads(&dead.entries).len(), payloads(&dead.dead)), (0, vec!["a".to_string()]));
    assert!(store.take(&q, 10, mode).await.unwrap().entries.is_empty());
    settle(&*store, &q, &dead.dead[0], Settlement::Ack).await;
    assert_eq!(payloads(&store.take(&q, 10, mode).await.unwrap().entries), ["b"]);
}

/// P11, Q10: an at-most-once take passes the gate at once (the next entry may come in the
/// same take); a restored entry comes back first and takeable, the gate untouched.
pub async fn store_at_most_once_takes_pass_the_gate_and_restores_come_first(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-keys-amo"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    push_routed(&*store, &q, generation, &sp, &["a", "b", "c", "d"], 0, Some("k")).await.unwrap();
    let a = store.take(&q, 1, AMO).await.unwrap();
    assert_eq!(payloads(&a.entries), ["a"]);
    assert_eq!(payloads(&store.take(&q, 1, AMO).await.unwrap().entries), ["b"]);
    let restored = store.restore(&q, generation, &a.entries).await.unwrap();
    assert_eq!(restored, busmq_core::store::Restored::Done);
    let rest = store.take(&q, 2, AMO).await.unwrap();
    assert_eq!(payloads(&rest.entries), ["a", "c"], "restored first, then the key's next");
    assert_eq!(keys(&rest.entries), [Some("k"), Some("k")]);
    assert_eq!(payloads(&store.take(&q, 10, AMO).await.unwrap().entries), ["d"]);
}

/// P11, P12, Q4, Q8: waiting and prioritized entries count towards `maxsize`, are read in id
/// order, and go with a flush, gates included (a key's next push is takeable at once).
pub async fn store_waiting_entries_count_and_go_with_a_flush(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-keys-flush"), maxsize(3));
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    push_routed(&*store, &q, generation, &sp, &["a"], 0, Some("k")).await.unwrap();
    push_routed(&*store, &q, generation, &sp, &["b"], 9, Some("k")).await.unwrap();
    push_routed(&*store, &q, generation, &sp, &["c"], 5, None).await.unwrap();
    let full = push_routed(&*store, &q, generation, &sp, &["d"], 0, Some("k")).await;
    assert!(matches!(full, Err(Error::QueueFull { .. })), "{full:?}");
    let full = try_push(&*store, &q, generation, &sp, &[NewEntry::new("e")]).await;
    assert!(matches!(full, Err(Error::QueueFull { .. })), "{full:?}");
    assert_eq!(store.stat(&q).await.unwrap().count, 3);
    let read = store.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(payloads(&read.entries), ["a", "b", "c"]);
    assert_eq!(levels(&read.entries), [0, 9, 5]);
    let taken = store.take(&q, 10, reliable(30 * SEC, 5)).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["c", "a"]);
    store.flush(&q).await.unwrap();
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (0, 0));
    let fresh = push_routed(&*store, &q, generation, &sp, &["f"], 0, Some("k")).await.unwrap();
    let taken = store.take(&q, 10, AMO).await.unwrap();
    assert_eq!(ids(&taken.entries), [fresh], "the flush took the gate with it");
}

/// P8, P11, P12: a scheduled entry comes due with its level and key and is routed then: a
/// level above the others goes first, a key waits behind its out entry.
pub async fn store_scheduled_entries_come_due_with_their_level_and_key(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-keys-delayed"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    push_routed(&*store, &q, generation, &sp, &["a"], 0, Some("k")).await.unwrap();
    let b = NewEntry::new("b").with_priority(9).with_ordering_key(Some("k".into()));
    let c = NewEntry::new("c").with_priority(5);
    store.schedule(&q, &ScheduleBatch::new(generation, &sp, &b, 100 * MS)).await.unwrap();
    store.schedule(&q, &ScheduleBatch::new(generation, &sp, &c, 100 * MS)).await.unwrap();
    push_routed(&*store, &q, generation, &sp, &["d"], 0, None).await.unwrap();
    tokio::time::sleep(400 * MS).await;
    let mode = reliable(30 * SEC, 5);
    let taken = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["c", "a", "d"], "b waits behind a");
    assert_eq!(store.stat(&q).await.unwrap().count, 1);
    settle(&*store, &q, &taken.entries[1], Settlement::Ack).await;
    let b = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&b.entries), ["b"]);
    assert_eq!((b.entries[0].priority, b.entries[0].ordering_key.as_deref()), (9, Some("k")));
}

/// One pushed entry: payload, level, key.
fn routed(payload: &str, level: u8, key: Option<&str>) -> NewEntry {
    NewEntry::new(payload.to_string()).with_priority(level).with_ordering_key(key.map(Into::into))
}

/// The mixed batch of the cases below: levels and keys differ from entry to entry.
fn mixed() -> Vec<NewEntry> {
    vec![
        routed("a", 0, None),
        routed("b", 9, None),
        routed("c", 0, Some("k")),
        routed("d", 5, Some("k")),
        routed("e", 0, Some("j")),
        routed("f", 3, None),
        routed("g", 0, Some("k")),
    ]
}

/// P11, P12, Q9: one push may mix levels and keys; each entry is routed as if pushed alone, in
/// the batch's order (consecutive ids), reliable and at-most-once alike.
pub async fn store_a_mixed_batch_routes_each_entry_by_its_own_level_and_key(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-mixed"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let batch = mixed();
    let first = try_push(&*store, &q, generation, &sp, &batch).await.unwrap();
    let read = store.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(ids(&read.entries), (first..first + 7).collect::<Vec<_>>(), "consecutive ids");
    assert_eq!(payloads(&read.entries), ["a", "b", "c", "d", "e", "f", "g"]);
    assert_eq!(levels(&read.entries), [0, 9, 0, 5, 0, 3, 0]);
    assert_eq!(keys(&read.entries), [None, None, Some("k"), Some("k"), Some("j"), None, Some("k")]);
    let mode = reliable(30 * SEC, 5);
    let taken = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["b", "f", "a", "c", "e"], "d and g wait behind c");
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (2, 5));
    settle(&*store, &q, &taken.entries[3], Settlement::Ack).await;
    let d = store.take(&q, 10, mode).await.unwrap();
    assert_eq!(payloads(&d.entries), ["d"]);
    assert_eq!((d.entries[0].priority, d.entries[0].ordering_key.as_deref()), (5, Some("k")));
    settle(&*store, &q, &d.entries[0], Settlement::Ack).await;
    assert_eq!(payloads(&store.take(&q, 10, mode).await.unwrap().entries), ["g"]);

    // At most once, the gates pass at the take: c's take lets d (level 5) go next, and d's
    // lets g go at its id's place among level 0.
    let (q, sp) = (queue("store-mixed-amo"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    try_push(&*store, &q, generation, &sp, &batch).await.unwrap();
    let taken = store.take(&q, 10, AMO).await.unwrap();
    assert_eq!(payloads(&taken.entries), ["b", "f", "a", "c", "d", "e", "g"]);
    assert_eq!(store.stat(&q).await.unwrap().count, 0);
}

/// P11, P12, rule O8: an entry out of bounds anywhere in a batch refuses the whole push with
/// `InvalidOption` naming it, and so does a level or a key on a queue with retention (pushes
/// and schedules alike); nothing is written.
pub async fn store_refuses_bad_or_retained_routing_and_writes_nothing(backend: &dyn Backend) {
    let store = connected(backend).await;
    let (q, sp) = (queue("store-mixed-bad"), spec());
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let named = |result: busmq_core::Result<u64>| match result {
        Err(Error::InvalidOption { option, .. }) => option,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    let mut bad = mixed();
    bad[4] = routed("e", 10, None);
    assert_eq!(named(try_push(&*store, &q, generation, &sp, &bad).await), "priority");
    bad[4] = routed("e", 0, Some("with\0nul"));
    assert_eq!(named(try_push(&*store, &q, generation, &sp, &bad).await), "ordering_key");
    bad[4] = routed("e", 0, Some(""));
    assert_eq!(named(try_push(&*store, &q, generation, &sp, &bad).await), "ordering_key");
    assert_eq!(store.stat(&q).await.unwrap().count, 0, "nothing of a refused batch");

    let replay = QueueSpec {
        retention: busmq_core::store::Retention { max_len: Some(10), max_age: None },
        ..spec()
    };
    let q = queue("store-retained-routing");
    let generation = store.attach(&q, &replay).await.unwrap().generation;
    let leveled = [NewEntry::new("a"), routed("b", 1, None)];
    assert_eq!(named(try_push(&*store, &q, generation, &replay, &leveled).await), "priority");
    let keyed = [routed("c", 0, Some("k")), NewEntry::new("d")];
    assert_eq!(named(try_push(&*store, &q, generation, &replay, &keyed).await), "ordering_key");
    let later = routed("e", 0, Some("k"));
    let scheduled = store.schedule(&q, &ScheduleBatch::new(generation, &replay, &later, MS)).await;
    match scheduled {
        Err(Error::InvalidOption { option, .. }) => assert_eq!(option, "ordering_key"),
        other => panic!("expected InvalidOption(ordering_key), got {other:?}"),
    }
    // A caller whose spec has no retention (its incarnation expired, and the queue was made
    // again as a replay queue): the live queue's retention refuses it all the same.
    let (stale, sp) = (generation + 1_000_000, spec());
    assert_eq!(named(try_push(&*store, &q, stale, &sp, &keyed).await), "ordering_key");
    assert_eq!(named(try_push(&*store, &q, stale, &sp, &leveled).await), "priority");
    let scheduled = store.schedule(&q, &ScheduleBatch::new(stale, &sp, &later, MS)).await;
    match scheduled {
        Err(Error::InvalidOption { option, .. }) => assert_eq!(option, "ordering_key"),
        other => panic!("expected InvalidOption(ordering_key), got {other:?}"),
    }
    let plain = try_push(&*store, &q, generation, &replay, &[NewEntry::new("f")]).await.unwrap();
    tokio::time::sleep(50 * MS).await;
    let read = store.read(&q, Position::Start, 10).await.unwrap();
    assert_eq!(ids(&read.entries), [plain], "only the plain push was written");
}
