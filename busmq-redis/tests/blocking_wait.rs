//! The blocking take of idle at-most-once consumers (`BLMPOP` on the page the next push appends
//! to) against a real redis-server: whatever the push path, a woken consumer gets the entries
//! in push order, and the resume receipt of a pop that drained its page lets the next wait block
//! at once (the Store contract's blocking cases are in busmq-testkit).

mod common;

use busmq_core::Store;
use busmq_core::store::{Entry, NewEntry, PushBatch, Receipt, TakeMode};
use common::{queue, spec};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

fn msgs(range: std::ops::Range<u32>) -> Vec<NewEntry> {
    range.map(|i| NewEntry::new(format!("m{i}"))).collect()
}

fn payloads(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect()
}

/// Returns once a client of the server is blocked (the consumer's `BLMPOP`), or after 2 s.
async fn until_blocked(conn: &mut redis::aio::MultiplexedConnection) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let info: String = redis::cmd("INFO").arg("clients").query_async(conn).await.unwrap();
        let blocked = info
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if blocked > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// After a pop that drained its page, the consumer's next wait blocks on that page and the next
/// one. A push of 40 entries (append.lua, outside Lua) that fills the rest of the first page
/// and runs into the following ones must reach it from the first page on: Redis serves a
/// client blocked on several keys from the key signalled first, so the push has to give the
/// first page back before it writes the later ones. (The resumed wait lasts at most 100 ms; a
/// round in which the push came after it is inconclusive and repeated.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_blocked_on_two_pages_gets_a_page_crossing_push_in_order() {
    let Some(srv) = common::server("blocked_on_two_pages").await else {
        return;
    };
    // Page size 8 (the test store's): 3 entries leave 5 free places in page 0.
    let s = common::store(&[&srv]).await;
    let mut conn = common::raw(&srv).await;
    let cancel = Notify::new();
    let sp = spec();
    let mut conclusive = 0;
    for round in 0..5 {
        let q = queue(&format!("twopages{round}"));
        let att = s.attach(&q, &sp).await.unwrap();
        let blocking = s.blocking().expect("a single fixed instance can block");
        // A wait on the empty queue woken by a small push: its pop drains page 0.
        let none = Receipt::none();
        let waiting = blocking.take_wait(&q, 100, Duration::from_secs(5), &cancel, &none);
        let pushing = async {
            until_blocked(&mut conn).await;
            s.push(&q, &PushBatch::new(att.generation, &sp, &msgs(0..3))).await.unwrap()
        };
        let (first, _) = tokio::join!(waiting, pushing);
        let first = first.unwrap();
        assert_eq!(payloads(&first.entries), ["m0", "m1", "m2"]);
        assert!(!first.resume.is_empty(), "the pop drained its page: {first:?}");
        // The next wait, given that receipt, blocks on pages 0 and 1 at once.
        let waiting = blocking.take_wait(&q, 100, Duration::from_secs(5), &cancel, &first.resume);
        let pushing = async {
            until_blocked(&mut conn).await;
            s.push(&q, &PushBatch::new(att.generation, &sp, &msgs(3..43))).await.unwrap()
        };
        let (second, _) = tokio::join!(waiting, pushing);
        let mut got = second.unwrap().entries;
        if !got.is_empty() {
            conclusive += 1;
        }
        loop {
            let more = s.take(&q, 100, TakeMode::AtMostOnce).await.unwrap().entries;
            if more.is_empty() {
                break;
            }
            got.extend(more);
        }
        let expected: Vec<String> = (3..43).map(|i| format!("m{i}")).collect();
        assert_eq!(payloads(&got), expected, "round {round}: entries in push order");
        assert!(s.close(&q, Some(att.generation)).await.unwrap());
        if conclusive >= 2 {
            break;
        }
    }
    assert!(conclusive > 0, "no round had the consumer blocked when the push came");
    common::stop(&s).await;
}

/// A resume receipt that names no page of the queue (another queue's, or none of busmq's) is
/// ignored: the wait takes first, as without a receipt, and nothing ready is missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_receipt_of_another_queue_is_ignored() {
    let Some(srv) = common::server("a_resume_receipt_of_another_queue").await else {
        return;
    };
    let s = common::store(&[&srv]).await;
    let (q, other) = (queue("resume"), queue("resume-other"));
    let att = s.attach(&q, &spec()).await.unwrap();
    s.push(&q, &PushBatch::new(att.generation, &spec(), &msgs(0..2))).await.unwrap();
    let blocking = s.blocking().expect("a single fixed instance can block");
    let cancel = Notify::new();
    for resume in
        [Receipt::new(format!("busmq:{{{}}}:p:0", other.as_str()), 0), Receipt::new("not a key", 0)]
    {
        let wait = Duration::from_secs(5);
        let started = Instant::now();
        let taken = blocking.take_wait(&q, 1, wait, &cancel, &resume).await.unwrap();
        assert_eq!(taken.entries.len(), 1, "{resume:?}: the ready entry is taken at once");
        assert!(started.elapsed() < wait, "{resume:?}: it did not block first");
    }
    common::stop(&s).await;
}
