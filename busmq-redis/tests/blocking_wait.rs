//! The blocking wait of idle at-most-once consumers (`BLMPOP` on the page the next push appends
//! to) against a real redis-server: whatever the push path, a woken consumer gets the entries
//! in push order.

mod common;

use busmq_core::Store;
use busmq_core::store::{ClientId, ConsumerId, Entry, NewEntry, TakeMode};
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
/// first page back before it writes the later ones. (The hinted wait lasts at most 100 ms; a
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
        let c = ConsumerId::new(&ClientId::random(), 1);
        // A wait on the empty queue woken by a small push: its pop drains page 0.
        let waiting = s.take_wait(&q, &c, 100, Duration::from_secs(5), &cancel);
        let pushing = async {
            until_blocked(&mut conn).await;
            s.push(&q, att.generation, &sp, &msgs(0..3)).await.unwrap()
        };
        let (first, _) = tokio::join!(waiting, pushing);
        assert_eq!(payloads(&first.unwrap().entries), ["m0", "m1", "m2"]);
        // The next wait blocks on pages 0 and 1 at once.
        let waiting = s.take_wait(&q, &c, 100, Duration::from_secs(5), &cancel);
        let pushing = async {
            until_blocked(&mut conn).await;
            s.push(&q, att.generation, &sp, &msgs(3..43)).await.unwrap()
        };
        let (second, _) = tokio::join!(waiting, pushing);
        let mut got = second.unwrap().entries;
        if !got.is_empty() {
            conclusive += 1;
        }
        loop {
            let more = s.take(&q, &c, 100, TakeMode::AtMostOnce).await.unwrap().entries;
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
