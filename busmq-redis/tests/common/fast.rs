//! What the fast-script comparisons (push_fast.rs, append_fast.rs, lend_fast.rs, claim_fast.rs)
//! share: a queue's keys planted behind busmq's back, scripts loaded by body, the server's clock.

use redis::Script;
use redis::aio::MultiplexedConnection;

/// One queue's keys (busmq's default namespace). Each comparison adds the calls of its own
/// script in an `impl Queue` of its own.
pub struct Queue {
    pub prefix: String,
}

impl Queue {
    pub fn new(label: &str) -> Queue {
        Queue { prefix: format!("busmq:{{{}}}:", super::queue(label).as_str()) }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The six keys every queue script is given (see lib.lua).
    pub fn keys(&self) -> Vec<String> {
        ["m", "t", "r", "z", "x", "c"].iter().map(|k| self.key(k)).collect()
    }

    pub async fn del(&self, raw: &mut MultiplexedConnection, names: &[&str]) {
        if names.is_empty() {
            return;
        }
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        let _: () = redis::cmd("DEL").arg(keys).query_async(raw).await.unwrap();
    }

    /// An empty live incarnation (generation 1, pages of 4, no maxsize or retention) expiring at
    /// `at_ms`, with that expiry in its meta hash (`exp`, as lib.lua's expire_all writes it) or
    /// without (a meta hash written before the field existed).
    pub async fn plant_empty(&self, raw: &mut MultiplexedConnection, at_ms: u64, exp_field: bool) {
        let meta = self.key("m");
        let _: () = redis::cmd("HSET")
            .arg(&meta)
            .arg(&["v", "2", "gen", "1", "ttl", "30000", "size", "4", "last", "0", "base", "0"])
            .arg(&["n", "0", "head", "0", "tail", "0", "max", "", "rlen", "", "rage", ""])
            .query_async(raw)
            .await
            .unwrap();
        if exp_field {
            let _: () =
                redis::cmd("HSET").arg(&meta).arg("exp").arg(at_ms).query_async(raw).await.unwrap();
        }
        let _: () = redis::cmd("PEXPIREAT").arg(&meta).arg(at_ms).query_async(raw).await.unwrap();
    }

    /// A live incarnation (pages of 4, no retention) holding `entries` entries from id 1 on,
    /// its keys expiring at `at_ms` (also in `exp`), as push.lua would have left it.
    pub async fn plant_entries(&self, raw: &mut MultiplexedConnection, at_ms: u64, entries: u64) {
        let _: () = redis::cmd("HSET")
            .arg(self.key("m"))
            .arg(&["v", "2", "gen", "1", "ttl", "30000", "size", "4", "base", "0", "head", "0"])
            .arg(&["max", "", "rlen", "", "rage", ""])
            .arg("last")
            .arg(entries)
            .arg("n")
            .arg(entries)
            .arg("tail")
            .arg(entries)
            .arg("exp")
            .arg(at_ms)
            .query_async(raw)
            .await
            .unwrap();
        for id in 1..=entries {
            let page = self.key(&format!("p:{}", (id - 1) / 4));
            let _: () = redis::cmd("RPUSH")
                .arg(&page)
                .arg(format!("{id}:0:0:e{id}"))
                .query_async(raw)
                .await
                .unwrap();
            let _: () =
                redis::cmd("PEXPIREAT").arg(&page).arg(at_ms).query_async(raw).await.unwrap();
        }
        let _: () =
            redis::cmd("PEXPIREAT").arg(self.key("m")).arg(at_ms).query_async(raw).await.unwrap();
    }
}

/// `body` loaded on the server (so that EVALSHA finds it).
pub async fn load(raw: &mut MultiplexedConnection, body: &str) -> Script {
    let _: String = redis::cmd("SCRIPT").arg("LOAD").arg(body).query_async(raw).await.unwrap();
    Script::new(body)
}

/// The server's clock in microseconds.
pub async fn server_time_us(raw: &mut MultiplexedConnection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query_async(raw).await.unwrap();
    s * 1_000_000 + us
}

/// The server's clock in milliseconds.
pub async fn server_time_ms(raw: &mut MultiplexedConnection) -> u64 {
    server_time_us(raw).await / 1000
}
