//! `busmq stat QUEUE`: everything the store reports about one queue, its dead letters and its
//! metadata, without changing anything. A queue that does not exist is exit 6.

use super::existing;
use super::ls::row_json;
use crate::connect::Connected;
use crate::exit::CliResult;
use crate::output::{Out, human_duration};
use serde_json::json;

pub(crate) async fn run(connected: Connected, out: &Out, name: String) -> CliResult {
    let bus = &connected.bus;
    let queue = existing(&connected, &name).await?;
    let stat = queue.stat().await?;
    let metadata = queue.metadata_all().await?;
    // A queue named within 4 bytes of the name limit has no default dead-letter queue.
    let dead = match bus.dead_letters(&name) {
        Ok(dlq) => Some(dlq.count().await?),
        Err(_) => None,
    };
    let spec = stat.spec.unwrap_or_default();
    if out.json {
        let metadata: serde_json::Map<String, serde_json::Value> =
            metadata.into_iter().map(|(k, v)| (k, v.into())).collect();
        let mut doc = row_json(&name, &stat);
        let extra = json!({
            "namespace": connected.namespace,
            "retain_count": spec.retention.max_len,
            "retain_ms": spec.retention.max_age.map(|a| a.as_millis() as u64),
            "generation": stat.generation,
            "dead_letters": dead,
            "metadata": metadata,
        });
        if let (Some(doc), serde_json::Value::Object(extra)) = (doc.as_object_mut(), extra) {
            doc.extend(extra);
        }
        return out.document(&doc);
    }
    let none = || "-".to_string();
    let mut table = out.table(&["FIELD", "VALUE"]);
    let rows = [
        ("queue", name.clone()),
        ("namespace", connected.namespace.clone()),
        ("depth", stat.count.to_string()),
        ("pending", stat.pending.to_string()),
        ("consumers", stat.consumers.to_string()),
        ("ttl", human_duration(spec.ttl)),
        ("maxsize", spec.maxsize.map_or_else(none, |m| m.to_string())),
        ("retain count", spec.retention.max_len.map_or_else(none, |n| n.to_string())),
        ("retain for", spec.retention.max_age.map_or_else(none, human_duration)),
        ("generation", stat.generation.map_or_else(none, |g| g.to_string())),
        ("last id", stat.last_id.map_or_else(none, |id| id.to_string())),
        ("quarantined", stat.quarantined.to_string()),
        ("dead letters", dead.map_or_else(none, |d| d.to_string())),
    ];
    for (field, value) in rows {
        table.add_row(vec![field.to_string(), value]);
    }
    for (key, value) in metadata {
        table.add_row(vec![format!("metadata {key}"), value]);
    }
    out.line(table.to_string())
}
