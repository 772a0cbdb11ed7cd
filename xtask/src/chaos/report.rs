//! The report: one row per (mode, fault) on the terminal and in `target/chaos.json`, and the
//! targets of issue 5 (and issue 16's per-key ones) checked against the rows. `held2` in the
//! table is the keyed modes' overlapped deliveries.

use super::checker::Verdict;
use serde::Serialize;

/// No fault may leave delivery stalled for longer than this after it ended.
pub(crate) const RECOVERY_TARGET_MS: u64 = 5_000;
/// Recovery of the reliable mode after a slow-consumer phase: from the phase's end to the first
/// delivery of a message pushed since it began (issue 14; it took seconds while each ack waited
/// for a timer tick of the harness's proxy). The phase's last 200 ms message may still be in
/// progress at its end, so this leaves about 300 ms for the backlog.
pub(crate) const SLOW_CONSUMER_TARGET_MS: u64 = 500;

/// The recovery target of a row.
fn recovery_target_ms(r: &Row) -> u64 {
    if r.mode == "reliable" && r.fault == "slow-consumer" {
        SLOW_CONSUMER_TARGET_MS
    } else {
        RECOVERY_TARGET_MS
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) mode: String,
    pub(crate) fault: String,
    pub(crate) pushed: u64,
    /// Pushes acknowledged to the producer.
    pub(crate) acked: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
    /// Keyed mode: deliveries handed out while another message of their key was held.
    pub(crate) overlapped: u64,
    /// Keyed mode: repeated deliveries that were not redeliveries.
    pub(crate) unexplained_duplicates: u64,
    /// The slowest recovery over the fault's occurrences (null when none recovered).
    pub(crate) recovery_ms: Option<u64>,
    pub(crate) recovery_median_ms: Option<u64>,
    /// How many times the fault was injected, and after how many delivery never resumed.
    pub(crate) faults: usize,
    pub(crate) stalls: usize,
    /// Anomalies the workers noticed.
    pub(crate) notes: Vec<String>,
}

impl Row {
    pub(crate) fn new(mode: &str, fault: &str, v: &Verdict, notes: Vec<String>) -> Row {
        let recovery = v.recovery_median_max();
        Row {
            mode: mode.to_string(),
            fault: fault.to_string(),
            pushed: v.pushed,
            acked: v.acked,
            delivered: v.delivered,
            lost: v.lost,
            duplicated: v.duplicated,
            reordered: v.reordered,
            overlapped: v.overlapped,
            unexplained_duplicates: v.unexplained_duplicates,
            recovery_ms: recovery.map(|(_, max)| max),
            recovery_median_ms: recovery.map(|(median, _)| median),
            faults: v.recoveries.len(),
            stalls: v.stalls(),
            notes,
        }
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

/// The table printed at the end.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<19} {:<24} {:>7} {:>7} {:>9} {:>5} {:>5} {:>5} {:>5} {:>9} {:>9} {:>6}\n",
        "mode",
        "fault",
        "pushed",
        "acked",
        "delivered",
        "lost",
        "dup",
        "reord",
        "held2",
        "rec.med",
        "rec.max",
        "stalls"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<19} {:<24} {:>7} {:>7} {:>9} {:>5} {:>5} {:>5} {:>5} {:>9} {:>9} {:>6}\n",
            r.mode,
            r.fault,
            r.pushed,
            r.acked,
            r.delivered,
            r.lost,
            r.duplicated,
            r.reordered,
            r.overlapped,
            opt(r.recovery_median_ms),
            opt(r.recovery_ms),
            r.stalls
        ));
        for note in &r.notes {
            out.push_str(&format!("    note: {note}\n"));
        }
    }
    out
}

/// The targets of issue 5 that a row misses. Reported but not required: losses of the modes
/// without `WAIT` after a failover (Redis replication is asynchronous), and duplicates of
/// at-most-once without `WAIT` after a failover (a take lost with the old master hands its
/// messages out again).
pub(crate) fn violations(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        // Sentinel and cluster failovers alike: replication is asynchronous.
        let failover = r.fault.starts_with("failover") || r.fault == "cluster-failover";
        let waits = r.mode.ends_with("+wait");
        let reliable = r.mode.starts_with("reliable");
        let what = format!("{} under {}", r.mode, r.fault);
        if reliable && r.lost > 0 && (!failover || waits) {
            out.push(format!("{what}: {} acknowledged pushes lost", r.lost));
        }
        if !reliable && r.duplicated > 0 && (!failover || waits) {
            out.push(format!("{what}: {} duplicates in at-most-once mode", r.duplicated));
        }
        // Delayed messages are delivered in due order, not push order, by design. Keyed ones
        // are ordered per key by state a failover without WAIT can lose (takes, acks, the
        // gates, the id counter): seen as 1-4 per run under failover-replica-lag, next to
        // ~170 lost pushes (docs/performance.md).
        let keyed_loss = r.mode.ends_with("+keyed") && failover && !waits;
        if r.reordered > 0 && !r.mode.ends_with("+delayed") && !keyed_loss {
            out.push(format!("{what}: {} reordered deliveries", r.reordered));
        }
        // Per key (SPEC P11): one held at a time, in push order. A failover without WAIT may
        // lose a take or an ack, which hands a message out again next to its key's next one;
        // `reliable+keyed+wait` must hold it under failovers too.
        if r.overlapped > 0 && (!failover || waits) {
            out.push(format!("{what}: {} deliveries while their key was held", r.overlapped));
        }
        // Under a failover, even with WAIT: `replicas_ack` covers pushes and at-most-once takes,
        // not reliable takes, so a take the new master never saw hands its messages out again
        // with the same delivery count (seen: 2 under failover-replica-lag, docs/performance.md).
        // Likewise a SIGKILL'd server with `appendfsync everysec` comes back without up to a
        // second of writes, a reliable take among them (seen: 1 under redis-restart).
        let loses_writes = failover || r.fault == "redis-restart";
        if r.unexplained_duplicates > 0 && !loses_writes {
            out.push(format!(
                "{what}: {} repeated deliveries without a higher delivery count",
                r.unexplained_duplicates
            ));
        }
        if r.stalls > 0 {
            out.push(format!("{what}: delivery never resumed after {} faults", r.stalls));
        }
        let target = recovery_target_ms(r);
        if let Some(max) = r.recovery_ms.filter(|m| *m > target) {
            out.push(format!("{what}: recovery took {max} ms (target {target} ms)"));
        }
        if !r.notes.is_empty() {
            out.push(format!("{what}: {}", r.notes.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: &str, fault: &str) -> Row {
        Row::new(mode, fault, &Verdict::default(), Vec::new())
    }

    #[test]
    fn targets_follow_the_issue() {
        let mut lost = row("reliable", "partition");
        lost.lost = 2;
        let mut failover_loss = row("reliable", "failover");
        failover_loss.lost = 2;
        let mut waited_loss = row("reliable+wait", "failover");
        waited_loss.lost = 1;
        let mut dup = row("at-most-once", "client-kill");
        dup.duplicated = 1;
        let mut redelivered = row("reliable", "client-kill");
        redelivered.duplicated = 5;
        let mut slow = row("reliable", "redis-restart");
        slow.recovery_ms = Some(RECOVERY_TARGET_MS + 1);
        let found = violations(&[lost, failover_loss, waited_loss, dup, redelivered, slow]);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("reliable under partition"));
        assert!(found[1].starts_with("reliable+wait under failover"));
        assert!(found[2].starts_with("at-most-once under client-kill"));
        assert!(found[3].contains("recovery took"));
    }

    #[test]
    fn a_reliable_slow_consumer_recovers_within_half_a_second() {
        let mut reliable = row("reliable", "slow-consumer");
        reliable.recovery_ms = Some(SLOW_CONSUMER_TARGET_MS + 1);
        let mut keyed = row("reliable+keyed", "slow-consumer");
        keyed.recovery_ms = Some(SLOW_CONSUMER_TARGET_MS + 1);
        let found = violations(&[reliable, keyed]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("reliable under slow-consumer: recovery took 501 ms"));
    }

    #[test]
    fn keyed_overlaps_reorders_and_unexplained_repeats_are_violations() {
        let mut overlapped = row("reliable+keyed", "redis-restart");
        overlapped.overlapped = 1;
        let mut reordered = row("reliable+keyed", "client-kill");
        reordered.reordered = 2;
        let mut repeated = row("reliable+keyed", "partition");
        repeated.unexplained_duplicates = 3;
        let mut failover = row("reliable+keyed", "failover");
        failover.overlapped = 1;
        failover.unexplained_duplicates = 1;
        failover.reordered = 4;
        let mut redelivered = row("reliable+keyed", "slow-consumer");
        redelivered.duplicated = 4;
        // A SIGKILL with `appendfsync everysec` may lose a take: reported, not a violation.
        let mut restarted = row("reliable+keyed", "redis-restart");
        restarted.unexplained_duplicates = 1;
        let rows = [overlapped, reordered, repeated, failover, redelivered, restarted];
        let found = violations(&rows);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].contains("while their key was held"));
        assert!(found[1].contains("reordered"));
        assert!(found[2].contains("without a higher delivery count"));
    }

    #[test]
    fn the_waited_keyed_mode_has_no_failover_exemption() {
        let mut failover = row("reliable+keyed+wait", "failover-replica-lag");
        failover.lost = 1;
        failover.reordered = 2;
        failover.overlapped = 3;
        // A reliable take lost with the old master: reported, not failed.
        failover.unexplained_duplicates = 4;
        let found = violations(&[failover]);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found.iter().all(|f| f.starts_with("reliable+keyed+wait under failover")));
        assert!(!found.iter().any(|f| f.contains("without a higher delivery count")));
    }

    #[test]
    fn delayed_deliveries_may_come_out_of_push_order_but_not_be_lost() {
        let mut reordered = row("reliable+delayed", "redis-restart");
        reordered.reordered = 7;
        let mut lost = row("reliable+delayed", "redis-restart");
        lost.lost = 1;
        let found = violations(&[reordered, lost]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("acknowledged pushes lost"));
    }

    #[test]
    fn batched_pushes_are_held_to_reliable_order_and_loss() {
        let mut reordered = row("reliable+batched", "failover");
        reordered.reordered = 1;
        let mut lost = row("reliable+batched", "partition");
        lost.lost = 32;
        // Asynchronous replication, as for `reliable`: reported, not failed.
        let mut failover_loss = row("reliable+batched", "failover-replica-lag");
        failover_loss.lost = 64;
        let found = violations(&[reordered, lost, failover_loss]);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].starts_with("reliable+batched under failover: 1 reordered"));
        assert!(found[1].starts_with("reliable+batched under partition: 32 acknowledged"));
    }
}
