//! push_fast.lua against push.lua: the same pushes on two queues in the same state, one through
//! each script, leave the same keys, values, expiries and replies (or push_fast answers 'slow'
//! and writes nothing), so the common-case script cannot drift from the full one.

mod common;

use common::fast::{Queue, server_time_us};
use common::status;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use std::collections::BTreeMap;

const FAST: &str = include_str!("../lua/push_fast.lua");
const LIB: &str = include_str!("../lua/lib.lua");
const FULL: &str = include_str!("../lua/push.lua");

impl Queue {
    async fn push(
        &self,
        raw: &mut MultiplexedConnection,
        script: &Script,
        first: u64,
        payloads: &[&str],
    ) -> Value {
        let mut call = script.prepare_invoke();
        for key in self.keys() {
            call.key(key);
        }
        call.arg("1").arg(&["30000", "", "", "", "4"]).arg("1");
        call.arg(self.key("ch")).arg(first).arg("");
        for (i, p) in payloads.iter().enumerate() {
            call.arg(format!("{}:0:0:{p}", first + i as u64));
        }
        call.invoke_async(raw).await.unwrap()
    }

    /// Sets (a consumer waits for notices) or deletes the notice lease.
    async fn lease(&self, raw: &mut MultiplexedConnection, held: bool) {
        let key = self.key("n");
        let mut cmd = redis::cmd(if held { "SET" } else { "DEL" });
        cmd.arg(&key);
        if held {
            cmd.arg("1");
        }
        let _: () = cmd.query_async(raw).await.unwrap();
    }
    /// [`common::snapshot`] of the queue.
    async fn snapshot(&self, raw: &mut MultiplexedConnection) -> BTreeMap<String, (String, i64)> {
        common::snapshot(raw, &self.prefix).await
    }
}

#[tokio::test]
async fn push_fast_leaves_what_push_leaves() {
    compare("push_fast_leaves_what_push_leaves", true).await;
}

#[tokio::test]
async fn push_fast_leaves_what_push_leaves_on_a_meta_hash_without_its_expiry() {
    compare("push_fast_leaves_what_push_leaves_on_a_meta_hash_without_its_expiry", false).await;
}

async fn compare(test: &str, exp_field: bool) {
    let Some(server) = common::server(test).await else {
        return;
    };
    let mut raw = common::raw(&server).await;
    let fast = Script::new(FAST);
    let full = Script::new(&format!("{LIB}\n{FULL}"));
    let (a, b) = (Queue::new("fast"), Queue::new("full"));
    let now = server_time_us(&mut raw).await;
    let expiry_ms = now / 1000 + 60_000;
    a.plant_empty(&mut raw, expiry_ms, exp_field).await;
    b.plant_empty(&mut raw, expiry_ms, exp_field).await;

    // Each step on both queues: push_fast must answer (not 'slow') exactly where `fast_answers`
    // says, with push.lua's reply and effects.
    let steps: Vec<(&str, u64, Vec<&str>, bool)> = vec![
        ("one entry, ids as proposed", now, vec!["a"], true),
        ("crossing into a new page", now + 10, vec!["b", "c", "d", "e", "f"], true),
        ("ids ahead of the clock (the tombstone keeps the last)", now + 500_000, vec!["g"], true),
        ("a stale proposal: ids after the last", now + 20, vec!["h", "i"], true),
    ];
    for (what, first, payloads, fast_answers) in steps {
        let ra = a.push(&mut raw, &fast, first, &payloads).await;
        assert_eq!(status(&ra) != "slow", fast_answers, "{what}: push_fast answered {ra:?}");
        let rb = b.push(&mut raw, &full, first, &payloads).await;
        assert_eq!(ra, rb, "{what}: replies");
        assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "{what}: keys");
    }

    // A consumer waits for notices: both publish once.
    for q in [&a, &b] {
        q.lease(&mut raw, true).await;
    }
    let published = |raw: &mut MultiplexedConnection| {
        let mut raw = raw.clone();
        async move {
            let info: String =
                redis::cmd("INFO").arg("commandstats").query_async(&mut raw).await.unwrap();
            info.lines()
                .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
                .and_then(|l| l.split(',').next())
                .map_or(0, |n| n.parse::<u64>().unwrap())
        }
    };
    let before = published(&mut raw).await;
    let ra = a.push(&mut raw, &fast, now + 30, &["j"]).await;
    assert_eq!(published(&mut raw).await, before + 1, "push_fast publishes while a consumer waits");
    let rb = b.push(&mut raw, &full, now + 30, &["j"]).await;
    assert_eq!(published(&mut raw).await, before + 2);
    assert_eq!(ra, rb);
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "after the notices");

    // A delayed message not due yet, with a consumer waiting for notices and then without: both
    // push (push_fast does not answer 'slow') and publish only while the lease is there.
    for (step, lease) in [(31, true), (32, false)] {
        for q in [&a, &b] {
            let _: () = redis::cmd("ZADD")
                .arg(format!("{}d", q.prefix))
                .arg(now / 1000 + 3_600_000)
                .arg(format!("{}:0:0:later", now + step))
                .query_async(&mut raw)
                .await
                .unwrap();
            if !lease {
                q.lease(&mut raw, false).await;
            }
        }
        let before = published(&mut raw).await;
        let ra = a.push(&mut raw, &fast, now + step, &["early"]).await;
        assert_eq!(status(&ra), "ok", "a delayed message not due (lease {lease}): {ra:?}");
        assert_eq!(published(&mut raw).await, before + u64::from(lease), "lease {lease}");
        let rb = b.push(&mut raw, &full, now + step, &["early"]).await;
        assert_eq!(published(&mut raw).await, before + 2 * u64::from(lease), "lease {lease}");
        assert_eq!(ra, rb);
        assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "lease {lease}");
    }
    // Back to a waiting consumer and no delayed message for the steps below.
    for q in [&a, &b] {
        let _: () =
            redis::cmd("DEL").arg(format!("{}d", q.prefix)).query_async(&mut raw).await.unwrap();
        q.lease(&mut raw, true).await;
    }

    // The head page drained by pops with pages after it: load()'s walk, left to push.lua.
    for q in [&a, &b] {
        let _: () =
            redis::cmd("DEL").arg(format!("{}p:0", q.prefix)).query_async(&mut raw).await.unwrap();
    }
    let before = a.snapshot(&mut raw).await;
    let ra = a.push(&mut raw, &fast, now + 40, &["k"]).await;
    assert_eq!(status(&ra), "slow");
    assert_eq!(a.snapshot(&mut raw).await, before, "'slow' writes nothing");

    // At maxsize: both refuse with the same reply and write nothing.
    let _: () =
        redis::cmd("DEL").arg(format!("{}p:0", a.prefix)).query_async(&mut raw).await.unwrap();
    for q in [&a, &b] {
        // Back to the same state on both: push.lua walks past the drained page.
        let _ = q.push(&mut raw, &full, now + 40, &["k"]).await;
        let _: () = redis::cmd("HSET")
            .arg(format!("{}m", q.prefix))
            .arg("max")
            .arg("10")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "before maxsize");
    let before = a.snapshot(&mut raw).await;
    let ra = a.push(&mut raw, &fast, now + 50, &["l", "m"]).await;
    assert_eq!(status(&ra), "full", "{ra:?}");
    assert_eq!(ra, b.push(&mut raw, &full, now + 50, &["l", "m"]).await);
    assert_eq!(a.snapshot(&mut raw).await, before, "a refused push writes nothing");
    assert_eq!(b.snapshot(&mut raw).await, before);
    let ra = a.push(&mut raw, &fast, now + 60, &["l"]).await;
    assert_eq!(status(&ra), "ok", "one more fits under maxsize: {ra:?}");
    assert_eq!(ra, b.push(&mut raw, &full, now + 60, &["l"]).await);
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "at maxsize");

    // What push_fast leaves to push.lua, writing nothing: another generation, retention, an
    // incomplete meta hash, a delayed message due, a routed entry.
    let before = a.snapshot(&mut raw).await;
    let meta = format!("{}m", a.prefix);
    let mut refusals = 0;
    // (An incomplete meta hash is ForeignData, which push.lua reports.)
    for (field, value) in [("gen", "2"), ("rlen", "10"), ("rage", "1000"), ("ttl", ""), ("n", "x")]
    {
        let old: String =
            redis::cmd("HGET").arg(&meta).arg(field).query_async(&mut raw).await.unwrap();
        let _: () = redis::cmd("HSET")
            .arg(&meta)
            .arg(field)
            .arg(value)
            .query_async(&mut raw)
            .await
            .unwrap();
        let reply = a.push(&mut raw, &fast, now + 70, &["n"]).await;
        assert_eq!(status(&reply), "slow", "{field} = {value}");
        let _: () =
            redis::cmd("HSET").arg(&meta).arg(field).arg(old).query_async(&mut raw).await.unwrap();
        refusals += 1;
    }
    let _: () = redis::cmd("ZADD")
        .arg(format!("{}d", a.prefix))
        .arg(now / 1000 - 1)
        .arg("0000000000000001:0:0:0:due")
        .query_async(&mut raw)
        .await
        .unwrap();
    let reply = a.push(&mut raw, &fast, now + 70, &["n"]).await;
    assert_eq!(status(&reply), "slow", "a delayed message is due");
    let _: () =
        redis::cmd("DEL").arg(format!("{}d", a.prefix)).query_async(&mut raw).await.unwrap();
    let mut routed = fast.prepare_invoke();
    for key in a.keys() {
        routed.key(key);
    }
    routed.arg("1").arg(&["30000", "", "", "", "4"]).arg("1").arg("ch").arg(now + 70).arg("r");
    routed.arg("1").arg(format!("{}:0:0:x", now + 70));
    let reply: Value = routed.invoke_async(&mut raw).await.unwrap();
    assert_eq!(status(&reply), "slow", "a routed entry");
    assert_eq!(refusals, 5);
    assert_eq!(a.snapshot(&mut raw).await, before, "'slow' writes nothing");
}
