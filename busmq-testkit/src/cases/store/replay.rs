//! Store contract: replay reads from every kind of position, retention by count and by age,
//! and the rule that removing and replaying consumers do not mix (SPEC Q14, Q15).

use super::fixtures::{
    AMO, SEC, connected, filled, ids, names, numbered, payloads, push, queue, spec, try_push,
};
use crate::backend::Backend;
use busmq_core::store::{
    ClientId, ConsumerId, ConsumerKind, ConsumerOp, Position, QueueSpec, ReadBatch, Restored,
    Retention,
};
use busmq_core::{Error, QueueName, Store};
use std::time::Duration;

async fn read(store: &dyn Store, q: &QueueName, from: Position, max: u32) -> Vec<String> {
    payloads(&store.read(q, from, max).await.unwrap().entries)
}

/// Q14: a read starts where its position says (start, index, from an id, after an id, end),
/// returns at most `max` entries without delivery counts, reports the newest id, and removes
/// nothing.
pub async fn store_reads_start_where_the_position_says_and_remove_nothing(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("replay");
    filled(&*store, &q, &spec(), &["a", "b", "c", "d", "e"]).await;
    let all = store.read(&q, Position::Start, 100).await.unwrap();
    assert_eq!(payloads(&all.entries), ["a", "b", "c", "d", "e"]);
    assert!(all.entries.iter().all(|e| e.deliveries == 0));
    let id = ids(&all.entries);
    assert_eq!(all.last_id, Some(id[4]));
    let s = &*store;
    assert_eq!(read(s, &q, Position::Start, 2).await, ["a", "b"]);
    assert_eq!(read(s, &q, Position::Index(0), 1).await, ["a"]);
    assert_eq!(read(s, &q, Position::Index(3), 10).await, ["d", "e"]);
    assert!(read(s, &q, Position::Index(5), 10).await.is_empty());
    assert!(read(s, &q, Position::Index(u64::MAX), 10).await.is_empty());
    assert_eq!(read(s, &q, Position::FromId(id[2]), 10).await, ["c", "d", "e"]);
    assert_eq!(read(s, &q, Position::FromId(0), 1).await, ["a"]);
    assert_eq!(read(s, &q, Position::AfterId(id[2]), 10).await, ["d", "e"]);
    assert!(read(s, &q, Position::AfterId(id[4]), 10).await.is_empty());
    assert!(read(s, &q, Position::Start, 0).await.is_empty());
    let end = store.read(&q, Position::End, 10).await.unwrap();
    assert!(end.entries.is_empty());
    assert_eq!(end.last_id, Some(id[4]), "End gives the id to continue after");
    assert_eq!(store.stat(&q).await.unwrap().count, 5, "reads remove nothing");
}

/// Q14: positions count from the current head: after a take, index 0 is the new head and a
/// read from an id that was taken starts at the first entry still there.
pub async fn store_reads_count_positions_from_the_current_head(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("head");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    let first = try_push(&*store, &q, generation, &spec(), &numbered(0..30)).await.unwrap();
    store.take(&q, 11, AMO).await.unwrap();
    let s = &*store;
    assert_eq!(read(s, &q, Position::Index(0), 2).await, ["m11", "m12"]);
    assert_eq!(read(s, &q, Position::Index(10), 2).await, ["m21", "m22"]);
    assert_eq!(read(s, &q, Position::FromId(first + 3), 1).await, ["m11"]);
    assert_eq!(read(s, &q, Position::Start, 100).await, names(11..30));
}

/// Q14: a cursor continues after the last id it saw (or the one `End` gave) and sees exactly the
/// messages pushed after it.
pub async fn store_a_cursor_continuing_after_the_last_id_sees_only_new_messages(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("cursor");
    let generation = filled(&*store, &q, &spec(), &["old"]).await;
    let end = store.read(&q, Position::End, 10).await.unwrap();
    push(&*store, &q, generation, &spec(), &["new1", "new2"]).await;
    let batch = store.read(&q, Position::AfterId(end.last_id.unwrap()), 1).await.unwrap();
    assert_eq!(payloads(&batch.entries), ["new1"]);
    let next = Position::AfterId(batch.entries[0].id);
    assert_eq!(read(&*store, &q, next, 10).await, ["new2"]);
}

/// Q14: reading a queue that does not exist, or exists and is empty, gives no entries and no
/// newest id.
pub async fn store_reading_a_missing_or_empty_queue_gives_nothing(backend: &dyn Backend) {
    let store = connected(backend).await;
    let missing = store.read(&queue("missing"), Position::Start, 10).await.unwrap();
    assert_eq!(missing, ReadBatch::default());
    let q = queue("empty");
    store.attach(&q, &spec()).await.unwrap();
    assert_eq!(store.read(&q, Position::End, 10).await.unwrap(), ReadBatch::default());
    assert_eq!(store.read(&q, Position::Start, 10).await.unwrap(), ReadBatch::default());
}

/// Q14: a read from any id (one that exists, or falls between, before or after all of them)
/// starts at the first entry whose id is at least that, however pushes spread the ids.
pub async fn store_reads_from_any_id_find_the_first_entry_at_or_after_it(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("by-id");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    let mut next = 0u32;
    for round in 0..12u32 {
        let size = 1 + (round * 7 + 3) % 11;
        try_push(&*store, &q, generation, &spec(), &numbered(next..next + size)).await.unwrap();
        next += size;
        if round % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let all = ids(&store.read(&q, Position::Start, 10_000).await.unwrap().entries);
    assert_eq!(all.len(), next as usize);
    let mut probes: Vec<u64> = all.iter().flat_map(|&id| [id - 1, id, id + 1]).collect();
    probes.push(all[all.len() - 1] + 1000);
    for x in probes {
        let want: Vec<u64> = all.iter().copied().filter(|&id| id >= x).take(2).collect();
        let got = ids(&store.read(&q, Position::FromId(x), 2).await.unwrap().entries);
        assert_eq!(got, want, "from id {x}");
    }
}

/// Q14: a read deep into a long queue (with a head made irregular by restores) finds exactly
/// the entries at that index and id.
pub async fn store_reads_deep_into_a_long_queue_find_the_right_entries(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("deep");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    for batch in 0..6u32 {
        let range = batch * 500..(batch + 1) * 500;
        try_push(&*store, &q, generation, &spec(), &numbered(range)).await.unwrap();
    }
    let taken = store.take(&q, 5, AMO).await.unwrap().entries;
    assert_eq!(store.restore(&q, generation, &taken[2..]).await.unwrap(), Restored::Done);
    for pos in [0u64, 1, 2, 3, 17, 499, 1_500, 2_990, 2_997] {
        let want: Vec<String> = (pos + 2..(pos + 5).min(3_000)).map(|i| format!("m{i}")).collect();
        assert_eq!(read(&*store, &q, Position::Index(pos), 3).await, want, "index {pos}");
    }
    let at = store.read(&q, Position::Index(2_000), 1).await.unwrap().entries;
    let id = at[0].id;
    assert_eq!(read(&*store, &q, Position::FromId(id), 2).await, ["m2002", "m2003"]);
    assert_eq!(read(&*store, &q, Position::AfterId(id), 1).await, ["m2003"]);
}

/// Q14: retention by count keeps the newest `max_len` messages; a cursor behind the trimmed ones
/// skips them silently and indexes count from the oldest kept.
pub async fn store_retention_by_count_keeps_the_newest(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("max-len");
    let sp = QueueSpec { retention: Retention { max_len: Some(10), max_age: None }, ..spec() };
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    let first = try_push(&*store, &q, generation, &sp, &numbered(0..7)).await.unwrap();
    for i in 1..5 {
        try_push(&*store, &q, generation, &sp, &numbered(i * 7..(i + 1) * 7)).await.unwrap();
    }
    assert_eq!(store.stat(&q).await.unwrap().count, 10);
    assert_eq!(read(&*store, &q, Position::Start, 100).await, names(25..35));
    assert_eq!(read(&*store, &q, Position::FromId(first), 2).await, ["m25", "m26"]);
    assert_eq!(read(&*store, &q, Position::Index(8), 10).await, ["m33", "m34"]);
}

/// Q14: retention by age: a message older than `max_age` is never counted, read or taken.
pub async fn store_retention_by_age_never_returns_older_messages(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("max-age");
    let sp = QueueSpec { retention: Retention { max_len: None, max_age: Some(2 * SEC) }, ..spec() };
    let generation = store.attach(&q, &sp).await.unwrap().generation;
    try_push(&*store, &q, generation, &sp, &numbered(0..20)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(store.stat(&q).await.unwrap().count, 0, "old messages are not counted");
    try_push(&*store, &q, generation, &sp, &numbered(20..23)).await.unwrap();
    assert_eq!(read(&*store, &q, Position::Start, 100).await, names(20..23));
    assert_eq!(read(&*store, &q, Position::Index(0), 1).await, ["m20"]);
    assert_eq!(payloads(&store.take(&q, 100, AMO).await.unwrap().entries), names(20..23));
}

fn consumer(seq: u64) -> ConsumerId {
    ConsumerId::new(&ClientId::random(), seq)
}

fn register(id: &ConsumerId, kind: ConsumerKind, lease: Duration) -> ConsumerOp {
    ConsumerOp::Register { id: id.clone(), kind, lease }
}

/// Q15: a consumer of the other kind is refused with `MixedConsumers` (naming the queue and both
/// kinds) while one with an unexpired lease is registered; registering again just renews;
/// renewals keep the lease; unregistering or a lapsed lease frees the queue.
pub async fn store_consumers_of_the_other_kind_are_refused_until_their_lease_lapses(
    backend: &dyn Backend,
) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("mixed");
    a.attach(&q, &spec()).await.unwrap();
    let (removing, replaying) = (ConsumerKind::Removing, ConsumerKind::Replaying);
    let (one, two, three) = (consumer(1), consumer(2), consumer(3));
    a.consumers(&q, register(&one, removing, 30 * SEC)).await.unwrap();
    a.consumers(&q, register(&one, removing, 30 * SEC)).await.unwrap();
    a.consumers(&q, register(&two, removing, 3 * SEC)).await.unwrap();
    let err = b.consumers(&q, register(&three, replaying, 30 * SEC)).await.unwrap_err();
    let Error::MixedConsumers { queue: name, existing, requested } = &err else {
        panic!("expected MixedConsumers, got {err:?}");
    };
    assert_eq!((name.as_str(), *existing, *requested), (q.as_str(), "removing", "replaying"));

    a.consumers(&q, ConsumerOp::Unregister { id: one.clone() }).await.unwrap();
    a.consumers(&q, ConsumerOp::Unregister { id: one }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let renew = ConsumerOp::Renew { id: two.clone(), kind: removing, lease: 3 * SEC };
    a.consumers(&q, renew).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = b.consumers(&q, register(&three, replaying, 30 * SEC)).await.unwrap_err();
    assert!(matches!(err, Error::MixedConsumers { .. }), "the renewed lease still holds: {err}");

    let short = queue("lapse");
    a.attach(&short, &spec()).await.unwrap();
    a.consumers(&short, register(&two, removing, SEC)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.consumers(&short, register(&three, replaying, 30 * SEC)).await.unwrap();
    let err = a.consumers(&short, register(&consumer(4), removing, SEC)).await.unwrap_err();
    assert!(
        matches!(err, Error::MixedConsumers { existing: "replaying", requested: "removing", .. }),
        "{err}"
    );
    b.consumers(&short, ConsumerOp::Unregister { id: three }).await.unwrap();
    a.consumers(&short, register(&consumer(4), removing, SEC)).await.unwrap();
    let unknown = ConsumerOp::Unregister { id: consumer(9) };
    a.consumers(&queue("unknown"), unknown).await.unwrap();
}

/// Q15, Q4: closing a queue forgets its consumers: the next incarnation takes either kind.
pub async fn store_closing_a_queue_forgets_its_consumers(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("mixed-close");
    store.attach(&q, &spec()).await.unwrap();
    store.consumers(&q, register(&consumer(1), ConsumerKind::Removing, 60 * SEC)).await.unwrap();
    store.close(&q, None).await.unwrap();
    store.attach(&q, &spec()).await.unwrap();
    store.consumers(&q, register(&consumer(2), ConsumerKind::Replaying, 60 * SEC)).await.unwrap();
}
