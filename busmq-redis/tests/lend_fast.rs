//! lend_fast.lua against lend.lua: the same fast takes (lend, `LMPOP` of the loan key and
//! giveback.lua in one MULTI, as the client sends them) on two queues in the same state, one
//! through each lend script, leave the same keys, values, expiries and replies (or lend_fast
//! answers 'lend' and the whole MULTI writes nothing), so the common-case script cannot drift
//! from the full one.

mod common;

use common::fast::{Queue, load, server_time_ms};
use common::status;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use std::collections::BTreeMap;

const FAST: &str = include_str!("../lua/lend_fast.lua");
const LIB: &str = include_str!("../lua/lib.lua");
const FULL: &str = include_str!("../lua/lend.lua");
const GIVEBACK: &str = include_str!("../lua/giveback.lua");

/// What one MULTI answered: lend's reply, the pop's and giveback's.
#[derive(Debug, PartialEq)]
struct Answer {
    lent: Value,
    popped: Value,
    given_back: Value,
}

impl Answer {
    fn status(&self) -> String {
        status(&self.lent)
    }
}

/// The scripts, loaded.
struct Scripts {
    fast: Script,
    full: Script,
    giveback: Script,
}

impl Queue {
    /// The MULTI busmq-redis's `ops/take.rs` sends, with `lend` (loaded) as its first step.
    async fn take(
        &self,
        raw: &mut MultiplexedConnection,
        scripts: &Scripts,
        lend: &Script,
        want: usize,
        notices: bool,
    ) -> Answer {
        let eval = |script: &Script| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(script.get_hash()).arg(6).arg(self.keys());
            cmd
        };
        let mut first = eval(lend);
        first.arg(if notices { want } else { 0 });
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors().add_command(first);
        pipe.cmd("LMPOP").arg(1).arg(self.key("loan")).arg("LEFT").arg("COUNT").arg(want);
        pipe.add_command(eval(&scripts.giveback));
        let (lent, popped, given_back): (Value, Value, Value) =
            pipe.query_async(raw).await.unwrap();
        Answer { lent, popped, given_back }
    }

    async fn zadd(&self, raw: &mut MultiplexedConnection, name: &str, score: u64, member: &str) {
        let _: () = redis::cmd("ZADD")
            .arg(self.key(name))
            .arg(score)
            .arg(member)
            .query_async(raw)
            .await
            .unwrap();
    }
    /// [`common::snapshot`] of the queue, the lease's expiry only as whether it has one (it is
    /// set relative to each call's clock).
    async fn snapshot(&self, raw: &mut MultiplexedConnection) -> BTreeMap<String, (String, i64)> {
        let mut out = common::snapshot(raw, &self.prefix).await;
        if let Some((_, at)) = out.get_mut("n") {
            *at = at.signum();
        }
        out
    }
}

/// One step of the comparison: what it does, how many entries it wants, whether the caller
/// waits for notices, the pages to delete first, and whether lend_fast answers it itself.
type Step<'a> = (&'a str, usize, bool, &'a [&'a str], bool);

/// The reply with its last element (ms until the earliest delayed message is due) rounded to
/// tens of seconds: the two scripts read the clock a moment apart.
fn rounded(answer: Answer) -> Answer {
    let Value::Array(mut parts) = answer.lent else { return answer };
    if let Some(Value::BulkString(ms)) = parts.last_mut() {
        let text = String::from_utf8_lossy(ms).into_owned();
        if let Ok(n) = text.parse::<i64>() {
            *ms = if n < 0 { text.into_bytes() } else { format!("~{}", n / 10_000).into_bytes() };
        }
    }
    Answer { lent: Value::Array(parts), ..answer }
}

/// [`rounded`], as text with the queue's key prefix left out (replies name its keys).
fn plain(q: &Queue, answer: Answer) -> String {
    format!("{:?}", rounded(answer)).replace(&q.prefix, "<q>:")
}

#[tokio::test]
async fn lend_fast_leaves_what_lend_leaves() {
    let Some(server) = common::server("lend_fast_leaves_what_lend_leaves").await else {
        return;
    };
    let mut raw = common::raw(&server).await;
    let scripts = Scripts {
        fast: load(&mut raw, FAST).await,
        full: load(&mut raw, &format!("{LIB}\n{FULL}")).await,
        giveback: load(&mut raw, &format!("{LIB}\n{GIVEBACK}")).await,
    };
    let (a, b) = (Queue::new("fast"), Queue::new("full"));
    let now_ms = server_time_ms(&mut raw).await;
    let expiry_ms = now_ms + 60_000;
    a.plant_entries(&mut raw, expiry_ms, 60).await;
    b.plant_entries(&mut raw, expiry_ms, 60).await;
    assert_eq!(a.snapshot(&mut raw).await.len(), b.snapshot(&mut raw).await.len());

    // A delayed message that is not due yet: both say when it will be.
    for q in [&a, &b] {
        q.zadd(&mut raw, "d", now_ms + 3_600_000, "31:0:0:later").await;
    }
    // Each step on both queues: lend_fast must answer (not 'lend') exactly where `fast_answers`
    // says, with lend.lua's replies and effects. `drained` deletes pages first, as consumers
    // popping them (BLMPOP) would.
    let steps: Vec<Step<'_>> = vec![
        ("three from the head page", 3, true, &[], true),
        ("more than the head page holds: one page lent", 10, true, &[], true),
        ("a whole page", 4, false, &[], true),
        ("two drained head pages to skip", 2, true, &["p:2", "p:3"], true),
        (
            "five drained head pages: lend.lua's walk",
            2,
            true,
            &["p:4", "p:5", "p:6", "p:7", "p:8"],
            false,
        ),
    ];
    for (what, want, notices, drained, fast_answers) in steps {
        for q in [&a, &b] {
            q.del(&mut raw, drained).await;
        }
        let before = a.snapshot(&mut raw).await;
        let ra = a.take(&mut raw, &scripts, &scripts.fast, want, notices).await;
        assert_eq!(ra.status() != "lend", fast_answers, "{what}: lend_fast answered {ra:?}");
        let ra = if fast_answers {
            ra
        } else {
            assert_eq!(a.snapshot(&mut raw).await, before, "{what}: 'lend' writes nothing");
            // The client sends the same MULTI with lend.lua.
            a.take(&mut raw, &scripts, &scripts.full, want, notices).await
        };
        let rb = b.take(&mut raw, &scripts, &scripts.full, want, notices).await;
        assert_eq!(plain(&a, ra), plain(&b, rb), "{what}: replies");
        assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "{what}: keys");
    }

    // Taking everything left, a page at a time, then from the empty queue: the page the next
    // push appends to, and the notice lease when the caller waits for notices.
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes < 20, "the queue never came back empty");
        let ra = a.take(&mut raw, &scripts, &scripts.fast, 100, false).await;
        let empty = ra.status() == "empty";
        assert_eq!(ra.status(), if empty { "empty" } else { "lent" }, "{ra:?}");
        let rb = b.take(&mut raw, &scripts, &scripts.full, 100, false).await;
        assert_eq!(plain(&a, ra), plain(&b, rb), "pass {passes}: replies");
        assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "pass {passes}: keys");
        if empty {
            break;
        }
    }
    for q in [&a, &b] {
        q.del(&mut raw, &["n"]).await;
    }
    let ra = a.take(&mut raw, &scripts, &scripts.fast, 5, true).await;
    assert_eq!(ra.status(), "empty", "{ra:?}");
    let rb = b.take(&mut raw, &scripts, &scripts.full, 5, true).await;
    assert_eq!(plain(&a, ra), plain(&b, rb));
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "empty, waiting");
    assert!(a.snapshot(&mut raw).await.contains_key("n"), "the lease was taken");

    // A missing queue: 'missing' from both, and the lease for a caller waiting for notices.
    let (ma, mb) = (Queue::new("missing-fast"), Queue::new("missing-full"));
    let ra = ma.take(&mut raw, &scripts, &scripts.fast, 5, true).await;
    assert_eq!(ra.status(), "missing", "{ra:?}");
    let rb = mb.take(&mut raw, &scripts, &scripts.full, 5, true).await;
    assert_eq!(plain(&ma, ra), plain(&mb, rb));
    let (sa, sb) = (ma.snapshot(&mut raw).await, mb.snapshot(&mut raw).await);
    assert_eq!(sa, sb);
    assert!(sa.contains_key("n"), "the lease on a missing queue");

    // Where take.lua takes, both answer 'slow' and write nothing: released entries, takeable
    // side entries, retention by age. Where lend.lua must decide, lend_fast answers 'lend' and
    // writes nothing: a delayed message due, an incomplete meta hash, a meta hash without a
    // layout version (and the long walk above).
    for q in [&a, &b] {
        q.del(&mut raw, &["d", "n"]).await;
    }
    let (c, d) = (Queue::new("slow-fast"), Queue::new("slow-full"));
    let cases: [(&str, &str, &str, &str, &str); 6] = [
        ("released entries", "zadd", "r", "2:0:0:back", "slow"),
        ("side entries", "zadd", "h", "3:0:0:side", "slow"),
        ("retention by age", "hset", "rage", "1000", "slow"),
        ("a delayed message due", "zadd", "d", "7:0:0:due", "lend"),
        ("an incomplete meta hash", "hset", "ttl", "", "lend"),
        ("no layout version", "hdel", "v", "", "lend"),
    ];
    for (what, how, name, value, answer) in cases {
        for q in [&c, &d] {
            q.del(&mut raw, &["m", "d", "r", "h", "n", "p:0", "p:1"]).await;
            q.plant_entries(&mut raw, expiry_ms, 6).await;
            let mut change = redis::cmd(how);
            match how {
                "zadd" => change.arg(q.key(name)).arg(now_ms - 1).arg(value),
                "hset" => change.arg(q.key("m")).arg(name).arg(value),
                _ => change.arg(q.key("m")).arg(name),
            };
            let _: () = change.query_async(&mut raw).await.unwrap();
        }
        let before = c.snapshot(&mut raw).await;
        let ra = c.take(&mut raw, &scripts, &scripts.fast, 2, true).await;
        assert_eq!(ra.status(), answer, "{what}: {ra:?}");
        assert_eq!(ra.popped, Value::Nil, "{what}");
        assert_eq!(c.snapshot(&mut raw).await, before, "{what}: lend_fast writes nothing");
        if answer == "slow" {
            let rb = d.take(&mut raw, &scripts, &scripts.full, 2, true).await;
            assert_eq!(plain(&c, ra), plain(&d, rb), "{what}: replies");
            assert_eq!(d.snapshot(&mut raw).await, before, "{what}: lend.lua writes nothing");
        }
    }
}
