//! Reads of a queue with side entries (priorities, ordering keys) over entries busmq did not
//! write (SPEC Q14, E3): a replaying read steps over a run of foreign page entries longer
//! than what it asks for and still returns what follows, merged by id with the side entries,
//! so a reader continuing from its last entry never stops short of the end.

mod common;

use busmq_core::Store;
use busmq_core::store::{Entry, NewEntry, Position, PushBatch};
use common::{inject, queue, spec};

fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_gets_past_a_foreign_run_next_to_side_entries() {
    let Some(srv) = common::server("a_read_gets_past_a_foreign_run_next_to_side_entries").await
    else {
        return;
    };
    // Pages of 8: the run of five foreign entries and the entries around it share page 0.
    let s = common::store(&[&srv]).await;
    let mut raw = common::raw(&srv).await;
    let q = queue("side-read-foreign");
    let att = s.attach(&q, &spec()).await.unwrap();
    let plain = |m: &'static str| vec![NewEntry::new(m)];
    let a = s.push(&q, &PushBatch::new(att.generation, &spec(), &plain("a"))).await.unwrap();
    inject(&mut raw, q.as_str(), 0, &[b"junk 1", b"junk 2", b"junk 3", b"junk 4", b"junk 5"]).await;
    let b = s.push(&q, &PushBatch::new(att.generation, &spec(), &plain("b"))).await.unwrap();
    let high = [NewEntry::new("high").with_priority(5)];
    let h = s.push(&q, &PushBatch::new(att.generation, &spec(), &high)).await.unwrap();
    let c = s.push(&q, &PushBatch::new(att.generation, &spec(), &plain("c"))).await.unwrap();

    // A reader asking for one at a time, as a cursor continues: past the foreign run each
    // time, in id order with the side entry.
    let mut got = Vec::new();
    let mut at = Position::Start;
    for _ in 0..4 {
        let r = s.read(&q, at, 1).await.unwrap();
        assert_eq!(r.entries.len(), 1, "one entry per read until the end (after {got:?}): {r:?}");
        at = Position::AfterId(r.entries[0].id);
        got.extend(payloads(&r.entries));
    }
    assert_eq!(got, ["a", "b", "high", "c"]);
    assert!(s.read(&q, at, 1).await.unwrap().entries.is_empty(), "then the end");

    // From an id, with room for all: the same four, the foreign run named once.
    let r = s.read(&q, Position::FromId(a), 10).await.unwrap();
    assert_eq!(payloads(&r.entries), ["a", "b", "high", "c"]);
    assert_eq!(r.entries.iter().map(|e| e.id).collect::<Vec<_>>(), [a, b, h, c]);
    assert_eq!(r.foreign.len(), 5, "{r:?}");
    // By index: the index counts the stepped-over entries as positions.
    let r = s.read(&q, Position::Index(0), 10).await.unwrap();
    assert_eq!(payloads(&r.entries), ["a", "b", "high", "c"]);
    common::stop(&s).await;
}
