//! baseline-pingpong-scripted: the raw ping-pong, but sending busmq's own Redis commands for a
//! channel message (an `EVALSHA` of `push_fast.lua` with a push's arguments, and a `BLMPOP` on
//! the queue's wake list and the page the next message lands in and the one after), from the
//! same raw client as baseline-pingpong. Between the two baselines lies what busmq's Redis
//! layout costs a round trip; between this one and channel-rtt, what busmq's client costs.

use super::measure::{Meter, Sample};
use super::payload;
use super::server::{Server, connect};
use super::stats::Histogram;
use super::support::{Ctx, HUNG, Progress, Tasks, deadline, unique};
use redis::Value;
use redis::aio::MultiplexedConnection;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const PUSH_FAST: &str = include_str!("../../../busmq-redis/lua/push_fast.lua");
/// busmq-redis's default page size (its `page_size` setting).
const PAGE: u64 = 4096;
/// The entries a blocking take asks for (a channel consumer's buffer is larger; a pop here
/// carries one entry either way).
const COUNT: u64 = 64;

/// One queue in busmq's layout (default namespace), planted as an attach leaves it.
struct Queue {
    prefix: String,
    /// The ids this side pushed so far: the next one goes above the last.
    last: u64,
    /// Messages popped so far: message `i` is in page `i / PAGE`.
    popped: u64,
}

impl Queue {
    async fn plant(conn: &mut MultiplexedConnection, label: &str) -> Result<Queue, String> {
        let prefix = format!("busmq:{{{}}}:", unique(label));
        let meta = format!("{prefix}m");
        let expiry_ms = now_us() / 1000 + 3_600_000;
        let page = PAGE.to_string();
        redis::cmd("HSET")
            .arg(&meta)
            .arg(&["v", "2", "gen", "1", "ttl", "3600000", "size", &page, "last", "0"])
            .arg(&["base", "0", "n", "0", "head", "0", "tail", "0", "max", "", "rlen", ""])
            .arg(&["rage", "", "exp", &expiry_ms.to_string()])
            .query_async::<()>(conn)
            .await
            .ctx("HSET")?;
        redis::cmd("PEXPIREAT")
            .arg(&meta)
            .arg(expiry_ms)
            .query_async::<()>(conn)
            .await
            .ctx("PEXPIREAT")?;
        Ok(Queue::named(prefix))
    }

    /// The same queue seen from another connection (nothing pushed or popped by it yet).
    fn named(prefix: String) -> Queue {
        Queue { prefix, last: 0, popped: 0 }
    }

    /// Pushes one entry as busmq's client does (ids proposed from this clock).
    async fn push(
        &mut self,
        conn: &mut MultiplexedConnection,
        sha: &str,
        body: &[u8],
    ) -> Result<(), String> {
        let first = now_us().max(self.last + 1);
        let mut entry = format!("{first}:0:0:").into_bytes();
        entry.extend_from_slice(body);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(sha).arg(6);
        for key in ["m", "t", "r", "z", "x", "c"] {
            cmd.arg(format!("{}{key}", self.prefix));
        }
        cmd.arg("1").arg(&["3600000", "", "", "", &PAGE.to_string()]).arg("1");
        cmd.arg(format!("{}ch", self.prefix)).arg(first).arg("").arg(entry);
        match cmd.query_async::<Value>(conn).await.ctx("EVALSHA push_fast")? {
            Value::Array(reply) if reply.first() == Some(&Value::BulkString(b"ok".to_vec())) => {
                self.last = first;
                Ok(())
            }
            // 'slow' (once per page, when a drained head page has pages after it) is push.lua's
            // to do, which this baseline does not carry: the run is short of a page per queue.
            other => Err(format!("push_fast answered {other:?}")),
        }
    }

    /// Blocks as busmq's resumed wait does, until one entry arrives.
    async fn pop(&mut self, conn: &mut MultiplexedConnection) -> Result<Vec<u8>, String> {
        let page = self.popped / PAGE;
        let got: Value = redis::cmd("BLMPOP")
            .arg(5)
            .arg(3)
            .arg(format!("{}wk", self.prefix))
            .arg(format!("{}p:{page}", self.prefix))
            .arg(format!("{}p:{}", self.prefix, page + 1))
            .arg("LEFT")
            .arg("COUNT")
            .arg(COUNT)
            .query_async(conn)
            .await
            .ctx("BLMPOP")?;
        let Value::Array(mut parts) = got else {
            return Err(format!("BLMPOP got nothing within 5 s ({got:?})"));
        };
        let Some(Value::Array(mut values)) = parts.pop() else {
            return Err("BLMPOP: unexpected reply".into());
        };
        let Some(Value::BulkString(entry)) = values.pop() else {
            return Err("BLMPOP: no entry".into());
        };
        self.popped += 1;
        Ok(entry)
    }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The body of an entry popped from a page (after `<id>:<deliveries>:<attr length>:`).
fn body(entry: &[u8]) -> &[u8] {
    let mut colons = 0;
    for (i, b) in entry.iter().enumerate() {
        if *b == b':' {
            colons += 1;
            if colons == 3 {
                return &entry[i + 1..];
            }
        }
    }
    entry
}

/// `n` round trips after `warm` unmeasured ones (together fewer than a page per queue).
pub(crate) async fn pingpong(
    server: &Server,
    size: usize,
    warm: u64,
    n: u64,
) -> Result<Sample, String> {
    if warm + n >= PAGE {
        return Err(format!("{} round trips cross a page of {PAGE}", warm + n));
    }
    let progress = Progress::new();
    let run = deadline(
        HUNG,
        "the scripted ping-pong",
        &progress,
        n,
        run(server, size, warm, n, &progress),
    );
    Box::pin(run).await
}

async fn run(
    server: &Server,
    size: usize,
    warm: u64,
    n: u64,
    progress: &Progress,
) -> Result<Sample, String> {
    let url = server.url();
    let mut near = connect(&url).await?;
    let mut far = connect(&url).await?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(PUSH_FAST)
        .query_async(&mut near)
        .await
        .ctx("SCRIPT LOAD")?;
    let mut ping = Queue::plant(&mut near, "fping").await?;
    let mut pong = Queue::plant(&mut near, "fpong").await?;
    let mut echo = Tasks::new();
    let (echo_ping, echo_pong) = (ping.prefix.clone(), pong.prefix.clone());
    let echo_sha = sha.clone();
    echo.spawn(async move {
        let mut ping = Queue::named(echo_ping);
        let mut pong = Queue::named(echo_pong);
        for _ in 0..warm + n {
            let entry = ping.pop(&mut far).await?;
            pong.push(&mut far, &echo_sha, body(&entry)).await?;
        }
        Ok::<(), String>(())
    });
    let mut latency = Histogram::default();
    let mut meter = None;
    for i in 0..warm + n {
        if i == warm {
            meter = Some(Meter::start(Some(server)).await?);
        }
        let message = payload::make(i, size);
        let started = Instant::now();
        ping.push(&mut near, &sha, message.as_bytes()).await?;
        let answer = pong.pop(&mut near).await?;
        if payload::read(body(&answer)).map(|s| s.seq) != Some(i) {
            return Err(format!("round trip {i} was answered with another message"));
        }
        if i >= warm {
            latency.record(started.elapsed());
            progress.received(1);
        }
    }
    let meter = meter.ok_or("no round trips to measure")?;
    let mut sample = meter.stop(n, size).await?;
    sample.latency = latency;
    echo.join().await?.pop().ok_or("no echo task")??;
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::body;

    #[test]
    fn body_skips_the_header() {
        assert_eq!(body(b"17:0:0:hello:world"), b"hello:world");
        assert_eq!(body(b"17:0:0:"), b"");
    }
}
