//! append_fast.lua against append.lua: the same appends (prepare, `RPUSHX` of the entries and
//! commit in one MULTI, as the client sends them) on two queues in the same state, one through
//! each script, leave the same keys, values, expiries and replies (or append_fast answers
//! 'slow' and the whole MULTI writes nothing), so the common-case script cannot drift from the
//! full one.

mod common;

use common::fast::{Queue, load, server_time_us};
use common::status;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use std::collections::BTreeMap;

const FAST: &str = include_str!("../lua/append_fast.lua");
const LIB: &str = include_str!("../lua/lib.lua");
const FULL: &str = include_str!("../lua/append.lua");

/// What one MULTI answered: prepare's reply, how many values `RPUSHX` appended, commit's reply.
#[derive(Debug, PartialEq)]
struct Answer {
    prepared: Value,
    appended: Value,
    committed: Value,
}

impl Answer {
    fn status(&self) -> String {
        status(&self.prepared)
    }
}

impl Queue {
    /// The MULTI busmq-redis's `ops/push.rs` sends, with `script` (loaded) for both steps.
    async fn append(
        &self,
        raw: &mut MultiplexedConnection,
        script: &Script,
        first: u64,
        payloads: &[&str],
    ) -> Answer {
        let step = |mode: &str| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(script.get_hash()).arg(6).arg(self.keys()).arg(mode);
            cmd
        };
        let mut prepare = step("p");
        prepare.arg("1").arg(&["30000", "", "", "", "4"]).arg("1").arg(first).arg(payloads.len());
        let mut values = redis::cmd("RPUSHX");
        values.arg(self.key("in"));
        for (i, p) in payloads.iter().enumerate() {
            values.arg(format!("{}:0:0:{p}", first + i as u64));
        }
        let mut commit = step("c");
        commit.arg(self.key("ch")).arg(payloads.len()).arg(first);
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors().add_command(prepare).add_command(values).add_command(commit);
        let (prepared, appended, committed): (Value, Value, Value) =
            pipe.query_async(raw).await.unwrap();
        Answer { prepared, appended, committed }
    }

    /// Sets (a consumer waits for notices) or deletes the notice lease.
    async fn lease(&self, raw: &mut MultiplexedConnection, held: bool) {
        let mut cmd = redis::cmd(if held { "SET" } else { "DEL" });
        cmd.arg(self.key("n"));
        if held {
            cmd.arg("1");
        }
        let _: () = cmd.query_async(raw).await.unwrap();
    }

    async fn hset(&self, raw: &mut MultiplexedConnection, field: &str, value: &str) {
        let _: () = redis::cmd("HSET")
            .arg(self.key("m"))
            .arg(field)
            .arg(value)
            .query_async(raw)
            .await
            .unwrap();
    }
    /// [`common::snapshot`] of the queue.
    async fn snapshot(&self, raw: &mut MultiplexedConnection) -> BTreeMap<String, (String, i64)> {
        common::snapshot(raw, &self.prefix).await
    }
}

/// One step of the comparison: what it does, the first id proposed, the payloads, the pages to
/// delete first, and whether append_fast answers it itself.
type Step<'a> = (&'a str, u64, Vec<&'a str>, &'a [&'a str], bool);

async fn published(raw: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(raw).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
        .and_then(|l| l.split(',').next())
        .map_or(0, |n| n.parse::<u64>().unwrap())
}

#[tokio::test]
async fn append_fast_leaves_what_append_leaves() {
    compare("append_fast_leaves_what_append_leaves", true).await;
}

#[tokio::test]
async fn append_fast_leaves_what_append_leaves_on_a_meta_hash_without_its_expiry() {
    compare("append_fast_leaves_what_append_leaves_on_a_meta_hash_without_its_expiry", false).await;
}

async fn compare(test: &str, exp_field: bool) {
    let Some(server) = common::server(test).await else {
        return;
    };
    let mut raw = common::raw(&server).await;
    let fast = load(&mut raw, FAST).await;
    let full = load(&mut raw, &format!("{LIB}\n{FULL}")).await;
    let (a, b) = (Queue::new("fast"), Queue::new("full"));
    let now = server_time_us(&mut raw).await;
    let expiry_ms = now / 1000 + 60_000;
    a.plant_empty(&mut raw, expiry_ms, exp_field).await;
    b.plant_empty(&mut raw, expiry_ms, exp_field).await;
    let many: Vec<String> = (0..38).map(|i| format!("v{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let ten = &many[..10];

    // Each step on both queues: append_fast must answer (not 'slow') exactly where
    // `fast_answers` says, with append.lua's replies and effects. `drained` deletes pages first,
    // as consumers popping them would. Pages hold 4 entries.
    let steps: Vec<Step<'_>> = vec![
        ("into an empty queue, over ten pages", now, many.clone(), &[], true),
        ("onto a part-filled tail page", now + 100, vec!["a"], &[], true),
        ("filling the tail page to its end", now + 110, vec!["b"], &[], true),
        ("onto a page that does not exist yet", now + 120, vec!["c", "d"], &[], true),
        (
            "ids ahead of the clock (the tombstone keeps the last)",
            now + 500_000,
            ten[..5].to_vec(),
            &[],
            true,
        ),
        ("a stale proposal: refused by both", now + 130, vec!["e"], &[], true),
        ("two drained head pages to skip", now + 600_000, vec!["f"], &["p:0", "p:1"], true),
        (
            "five more: append.lua's walk",
            now + 600_010,
            vec!["g"],
            &["p:2", "p:3", "p:4", "p:5", "p:6"],
            false,
        ),
        ("three more", now + 600_020, vec!["h"], &["p:7", "p:8", "p:9"], true),
        ("every page drained", now + 600_030, vec!["i"], &["p:10", "p:11", "p:12"], true),
    ];
    for (what, first, payloads, drained, fast_answers) in steps {
        for q in [&a, &b] {
            q.del(&mut raw, drained).await;
        }
        let ra = a.append(&mut raw, &fast, first, &payloads).await;
        assert_eq!(ra.status() != "slow", fast_answers, "{what}: append_fast answered {ra:?}");
        if !fast_answers {
            // The client sends the same MULTI with append.lua.
            let again = a.append(&mut raw, &full, first, &payloads).await;
            assert_eq!(again, b.append(&mut raw, &full, first, &payloads).await, "{what}");
        } else {
            assert_eq!(ra, b.append(&mut raw, &full, first, &payloads).await, "{what}: replies");
        }
        assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "{what}: keys");
    }

    // A consumer waits for notices: both publish once.
    for q in [&a, &b] {
        q.lease(&mut raw, true).await;
    }
    let before = published(&mut raw).await;
    let ra = a.append(&mut raw, &fast, now + 600_040, &["j"]).await;
    assert_eq!(ra.status(), "ok");
    assert_eq!(published(&mut raw).await, before + 1, "append_fast publishes while one waits");
    let rb = b.append(&mut raw, &full, now + 600_040, &["j"]).await;
    assert_eq!(published(&mut raw).await, before + 2);
    assert_eq!(ra, rb);
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "after the notices");

    // A delayed message not due yet: both append.
    for q in [&a, &b] {
        let _: () = redis::cmd("ZADD")
            .arg(q.key("d"))
            .arg(now / 1000 + 3_600_000)
            .arg(format!("{}:0:0:later", now + 600_040))
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let ra = a.append(&mut raw, &fast, now + 600_050, &["k", "l"]).await;
    assert_eq!(ra.status(), "ok", "a delayed message not due: {ra:?}");
    assert_eq!(ra, b.append(&mut raw, &full, now + 600_050, &["k", "l"]).await);
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "a delayed message");

    // At maxsize, after a drained page to skip: both refuse with the same reply, and both
    // remember where the walk ended.
    for q in [&a, &b] {
        q.hset(&mut raw, "max", "3").await;
        let head: String =
            redis::cmd("HGET").arg(q.key("m")).arg("head").query_async(&mut raw).await.unwrap();
        q.del(&mut raw, &[&format!("p:{head}")]).await;
    }
    let ra = a.append(&mut raw, &fast, now + 600_060, ten).await;
    assert_eq!(ra.status(), "full", "{ra:?}");
    assert_eq!(ra, b.append(&mut raw, &full, now + 600_060, ten).await);
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "at maxsize");
    let ra = a.append(&mut raw, &fast, now + 600_070, &["m"]).await;
    assert_eq!(ra.status(), "ok", "one more fits under maxsize: {ra:?}");
    assert_eq!(ra, b.append(&mut raw, &full, now + 600_070, &["m"]).await);
    assert_eq!(a.snapshot(&mut raw).await, b.snapshot(&mut raw).await, "under maxsize");
    for q in [&a, &b] {
        q.hset(&mut raw, "max", "").await;
    }

    // What append_fast leaves to append.lua, writing nothing: another generation, retention,
    // an incomplete meta hash, a delayed message due, a leftover in key.
    let before = a.snapshot(&mut raw).await;
    let mut refusals = 0;
    for (field, value) in [("gen", "2"), ("rlen", "10"), ("rage", "1000"), ("ttl", ""), ("n", "x")]
    {
        let old: String =
            redis::cmd("HGET").arg(a.key("m")).arg(field).query_async(&mut raw).await.unwrap();
        a.hset(&mut raw, field, value).await;
        let reply = a.append(&mut raw, &fast, now + 600_080, &["n"]).await;
        assert_eq!(reply.status(), "slow", "{field} = {value}");
        assert_eq!(status(&reply.committed), "none", "{field} = {value}: {reply:?}");
        a.hset(&mut raw, field, &old).await;
        refusals += 1;
    }
    assert_eq!(a.snapshot(&mut raw).await, before, "'slow' writes nothing");
    let _: () = redis::cmd("ZADD")
        .arg(a.key("d"))
        .arg(now / 1000 - 1)
        .arg("0000000000000001:0:0:0:due")
        .query_async(&mut raw)
        .await
        .unwrap();
    let reply = a.append(&mut raw, &fast, now + 600_080, &["n"]).await;
    assert_eq!(reply.status(), "slow", "a delayed message is due");
    let _: () = redis::cmd("ZREM")
        .arg(a.key("d"))
        .arg("0000000000000001:0:0:0:due")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(refusals, 5);
    assert_eq!(a.snapshot(&mut raw).await, before, "'slow' writes nothing");

    // A leftover in key: append_fast leaves it to append.lua, which reports it as foreign.
    // The RPUSHX of either MULTI appends to it, but neither commit moves anything into the queue.
    let _: () =
        redis::cmd("RPUSH").arg(a.key("in")).arg("stray").query_async(&mut raw).await.unwrap();
    let reply = a.append(&mut raw, &fast, now + 600_080, &["n"]).await;
    assert_eq!(reply.status(), "slow", "a leftover in key");
    assert_eq!(status(&reply.committed), "none", "{reply:?}");
    let reply = a.append(&mut raw, &full, now + 600_080, &["n"]).await;
    match &reply.prepared {
        Value::ServerError(e) => {
            assert!(format!("{e:?}").contains("BUSMQFOREIGN"), "append.lua: {e:?}")
        }
        other => panic!("append.lua accepted a push over a leftover in key: {other:?}"),
    }
    assert_eq!(status(&reply.committed), "none", "{reply:?}");
    let mut after = a.snapshot(&mut raw).await;
    let stray = after.remove("in").expect("the leftover in key").0;
    assert!(stray.starts_with("[\"stray\""), "{stray}");
    assert_eq!(after, before, "nothing of the push reached the queue");
}
