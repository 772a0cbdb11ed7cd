//! claim_fast.lua against claim.lua: the same reliable takes (the claim script and the LRANGEs
//! of its segments in one MULTI, as the client sends them) on two queues in the same state, one
//! through each script, leave the same keys, values, expiries and replies (or claim_fast answers
//! 'slow' and the whole MULTI writes nothing), so the common-case script cannot drift from the
//! full one.

mod common;

use common::fast::{Queue, load, server_time_ms};
use common::status;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use std::collections::BTreeMap;

const FAST: &str = include_str!("../lua/claim_fast.lua");
const LIB: &str = include_str!("../lua/lib.lua");
const FULL: &str = include_str!("../lua/claim.lua");
/// The page segments the client moves inside Redis (`ops/reliable.rs`'s SEGMENTS).
const K: usize = 2;
const VISIBILITY_MS: u64 = 60_000;

/// What one MULTI answered: claim's reply and the LRANGE of each segment.
#[derive(Debug, PartialEq)]
struct Answer {
    claimed: Value,
    lists: Vec<Value>,
}

impl Queue {
    /// The MULTI busmq-redis's `ops/reliable.rs` sends, with `claim` (loaded) as its first
    /// step and `take` as the batch names' prefix.
    async fn take(
        &self,
        raw: &mut MultiplexedConnection,
        claim: &Script,
        take: &str,
        want: usize,
    ) -> Answer {
        let mut first = redis::cmd("EVALSHA");
        first.arg(claim.get_hash()).arg(6).arg(self.keys());
        first.arg(want).arg(take).arg(VISIBILITY_MS).arg(K);
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors().add_command(first);
        for s in 0..K + 2 {
            pipe.cmd("LRANGE").arg(self.key(&format!("b:{take}.{s}"))).arg(0).arg(-1);
        }
        let mut replies: Vec<Value> = pipe.query_async(raw).await.unwrap();
        let lists = replies.split_off(1);
        Answer { claimed: replies.pop().unwrap(), lists }
    }

    /// [`common::snapshot`] of the queue, with what depends on each call's clock blurred: the
    /// notice lease's expiry only as whether it has one, batch deadlines to tens of seconds.
    async fn snapshot(&self, raw: &mut MultiplexedConnection) -> BTreeMap<String, (String, i64)> {
        let mut out = common::snapshot(raw, &self.prefix).await;
        if let Some((_, at)) = out.get_mut("n") {
            *at = at.signum();
        }
        if out.contains_key("z") {
            let all: Vec<(String, u64)> = redis::cmd("ZRANGE")
                .arg(self.key("z"))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(raw)
                .await
                .unwrap();
            let blurred: Vec<(String, u64)> =
                all.into_iter().map(|(b, at)| (b, at / 10_000)).collect();
            out.get_mut("z").unwrap().0 = format!("{blurred:?}");
        }
        out
    }
}

/// The reply as text, the queue's key prefix left out and its clock-relative numbers (ms until
/// the earliest delayed message is due, and until the earliest batch deadline) rounded to tens
/// of seconds: the two scripts read the clock a moment apart.
fn plain(q: &Queue, answer: Answer) -> String {
    let mut answer = answer;
    if let Value::Array(parts) = &mut answer.claimed {
        let n = parts.len();
        for part in parts.iter_mut().skip(n.saturating_sub(2)) {
            if let Value::BulkString(ms) = part {
                let text = String::from_utf8_lossy(ms).into_owned();
                if let Ok(n) = text.parse::<i64>() {
                    *ms = if n < 0 { text.into_bytes() } else { format!("~{}", n / 10_000).into() };
                }
            }
        }
    }
    format!("{answer:?}").replace(&q.prefix, "<q>:")
}

/// One step of the comparison: what it does, how many entries it wants, the pages to delete
/// first (as consumers popping them would), and whether claim_fast answers it itself.
type Step<'a> = (&'a str, usize, &'a [&'a str], bool);

#[tokio::test]
async fn claim_fast_leaves_what_claim_leaves() {
    let Some(server) = common::server("claim_fast_leaves_what_claim_leaves").await else {
        return;
    };
    let mut raw = common::raw(&server).await;
    let fast = load(&mut raw, FAST).await;
    let full = load(&mut raw, &format!("{LIB}\n{FULL}")).await;
    let (a, b) = (Queue::new("fast"), Queue::new("full"));
    let now_ms = server_time_ms(&mut raw).await;
    let expiry_ms = now_ms + 600_000;
    a.plant_entries(&mut raw, expiry_ms, 80).await;
    b.plant_entries(&mut raw, expiry_ms, 80).await;
    // A delayed message that is not due yet: both say when it will be.
    for q in [&a, &b] {
        let _: () = redis::cmd("ZADD")
            .arg(q.key("d"))
            .arg(now_ms + 3_600_000)
            .arg("81:0:0:later")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let steps: Vec<Step<'_>> = vec![
        ("part of the head page, the first batches", 3, &[], true),
        ("the head page's last entry and part of the next page", 3, &[], true),
        ("up to a page's end: the head walks on", 2, &[], true),
        ("two whole pages", 8, &[], true),
        ("more than K pages: claim.lua's last segment", 10, &[], false),
        ("two drained head pages to skip", 2, &["p:6", "p:7"], true),
        ("up to a page's end before a drained one", 2, &["p:9"], true),
        (
            "five drained head pages: claim.lua's walk",
            2,
            &["p:10", "p:11", "p:12", "p:13", "p:14"],
            false,
        ),
        ("nothing wanted", 0, &[], true),
    ];
    for (i, (what, want, drained, fast_answers)) in steps.into_iter().enumerate() {
        for q in [&a, &b] {
            q.del(&mut raw, drained).await;
        }
        let take = format!("t{i}");
        let before = a.snapshot(&mut raw).await;
        let ra = a.take(&mut raw, &fast, &take, want).await;
        assert_eq!(status(&ra.claimed) != "slow", fast_answers, "{what}: {ra:?}");
        let ra = if fast_answers {
            ra
        } else {
            assert_eq!(a.snapshot(&mut raw).await, before, "{what}: 'slow' writes nothing");
            assert!(ra.lists.iter().all(|l| *l == Value::Array(vec![])), "{what}: {ra:?}");
            // The client sends the MULTI again with claim.lua.
            a.take(&mut raw, &full, &take, want).await
        };
        let rb = b.take(&mut raw, &full, &take, want).await;
        assert_eq!(plain(&a, ra), plain(&b, rb), "{what}: replies");
        assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "{what}: keys");
    }

    // Everything left, a page at a time, then from the empty queue: the notice lease.
    for q in [&a, &b] {
        q.del(&mut raw, &["n"]).await;
    }
    for pass in 0..40 {
        let take = format!("d{pass}");
        let ra = a.take(&mut raw, &fast, &take, 4).await;
        assert_eq!(status(&ra.claimed), "ok", "pass {pass}: {ra:?}");
        let short = ra.lists.iter().all(|l| *l == Value::Array(vec![]));
        let rb = b.take(&mut raw, &full, &take, 4).await;
        assert_eq!(plain(&a, ra), plain(&b, rb), "pass {pass}: replies");
        assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "pass {pass}: keys");
        if short {
            assert!(a.snapshot(&mut raw).await.contains_key("n"), "the lease was taken");
            break;
        }
        assert!(pass < 39, "the queue never came back empty");
    }

    // A missing queue: 'missing' from both, and the lease.
    let (ma, mb) = (Queue::new("missing-fast"), Queue::new("missing-full"));
    let ra = ma.take(&mut raw, &fast, "m", 5).await;
    assert_eq!(status(&ra.claimed), "missing", "{ra:?}");
    let rb = mb.take(&mut raw, &full, "m", 5).await;
    assert_eq!(plain(&ma, ra), plain(&mb, rb));
    let (sa, sb) = (ma.snapshot(&mut raw).await, mb.snapshot(&mut raw).await);
    assert_eq!(sa, sb);
    assert!(sa.contains_key("n"), "the lease on a missing queue");
}

/// Where claim.lua must decide, claim_fast answers 'slow' and writes nothing.
#[tokio::test]
async fn claim_fast_leaves_the_rest_to_claim() {
    let Some(server) = common::server("claim_fast_leaves_the_rest_to_claim").await else {
        return;
    };
    let mut raw = common::raw(&server).await;
    let fast = load(&mut raw, FAST).await;
    let now_ms = server_time_ms(&mut raw).await;
    let q = Queue::new("slow");
    let cases: [(&str, &str, &str, &str); 9] = [
        ("returned entries", "zadd", "r", "2:0:0:back"),
        ("takeable side entries", "zadd", "h", "3:0:0:side"),
        ("ordering keys waiting", "zadd", "kw", "k"),
        ("a wake list", "rpush", "wk", "1"),
        ("retention by age", "hset", "rage", "1000"),
        ("a delayed message due", "zadd", "d", "7:0:0:due"),
        ("a pending batch past its deadline", "zadd", "z", "old.1"),
        ("an incomplete meta hash", "hset", "ttl", ""),
        ("another layout", "hset", "v", "3"),
    ];
    for (what, how, name, value) in cases {
        q.del(&mut raw, &["m", "d", "r", "h", "kw", "wk", "z", "n", "p:0", "p:1"]).await;
        q.plant_entries(&mut raw, now_ms + 600_000, 6).await;
        let mut change = redis::cmd(how);
        match how {
            "zadd" => change.arg(q.key(name)).arg(now_ms - 1).arg(value),
            "rpush" => change.arg(q.key(name)).arg(value),
            _ => change.arg(q.key("m")).arg(name).arg(value),
        };
        let _: () = change.query_async(&mut raw).await.unwrap();
        let before = q.snapshot(&mut raw).await;
        let ra = q.take(&mut raw, &fast, "s", 2).await;
        assert_eq!(status(&ra.claimed), "slow", "{what}: {ra:?}");
        assert_eq!(q.snapshot(&mut raw).await, before, "{what}: claim_fast writes nothing");
    }
}
