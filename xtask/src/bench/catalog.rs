//! Every scenario the bench reports, in report order: what it is compared with, which figure
//! that ratio compares, and the targets issues 7 and 14 set (all as ratios measured in the same run).

use super::figure::{Figure, Goal, Scenario, scenario};

const E2E: &str = "end to end";
/// Throughput runs push as fast as they can, so their latency includes the backlog.
const SATURATED: &str = "end to end, saturated";
/// From the push call until the push has its id.
const PUSH_ID: &str = "push until its id";

/// Issue 14's channel targets, on either runtime.
const CHANNEL_TARGETS: &[(Figure, Goal)] = &[
    (Figure::P50, Goal::AtMost(1.5)),
    (Figure::P99, Goal::AtMost(2.0)),
    (Figure::RedisCpu, Goal::AtMost(2.0)),
];

pub(crate) const SCENARIOS: &[Scenario] = &[
    scenario(
        "baseline-list",
        None,
        Figure::Rate,
        &[],
        SATURATED,
        "raw RPUSH of 100 values (3 in flight) + LPOP 100, one connection each side",
    ),
    scenario(
        "baseline-list-api",
        Some("baseline-list"),
        Figure::Rate,
        &[],
        SATURATED,
        "baseline-list behind queue-1x1's API shape: a future per push (256 in flight), coalesced \
         RPUSH, a stream fed by LPOP 100",
    ),
    scenario(
        "baseline-list-ids",
        Some("baseline-list"),
        Figure::Rate,
        &[],
        SATURATED,
        "baseline-list-api plus the per-message work busmq's SPEC asks for: a copy of the pushed \
         message, an id in a stored header, the push resolved to it, the header read back",
    ),
    Scenario {
        needs: &["baseline-list-api"],
        floor: Some("baseline-list-ids"),
        ..scenario(
            "queue-1x1",
            Some("baseline-list"),
            Figure::Rate,
            &[(Figure::Rate, Goal::AtLeast(0.7)), (Figure::ClientCpu, Goal::AtMost(1.5))],
            SATURATED,
            "1 queue, 1 producer (push, 256 in flight), 1 consumer, at most once",
        )
    },
    scenario(
        "queue-1x1/push_all",
        Some("baseline-list"),
        Figure::Rate,
        &[(Figure::Rate, Goal::AtLeast(0.7))],
        SATURATED,
        "as queue-1x1, push_all of 100 (3 in flight)",
    ),
    scenario(
        "queue-1x1/dedupe",
        Some("queue-1x1"),
        Figure::Rate,
        &[],
        SATURATED,
        "as queue-1x1, every push with its own dedupe key (one store call per push)",
    ),
    scenario(
        "queue-100",
        Some("queue-1x1"),
        Figure::Rate,
        &[(Figure::Rate, Goal::AtLeast(0.7))],
        SATURATED,
        "100 queues, a producer (push, 256 in flight) and a consumer each, aggregate",
    ),
    scenario(
        "cluster-100",
        Some("queue-100"),
        Figure::Rate,
        &[],
        SATURATED,
        "queue-100 on a Redis Cluster of 3 masters + 3 replicas, pinned like redis-server",
    ),
    scenario(
        "reliable-1",
        Some("queue-1x1"),
        Figure::Rate,
        &[(Figure::Rate, Goal::AtLeast(0.5))],
        SATURATED,
        "1 reliable consumer, every delivery acked (256 acks in flight)",
    ),
    scenario(
        "reliable-4",
        Some("reliable-1"),
        Figure::Rate,
        &[(Figure::Rate, Goal::AtLeast(1.0))],
        SATURATED,
        "4 reliable consumers of one queue, acks as reliable-1",
    ),
    scenario(
        "keyed-4",
        Some("reliable-4"),
        Figure::Rate,
        &[],
        SATURATED,
        "reliable-4 with 1,000 ordering keys (message n has key n % 1000): one held per key",
    ),
    scenario(
        "keyed-4/runs",
        Some("reliable-4"),
        Figure::Rate,
        &[],
        SATURATED,
        "keyed-4 with runs of 100 consecutive messages per key (pushes of a key coalesce)",
    ),
    scenario(
        "drain-1x1",
        None,
        Figure::Rate,
        &[],
        "",
        "50,000 messages pushed (256 in flight), then taken by one at-most-once consumer",
    ),
    Scenario {
        needs: &["queue-1x1"],
        ..scenario(
            "priority-mix",
            Some("drain-1x1"),
            Figure::Rate,
            &[],
            "",
            "drain-1x1 with levels 0..=9 (runs of 100 per level); taken by level, then in order",
        )
    },
    scenario(
        "reliable-1/await-each",
        Some("reliable-1"),
        Figure::Rate,
        &[],
        SATURATED,
        "as reliable-1, each ack awaited before the next message (a plain loop)",
    ),
    scenario(
        "baseline-pingpong",
        None,
        Figure::P50,
        &[],
        "round trip",
        "raw LPUSH + BLPOP ping-pong between two connections",
    ),
    scenario(
        "baseline-pingpong-scripted",
        Some("baseline-pingpong"),
        Figure::P50,
        &[],
        "round trip",
        "raw client sending channel-rtt's Redis commands: EVALSHA push_fast.lua + BLMPOP",
    ),
    Scenario {
        floor: Some("baseline-pingpong-scripted"),
        ..scenario(
            "channel-rtt",
            Some("baseline-pingpong"),
            Figure::P50,
            CHANNEL_TARGETS,
            "round trip",
            "channel send + echo between two buses",
        )
    },
    Scenario {
        needs: &["channel-rtt"],
        ..scenario(
            "service-rtt",
            Some("baseline-pingpong"),
            Figure::P50,
            &[],
            "round trip",
            "service request + reply between two buses, one server",
        )
    },
    Scenario {
        needs: &["reliable-1"],
        ..scenario(
            "service-throughput",
            Some("reliable-4"),
            Figure::Rate,
            &[],
            "request round trip, 64 in flight",
            "requests answered per second: 4 servers, 64 requests in flight",
        )
    },
    scenario(
        "baseline-paced",
        None,
        Figure::P50,
        &[],
        E2E,
        "raw list paced at latency-paced's rate",
    ),
    Scenario {
        needs: &["queue-1x1"],
        ..scenario(
            "latency-paced",
            Some("baseline-paced"),
            Figure::P50,
            &[],
            E2E,
            "queue-1x1 paced at half of queue-1x1's rate",
        )
    },
    scenario(
        "baseline-paced-2k",
        None,
        Figure::P50,
        &[],
        E2E,
        "raw list (RPUSH, LPOP or BLPOP) paced at 2,000 msg/s",
    ),
    scenario(
        "paced-2k",
        Some("baseline-paced-2k"),
        Figure::P50,
        &[(Figure::P50, Goal::AtMost(2.0))],
        E2E,
        "one queue paced at 2,000 msg/s, one at-most-once consumer",
    ),
    scenario(
        "dedupe-push/plain",
        None,
        Figure::P50,
        &[],
        PUSH_ID,
        "one queue paced at 2,000 msg/s, plain pushes, interleaved with dedupe-push",
    ),
    scenario(
        "dedupe-push",
        Some("dedupe-push/plain"),
        Figure::P50,
        &[],
        PUSH_ID,
        "as dedupe-push/plain, every push with a dedupe key of its own",
    ),
    scenario(
        "delayed-lateness",
        Some("paced-2k"),
        Figure::P50,
        &[],
        "lateness after the due time",
        "10,000 delayed messages coming due at 2,000/s, one at-most-once consumer",
    ),
    scenario(
        "baseline-paced-2k/current-thread",
        None,
        Figure::P50,
        &[],
        E2E,
        "baseline-paced-2k, client on a current-thread runtime",
    ),
    scenario(
        "paced-2k/current-thread",
        Some("baseline-paced-2k/current-thread"),
        Figure::P50,
        &[(Figure::P50, Goal::AtMost(2.0))],
        E2E,
        "paced-2k, client on a current-thread runtime",
    ),
    scenario(
        "baseline-pingpong/current-thread",
        None,
        Figure::P50,
        &[],
        "round trip",
        "baseline-pingpong, client on a current-thread runtime",
    ),
    scenario(
        "baseline-pingpong-scripted/current-thread",
        Some("baseline-pingpong/current-thread"),
        Figure::P50,
        &[],
        "round trip",
        "baseline-pingpong-scripted, client on a current-thread runtime",
    ),
    Scenario {
        floor: Some("baseline-pingpong-scripted/current-thread"),
        ..scenario(
            "channel-rtt/current-thread",
            Some("baseline-pingpong/current-thread"),
            Figure::P50,
            CHANNEL_TARGETS,
            "round trip",
            "channel-rtt, client on a current-thread runtime",
        )
    },
    scenario(
        "large-1k",
        Some("baseline-large-1k"),
        Figure::Rate,
        &[],
        SATURATED,
        "queue-1x1 with 1 KB messages",
    ),
    scenario(
        "baseline-large-1k",
        None,
        Figure::Rate,
        &[],
        SATURATED,
        "raw list, 1 KB values, 100 per push",
    ),
    scenario(
        "large-64k",
        Some("baseline-large-64k"),
        Figure::Rate,
        &[],
        SATURATED,
        "queue-1x1 with 64 KB messages (64 pushes in flight)",
    ),
    scenario(
        "baseline-large-64k",
        None,
        Figure::Rate,
        &[],
        SATURATED,
        "raw list, 64 KB values, 16 per push",
    ),
    scenario(
        "baseline-mpsc",
        None,
        Figure::Rate,
        &[],
        SATURATED,
        "tokio mpsc channel of 256, same messages",
    ),
    scenario(
        "memory-1x1",
        Some("baseline-mpsc"),
        Figure::Rate,
        &[(Figure::Rate, Goal::AtLeast(0.3))],
        SATURATED,
        "queue-1x1 on the in-memory backend",
    ),
    scenario(
        "replay-fill",
        None,
        Figure::Rate,
        &[],
        E2E,
        "push_all of 1,000 (4 in flight) filling the replay queue",
    ),
    scenario("replay@0", None, Figure::P50, &[], "read of 100", "Store::read of 100 at position 0"),
    scenario(
        "replay@1000000",
        Some("replay@0"),
        Figure::P50,
        &[(Figure::P50, Goal::AtMost(2.0))],
        "read of 100",
        "Store::read of 100 at position 1,000,000",
    ),
    scenario(
        "replay-consume@0",
        None,
        Figure::P50,
        &[],
        "consume of 100",
        "consume_with(replay(Index(0)).max(100)) until 100 messages, then stop",
    ),
    scenario(
        "replay-consume@1000000",
        Some("replay-consume@0"),
        Figure::P50,
        &[],
        "consume of 100",
        "the same at position 1,000,000",
    ),
    scenario(
        "baseline-redis-list-memory",
        None,
        Figure::Memory,
        &[],
        "",
        "used_memory per 100-byte value in a raw list",
    ),
    scenario(
        "redis-memory",
        Some("baseline-redis-list-memory"),
        Figure::Memory,
        &[(Figure::Memory, Goal::AtMost(1.5))],
        "",
        "used_memory per queued 100-byte busmq message",
    ),
];

/// The longest scenario name: the report's name columns are this wide, so that the longest
/// (the current-thread variants) keep the table aligned.
pub(crate) const NAME_WIDTH: usize = {
    let mut widest = 0;
    let mut i = 0;
    while i < SCENARIOS.len() {
        if SCENARIOS[i].name.len() > widest {
            widest = SCENARIOS[i].name.len();
        }
        i += 1;
    }
    widest
};

pub(crate) fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// What `--only name[,name..]` runs: the scenarios, their baselines, what they need and their
/// floors, transitively.
pub(crate) fn needed(names: &str) -> Result<Vec<&'static str>, String> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut todo: Vec<String> = names.split(',').map(str::to_string).collect();
    while let Some(next) = todo.pop() {
        let scenario = find(&next).ok_or_else(|| {
            let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            format!("no scenario {next:?}; the scenarios are: {}", names.join(", "))
        })?;
        if out.contains(&scenario.name) {
            continue;
        }
        out.push(scenario.name);
        todo.extend(scenario.baseline.map(str::to_string));
        todo.extend(scenario.needs.iter().map(|n| n.to_string()));
        todo.extend(scenario.floor.map(str::to_string));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_exist_and_only_pulls_them_in() {
        for s in SCENARIOS {
            if let Some(base) = s.baseline {
                assert!(find(base).is_some(), "{} compares with unknown {base}", s.name);
            }
            // A floor's ratios are only comparable with the scenario's when both divide by
            // the same baseline.
            if let Some(floor) = s.floor {
                let floor = find(floor).unwrap_or_else(|| panic!("{}: unknown floor", s.name));
                assert_eq!(floor.baseline, s.baseline, "{}'s floor {}", s.name, floor.name);
                assert!(!s.targets.is_empty(), "{} has a floor but no target", s.name);
            }
        }
        let mut reliable4 = needed("reliable-4").unwrap();
        reliable4.sort();
        assert_eq!(
            reliable4,
            [
                "baseline-list",
                "baseline-list-api",
                "baseline-list-ids",
                "queue-1x1",
                "reliable-1",
                "reliable-4"
            ]
        );
        assert!(SCENARIOS.iter().all(|s| s.name.len() <= NAME_WIDTH));
        assert!(SCENARIOS.iter().any(|s| s.name.len() == NAME_WIDTH));
        let mut current = needed("channel-rtt/current-thread").unwrap();
        current.sort();
        assert_eq!(
            current,
            [
                "baseline-pingpong-scripted/current-thread",
                "baseline-pingpong/current-thread",
                "channel-rtt/current-thread"
            ]
        );
        assert!(needed("latency-paced").unwrap().contains(&"queue-1x1"));
        assert!(needed("nope").unwrap_err().contains("queue-1x1"));
        let mut two = needed("channel-rtt,paced-2k").unwrap();
        two.sort();
        assert_eq!(
            two,
            [
                "baseline-paced-2k",
                "baseline-pingpong",
                "baseline-pingpong-scripted",
                "channel-rtt",
                "paced-2k"
            ]
        );
    }
}
