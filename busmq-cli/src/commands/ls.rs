//! `busmq ls`: the queues of the namespace, one row each. The names come from the store's
//! listing (Redis: SCAN steps, never KEYS); each row is one `stat`, a few at a time. Nothing
//! is attached, consumed or changed.

use crate::connect::Connected;
use crate::exit::CliResult;
use crate::output::{Out, human_duration};
use busmq::store::QueueStat;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

/// Queues stat'ed at the same time: enough to hide round trips, few enough not to flood.
const CONCURRENT_STATS: usize = 16;

pub(crate) async fn run(connected: Connected, out: &Out) -> CliResult {
    let bus = &connected.bus;
    let names = bus.queues().await?;
    let stats: Vec<(String, QueueStat)> = futures::stream::iter(names)
        .map(|name| async move {
            let stat = bus.queue(name.as_str())?.stat().await?;
            Ok::<_, busmq::Error>((name.to_string(), stat))
        })
        .buffered(CONCURRENT_STATS)
        .try_collect()
        .await?;
    // A queue that expired between the listing and its stat is gone: not shown.
    let stats: Vec<_> = stats.into_iter().filter(|(_, stat)| stat.exists).collect();
    if out.json {
        let queues: Vec<Value> = stats.iter().map(|(name, stat)| row_json(name, stat)).collect();
        return out.document(&json!({ "namespace": connected.namespace, "queues": queues }));
    }
    if stats.is_empty() {
        out.note(format!("no queues in namespace {:?}", connected.namespace));
        return Ok(());
    }
    let mut table =
        out.table(&["QUEUE", "DEPTH", "PENDING", "CONSUMERS", "TTL", "MAXSIZE", "QUARANTINED"]);
    for (name, stat) in &stats {
        let spec = stat.spec.unwrap_or_default();
        table.add_row(vec![
            name.clone(),
            stat.count.to_string(),
            stat.pending.to_string(),
            stat.consumers.to_string(),
            human_duration(spec.ttl),
            spec.maxsize.map_or_else(|| "-".to_string(), |m| m.to_string()),
            stat.quarantined.to_string(),
        ]);
    }
    out.line(table.to_string())
}

/// One queue as `ls --json` lists it; `stat --json` adds its own fields to it.
pub(super) fn row_json(name: &str, stat: &QueueStat) -> Value {
    let spec = stat.spec.unwrap_or_default();
    json!({
        "name": name,
        "depth": stat.count,
        "pending": stat.pending,
        "consumers": stat.consumers,
        "ttl_ms": spec.ttl.as_millis() as u64,
        "maxsize": spec.maxsize,
        "quarantined": stat.quarantined,
        "last_id": stat.last_id,
    })
}
