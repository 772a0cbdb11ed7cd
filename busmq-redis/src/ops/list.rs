//! Listing the queues of the namespace (the `Inspect` capability): one `SCAN <cursor> MATCH
//! <ns>:{*}:m COUNT <n>` step per page, over every instance in turn and, on a Redis Cluster,
//! over every master in turn. Never `KEYS`: each step is a short command that other clients'
//! commands interleave with, whatever the number of keys. Expired keys are not returned by
//! `SCAN` and a closed queue keeps only its tombstone, so only live queues are listed.
//!
//! The page cursor is `<instance>/<node>/<scan cursor>`, where `<node>` is the cluster
//! master's `host:port` (empty for other instances): where the walk goes on. A cluster's
//! masters are walked in address order; a failover or a slot move during the walk may make
//! it miss or repeat the queues that moved (as `SCAN` itself may on a server that resizes).
//!
//! Rights: `SCAN` (and on a cluster `CLUSTER SLOTS`) besides those of the queue operations;
//! only tools that list need them.

use crate::ops::call::Ctx;
use crate::session::instance::Instance;
use busmq_core::store::QueuePage;
use busmq_core::{Error, QueueName, Result};
use redis::Value;

/// Where a walk stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    instance: usize,
    /// The cluster master being walked (`None` elsewhere, and before a cluster's first).
    node: Option<(String, u16)>,
    scan: u64,
}

impl Cursor {
    const START: Cursor = Cursor { instance: 0, node: None, scan: 0 };

    fn parse(text: &str) -> Option<Cursor> {
        let (instance, rest) = text.split_once('/')?;
        let (node, scan) = rest.rsplit_once('/')?;
        let node = match node {
            "" => None,
            node => {
                let (host, port) = node.rsplit_once(':')?;
                Some((host.to_string(), port.parse().ok()?))
            }
        };
        Some(Cursor { instance: instance.parse().ok()?, node, scan: scan.parse().ok()? })
    }

    fn render(&self) -> String {
        let node = self.node.as_ref().map(|(h, p)| format!("{h}:{p}")).unwrap_or_default();
        format!("{}/{node}/{}", self.instance, self.scan)
    }
}

fn bad_cursor(text: &str) -> Error {
    Error::invalid_option("cursor", format!("{text:?} is not a cursor this store gave"))
}

pub(crate) async fn list_queues(ctx: &Ctx, cursor: Option<&str>, count: u32) -> Result<QueuePage> {
    let mut at = match cursor {
        None => Cursor::START,
        Some(text) => Cursor::parse(text).ok_or_else(|| bad_cursor(text))?,
    };
    let instances = &ctx.fleet.instances;
    let inst = instances.get(at.instance).ok_or_else(|| bad_cursor(cursor.unwrap_or("")))?;
    let fail = |e| ctx.context("list_queues", inst, None, None).error(e);
    let masters = inst.cluster_masters().await.map_err(fail)?;
    if inst.is_cluster() && at.node.as_ref().is_none_or(|node| !masters.contains(node)) {
        // The first master, or the one after a node that is no master any more.
        let after = at.node.take();
        at.node = masters.iter().find(|m| after.as_ref().is_none_or(|a| *m > a)).cloned();
        at.scan = 0;
    }
    let queues = match (&at.node, inst.is_cluster()) {
        // A cluster without masters has nothing to walk.
        (None, true) => Vec::new(),
        (node, _) => {
            let (next, queues) = scan(ctx, inst, node.as_ref(), at.scan, count).await?;
            at.scan = next;
            queues
        }
    };
    let next = if at.scan != 0 { Some(at) } else { advance(at, &masters, instances.len()) };
    Ok(QueuePage { queues, next: next.map(|c| c.render()) })
}

/// Where the walk goes once the current node is done: the next master of the cluster (in
/// address order), else the next instance, else nowhere.
fn advance(done: Cursor, masters: &[(String, u16)], instances: usize) -> Option<Cursor> {
    if let Some(node) = &done.node {
        if let Some(next) = masters.iter().find(|m| *m > node) {
            return Some(Cursor { node: Some(next.clone()), scan: 0, ..done });
        }
    }
    let instance = done.instance + 1;
    (instance < instances).then_some(Cursor { instance, node: None, scan: 0 })
}

/// One `SCAN` step on one node: the next scan cursor and the queues whose meta hashes it met.
async fn scan(
    ctx: &Ctx,
    inst: &Instance,
    node: Option<&(String, u16)>,
    cursor: u64,
    count: u32,
) -> Result<(u64, Vec<QueueName>)> {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor).arg("MATCH").arg(ctx.layout.meta_pattern()).arg("COUNT").arg(count.max(1));
    let node = node.map(|(host, port)| (host.as_str(), *port));
    let reply = inst.query_at(node, cmd).await;
    let reply = reply.map_err(|e| ctx.context("list_queues", inst, None, None).error(e))?;
    let malformed = || Error::Store {
        backend: "redis",
        operation: "list_queues",
        message: format!("redis {} answered SCAN with an unexpected reply", inst.identity()),
        retryable: false,
        source: None,
    };
    let Value::Array(parts) = reply else { return Err(malformed()) };
    let (Some(next), Some(Value::Array(keys))) = (parts.first(), parts.get(1)) else {
        return Err(malformed());
    };
    let next = match next {
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    };
    let next = next.ok_or_else(malformed)?;
    let queues = keys
        .iter()
        .filter_map(|key| match key {
            Value::BulkString(b) => std::str::from_utf8(b).ok(),
            _ => None,
        })
        .filter_map(|key| ctx.layout.queue_of_meta(key))
        // A tag that is no valid queue name was not written by busmq: not a queue.
        .filter_map(|name| QueueName::new(name).ok())
        .collect();
    Ok((next, queues))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let node = Cursor { instance: 0, node: Some(("::1".into(), 7000)), scan: 42 };
        let plain = Cursor { instance: 2, node: None, scan: 7 };
        for c in [node, plain, Cursor::START] {
            assert_eq!(Cursor::parse(&c.render()), Some(c.clone()), "{}", c.render());
        }
        for bad in ["", "x", "1/2", "a//3", "0/h:p/1", "0//-1", "0/h/1"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_finished_node_hands_over_to_the_next_master_then_the_next_instance() {
        let masters = vec![("10.0.0.1".to_string(), 7000), ("10.0.0.2".to_string(), 7000)];
        let on = |i: usize, node: Option<&(String, u16)>| Cursor {
            instance: i,
            node: node.cloned(),
            scan: 0,
        };
        assert_eq!(advance(on(0, Some(&masters[0])), &masters, 1), Some(on(0, Some(&masters[1]))));
        assert_eq!(advance(on(0, Some(&masters[1])), &masters, 1), None);
        assert_eq!(advance(on(0, None), &[], 3), Some(on(1, None)));
        assert_eq!(advance(on(2, None), &[], 3), None);
    }
}
