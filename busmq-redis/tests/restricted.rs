//! Servers that disable `RENAME` and `SORT` (issue 17, `CommandSet`): against a `redis-server`
//! whose configuration file disables both (`rename-command ... ""`), `CommandSet::Auto` keeps
//! to the paths that avoid them, and large pushes, at-most-once and reliable takes give the
//! same results as on a full server; against a full server it keeps the fast paths; and
//! `CommandSet::Full` against the restricted server is refused at connect with
//! `InvalidOption` naming `command_set`, not a raw server error. Which paths ran is read from
//! the server's `INFO commandstats` (commands called inside scripts count too): only the fast
//! paths send `RPUSHX` and `LMPOP`, or call `RENAME` and `SORT`.

mod common;

use busmq_core::store::{NewEntry, PushBatch, Session, TakeMode};
use busmq_core::{Error, Store};
use busmq_redis::{CommandSet, RedisStore};
use busmq_testkit::redis::{RedisServer, require_or_skip};
use common::{queue, spec};
use std::time::Duration;

const RELIABLE: TakeMode =
    TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 10 };

/// A server without `RENAME` and `SORT`, as some managed providers run it.
async fn restricted_server(test: &str) -> Option<RedisServer> {
    require_or_skip(test)?;
    let builder = RedisServer::builder()
        .config("rename-command RENAME \"\"")
        .config("rename-command SORT \"\"");
    Some(builder.start().await.expect("redis-server starts"))
}

fn store(server: &RedisServer, commands: CommandSet) -> RedisStore {
    common::builder([server.url()]).page_size(8).command_set(commands).build().expect("valid")
}

/// How often the server ran `command` (inside scripts too), from `INFO commandstats`.
async fn calls(server: &RedisServer, command: &str) -> u64 {
    let mut conn = common::raw(server).await;
    let info: String =
        redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.expect("INFO");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// Pushes 64 entries in one batch (an append where the fast paths are on), takes 10 at most
/// once, 3 reliably (part of a page) and then 40 reliably (whole pages and more), and checks
/// that every entry came out once, in order.
async fn exercise(store: &RedisStore) {
    let q = queue("restricted");
    let att = store.attach(&q, &spec()).await.expect("attach");
    let batch: Vec<_> = (0..64).map(|i| NewEntry::new(format!("m{i}"))).collect();
    store.push(&q, &PushBatch::new(att.generation, &spec(), &batch)).await.expect("push");
    let mut got = Vec::new();
    for (max, mode) in [(10, TakeMode::AtMostOnce), (3, RELIABLE), (40, RELIABLE)] {
        let taken = store.take(&q, max, mode).await.expect("take");
        assert!(taken.foreign.is_empty() && taken.dead.is_empty());
        assert_eq!(taken.entries.len(), max as usize);
        got.extend(taken.entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()));
    }
    let want: Vec<_> = (0..53).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    let stat = store.stat(&q).await.expect("stat");
    assert_eq!((stat.count, stat.pending), (11, 43));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_avoids_rename_and_sort_where_the_server_disables_them() {
    let test = "auto_avoids_rename_and_sort_where_the_server_disables_them";
    let Some(server) = restricted_server(test).await else { return };
    let store = store(&server, CommandSet::Auto);
    store.connect().await.expect("connect");
    exercise(&store).await;
    for command in ["rpushx", "lmpop"] {
        assert_eq!(calls(&server, command).await, 0, "{command}: a fast path ran");
    }
    common::stop(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_keeps_the_fast_paths_and_restricted_avoids_them_on_a_full_server() {
    let Some(servers) =
        common::servers("auto_keeps_the_fast_paths_and_restricted_avoids_them", 2).await
    else {
        return;
    };
    let auto = store(&servers[0], CommandSet::Auto);
    auto.connect().await.expect("connect");
    exercise(&auto).await;
    for command in ["rpushx", "lmpop", "rename", "sort"] {
        assert!(calls(&servers[0], command).await > 0, "{command}: no fast path ran");
    }
    common::stop(&auto).await;

    let restricted = store(&servers[1], CommandSet::Restricted);
    restricted.connect().await.expect("connect");
    exercise(&restricted).await;
    for command in ["rpushx", "lmpop", "rename", "sort"] {
        assert_eq!(calls(&servers[1], command).await, 0, "{command}: a fast path ran");
    }
    common::stop(&restricted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_against_a_restricted_server_is_refused_with_a_typed_error() {
    let test = "full_against_a_restricted_server_is_refused_with_a_typed_error";
    let Some(server) = restricted_server(test).await else { return };
    let store = store(&server, CommandSet::Full);
    match store.connect().await {
        Err(Error::InvalidOption { option: "command_set", reason }) => {
            assert!(reason.contains("RENAME or SORT"), "{reason}");
            assert!(reason.contains(&format!("127.0.0.1:{}", server.port())), "{reason}");
        }
        other => panic!("expected InvalidOption naming command_set, got {other:?}"),
    }
    // Nothing of busmq was written.
    let mut conn = common::raw(&server).await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("busmq:*").query_async(&mut conn).await.unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_command_info_auto_avoids_them_and_full_fails_typed_at_the_first_need() {
    let test = "without_command_info_auto_avoids_them_and_full_fails_typed";
    if require_or_skip(test).is_none() {
        return;
    }
    let builder = RedisServer::builder()
        .config("rename-command RENAME \"\"")
        .config("rename-command SORT \"\"")
        .config("rename-command COMMAND \"\"");
    let server = builder.start().await.expect("redis-server starts");

    // Nothing to ask: Auto assumes the worst, which works.
    let auto = store(&server, CommandSet::Auto);
    auto.connect().await.expect("connect");
    exercise(&auto).await;
    common::stop(&auto).await;

    // Full is trusted, and the first operation that needs RENAME says what is wrong.
    let full = store(&server, CommandSet::Full);
    full.connect().await.expect("connect");
    let q = queue("full");
    let att = full.attach(&q, &spec()).await.expect("attach");
    let few = [NewEntry::new("a"), NewEntry::new("b")];
    full.push(&q, &PushBatch::new(att.generation, &spec(), &few)).await.expect("push.lua");
    match full.take(&q, 1, TakeMode::AtMostOnce).await {
        Err(Error::InvalidOption { option: "command_set", reason }) => {
            assert!(reason.contains("rename (in script lend"), "{reason}");
            assert!(reason.contains("CommandSet::Restricted"), "{reason}");
        }
        other => panic!("expected InvalidOption naming command_set, got {other:?}"),
    }
    common::stop(&full).await;
}
