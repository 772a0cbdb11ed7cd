//! The throughput group: the raw list ceiling and every at-most-once and reliable queue
//! scenario compared with it, measured in interleaved rounds (each round runs each scenario
//! once, every other round in reverse order), so that a noisy neighbour slows all of them alike. Each scenario is warmed up first,
//! and that warm-up's rate sizes its measured rounds to about the time budget.

use super::Env;
use super::baseline;
use super::figure::Figure;
use super::keyorder::Keys;
use super::listfloor::{self, Work};
use super::measure::Sample;
use super::produce::{PUSH_WINDOW, Producer};
use super::queue::{self, Flow};
use super::reliable::{self, Shape};
use super::summary::Results;

/// The message size of the throughput scenarios.
pub(crate) const SIZE: usize = 100;
/// Messages a raw push or `push_all` carries.
pub(crate) const BATCH: usize = 100;
/// The raw producer's pushes in flight: about the messages busmq's `push` keeps in flight.
pub(crate) const RAW_WINDOW: usize = PUSH_WINDOW.div_ceil(BATCH);

#[derive(Clone, Copy, Debug)]
enum Kind {
    RawList,
    /// The raw list behind busmq's API shape (`listfloor.rs`).
    RawListApi,
    /// The same with the per-message work busmq's SPEC asks for (`listfloor::Work::Ids`).
    RawListIds,
    Queue(Flow),
    /// The same flow on the bench's Redis Cluster.
    Cluster(Flow),
    Reliable(Shape),
}

const PUSH: Producer = Producer::Push { window: PUSH_WINDOW };
/// keyed-4's ordering keys: 1,000, message `seq` with key `seq % 1000`.
const KEYED: Keys = Keys { keys: 1_000, run: 1 };

const KINDS: &[(&str, Kind)] = &[
    ("baseline-list", Kind::RawList),
    ("baseline-list-api", Kind::RawListApi),
    ("baseline-list-ids", Kind::RawListIds),
    ("queue-1x1", Kind::Queue(Flow { producer: PUSH, size: SIZE, queues: 1 })),
    (
        "queue-1x1/push_all",
        Kind::Queue(Flow {
            producer: Producer::PushAll { batch: BATCH, window: RAW_WINDOW },
            size: SIZE,
            queues: 1,
        }),
    ),
    (
        "queue-1x1/dedupe",
        Kind::Queue(Flow {
            producer: Producer::Keyed { window: PUSH_WINDOW },
            size: SIZE,
            queues: 1,
        }),
    ),
    ("queue-100", Kind::Queue(Flow { producer: PUSH, size: SIZE, queues: 100 })),
    ("cluster-100", Kind::Cluster(Flow { producer: PUSH, size: SIZE, queues: 100 })),
    ("reliable-1", Kind::Reliable(Shape { consumers: 1, keys: None, ack_window: PUSH_WINDOW })),
    ("reliable-4", Kind::Reliable(Shape { consumers: 4, keys: None, ack_window: PUSH_WINDOW })),
    ("reliable-1/await-each", Kind::Reliable(Shape { consumers: 1, keys: None, ack_window: 1 })),
    ("keyed-4", Kind::Reliable(Shape { consumers: 4, keys: Some(KEYED), ack_window: PUSH_WINDOW })),
    (
        "keyed-4/runs",
        Kind::Reliable(Shape {
            consumers: 4,
            keys: Some(Keys { run: 100, ..KEYED }),
            ack_window: PUSH_WINDOW,
        }),
    ),
];

async fn measure(env: &Env, kind: Kind, n: u64) -> Result<Sample, String> {
    let server = Some(&env.server);
    match kind {
        Kind::RawList => {
            let shape = baseline::Shape { size: SIZE, batch: BATCH, window: RAW_WINDOW };
            baseline::list(&env.server, shape, n).await
        }
        Kind::RawListApi => listfloor::list_api(&env.server, SIZE, n, Work::Shape).await,
        Kind::RawListIds => listfloor::list_api(&env.server, SIZE, n, Work::Ids).await,
        Kind::Queue(flow) => queue::fan(&env.redis(), server, flow, n).await,
        // The cluster's six processes are not measured (INFO of one node says little).
        Kind::Cluster(flow) => queue::fan(&env.cluster()?, None, flow, n).await,
        Kind::Reliable(shape) => reliable::reliable(&env.redis(), server, shape, SIZE, n).await,
    }
}

/// Messages for a measurement of about `secs` at `rate`: whole multiples of 10,000 (so that
/// batches and the 100 queues divide them), at least 10,000.
pub(crate) fn messages_for(rate: f64, secs: f64) -> u64 {
    let n = (rate * secs / 10_000.0).ceil().max(1.0) as u64 * 10_000;
    n.min(5_000_000)
}

pub(crate) async fn run(env: &Env, results: &mut Results) {
    let chosen: Vec<(&'static str, Kind)> =
        KINDS.iter().copied().filter(|(name, _)| env.wants(name)).collect();
    let mut sizes = Vec::new();
    for (name, kind) in &chosen {
        let warm = if matches!(kind, Kind::Reliable(Shape { ack_window: 1, .. })) {
            2_000
        } else {
            20_000
        };
        let size = match measure(env, *kind, warm).await {
            Ok(sample) => Some(messages_for(sample.rate(), env.budget.secs)),
            Err(error) => {
                results.record(name, Err(format!("warm-up: {error}")));
                None
            }
        };
        sizes.push(size);
    }
    let mut order: Vec<(&(&'static str, Kind), &Option<u64>)> = chosen.iter().zip(&sizes).collect();
    for _ in 0..env.budget.rounds {
        for ((name, kind), n) in order.iter().copied() {
            let Some(n) = n else {
                continue;
            };
            if results.failed(name) {
                continue;
            }
            results.record(name, measure(env, *kind, *n).await);
        }
        // Every other round runs backwards, so that no scenario always follows the same one.
        order.reverse();
    }
    // Both floors, so that the note separates what the API shape costs from what the SPEC's
    // per-message work adds and what busmq adds beyond both.
    for (floor, about) in [
        ("baseline-list-api", "the raw list behind the same API shape"),
        ("baseline-list-ids", "that shape with the ids and entry header the SPEC asks for"),
    ] {
        let cpu = |name| results.figure(name, Figure::ClientCpu);
        if let (Some(queue), Some(floor_cpu)) = (cpu("queue-1x1"), cpu(floor)) {
            let note =
                format!("client CPU per message {:.2}x {floor}'s ({about})", queue / floor_cpu);
            results.note("queue-1x1", &note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_ten_thousands() {
        assert_eq!(messages_for(1.0, 1.0), 10_000);
        assert_eq!(messages_for(250_000.0, 2.0), 500_000);
        assert_eq!(messages_for(123_456.0, 1.0), 130_000);
        assert_eq!(messages_for(1e12, 1.0), 5_000_000);
    }
}
