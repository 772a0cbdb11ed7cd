//! The chaos schedules: which faults run, how often, for how long, and how much is pushed.
//! `--quick` is the CI schedule (a few minutes); the default is the longer local one.

use super::fault::Fault;
use std::time::Duration;

/// One delivery mode under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode {
    pub(crate) name: &'static str,
    pub(crate) reliable: bool,
    /// Pushes (and at-most-once takes) wait for one replica (`replicas_ack`).
    pub(crate) wait: bool,
    /// Requests and replies of a service instead of a queue's producers and consumers.
    pub(crate) service: bool,
    /// Producers schedule each message with a short delay instead of pushing it (SPEC P8):
    /// deliveries come in due order, not push order, so reordering is not a violation here.
    pub(crate) delayed: bool,
    /// Producers push message `seq` with ordering key `seq % KEYS` (SPEC P11) and several
    /// reliable consumers share each queue: one message of a key held at a time, in push order.
    pub(crate) keyed: bool,
    /// Producers call `push_all` in bursts, each call large enough to be linked to the one
    /// before it in a second store write in flight, and consumers keep several acks in flight
    /// (see `batched.rs`): the push pipeline and batched settlements under faults.
    pub(crate) batched: bool,
}

const fn mode(name: &'static str, reliable: bool, wait: bool) -> Mode {
    Mode { name, reliable, wait, service: false, delayed: false, keyed: false, batched: false }
}

/// Ordering keys per queue of the keyed mode: few, so that every key has several messages in
/// flight at the push rate and the gate is what holds them back.
pub(crate) const KEYS: u64 = 8;
/// Reliable consumers per queue of the keyed mode.
pub(crate) const KEYED_CONSUMERS: usize = 3;

/// How long a keyed-mode consumer works on message `seq` before acking it: 0 to 20 ms, so that
/// backlogs after a fault spread a key's messages over consumers that hold them a while (fast
/// acks alone would rarely put two of a key in flight, and the gate would go untested).
pub(crate) fn keyed_work(seq: u64) -> std::time::Duration {
    std::time::Duration::from_millis(seq.wrapping_mul(7) % 21)
}

pub(crate) const AT_MOST_ONCE: Mode = mode("at-most-once", false, false);
pub(crate) const RELIABLE: Mode = mode("reliable", true, false);
pub(crate) const AT_MOST_ONCE_WAIT: Mode = mode("at-most-once+wait", false, true);
pub(crate) const RELIABLE_WAIT: Mode = mode("reliable+wait", true, true);
/// Requests under load while servers are killed, Redis restarts or fails over (issue 15).
pub(crate) const SERVICE: Mode = Mode { service: true, ..mode("service", false, false) };
/// Reliable consumption of delayed messages (issue 16 item 1): every acknowledged schedule is
/// delivered once it is due, whatever the fault.
pub(crate) const RELIABLE_DELAYED: Mode =
    Mode { delayed: true, ..mode("reliable+delayed", true, false) };
/// Reliable consumption of keyed messages by several consumers per queue (issue 16 item 7):
/// 0 lost, 0 reordered within a key, never two messages of a key held at once.
pub(crate) const RELIABLE_KEYED: Mode = Mode { keyed: true, ..mode("reliable+keyed", true, false) };
/// The keyed mode with pushes that wait for a replica, as `reliable+wait`'s (issue 16 item 7):
/// its targets hold under failovers too.
pub(crate) const RELIABLE_KEYED_WAIT: Mode =
    Mode { keyed: true, ..mode("reliable+keyed+wait", true, true) };

/// Reliable consumption of messages pushed in bursts of `push_all` calls: on Redis a handle
/// then keeps two linked push writes in flight, and a refused or failed one is sent again
/// (issue 14). Its consumers keep up to 16 acks in flight, which go out together. Held to
/// `reliable`'s targets; its recoveries include up to one burst interval (200 ms) of waiting
/// for the next burst. Without `WAIT` only: pushes that wait for a replica are written one at
/// a time.
pub(crate) const RELIABLE_BATCHED: Mode =
    Mode { batched: true, ..mode("reliable+batched", true, false) };

impl Mode {
    /// Consumers per queue.
    pub(crate) fn consumers_per_queue(self) -> usize {
        if self.keyed { KEYED_CONSUMERS } else { 1 }
    }
}

/// The modes that run (side by side, on separate queues) under `fault`. `WAIT` only means
/// something where there are replicas; servers run in this process, so the service mode sits
/// out the fault that kills consumer processes (killing server tasks is its own fault).
pub(crate) fn modes(fault: Fault) -> Vec<Mode> {
    let mut modes = if fault.has_replicas() {
        vec![AT_MOST_ONCE, RELIABLE, AT_MOST_ONCE_WAIT, RELIABLE_WAIT]
    } else {
        vec![AT_MOST_ONCE, RELIABLE]
    };
    if !fault.child_consumers() {
        modes.push(SERVICE);
    }
    modes.push(RELIABLE_DELAYED);
    modes.push(RELIABLE_BATCHED);
    modes.push(RELIABLE_KEYED);
    if fault.has_replicas() {
        modes.push(RELIABLE_KEYED_WAIT);
    }
    modes
}

/// A whole run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) name: &'static str,
    pub(crate) faults: Vec<Fault>,
    /// Traffic before the first fault.
    pub(crate) warmup: Duration,
    /// How many times each fault is injected.
    pub(crate) occurrences: usize,
    /// How long a fault with a duration lasts (partition, slow consumer, restart downtime).
    pub(crate) outage: Duration,
    /// Traffic between one fault's end and the next fault.
    pub(crate) gap: Duration,
    /// Traffic after the last fault, before the producers stop.
    pub(crate) settle: Duration,
    /// The longest wait for consumers to catch up after the producers stopped.
    pub(crate) drain: Duration,
    /// One push per queue this often.
    pub(crate) push_every: Duration,
    /// No queue gets more push calls than this (a batched producer's `push_all` is one).
    pub(crate) max_per_queue: u64,
    /// Queues per mode, each with one producer and one consumer.
    pub(crate) queues_per_mode: usize,
    /// Reliable visibility timeout (short, so that deliveries of killed consumers come back
    /// within the run).
    pub(crate) visibility: Duration,
    /// How long each side of the WAIT cost measurement pushes.
    pub(crate) wait_cost: Duration,
}

impl Plan {
    /// The CI schedule.
    pub(crate) fn quick() -> Plan {
        Plan {
            name: "quick",
            faults: Fault::ALL.to_vec(),
            warmup: Duration::from_secs(2),
            occurrences: 2,
            outage: Duration::from_secs(2),
            gap: Duration::from_secs(3),
            settle: Duration::from_secs(3),
            drain: Duration::from_secs(15),
            push_every: Duration::from_millis(10),
            max_per_queue: 5_000,
            queues_per_mode: 2,
            visibility: Duration::from_secs(3),
            wait_cost: Duration::from_secs(2),
        }
    }

    /// The local schedule: more occurrences, longer outages, more traffic.
    pub(crate) fn long() -> Plan {
        Plan {
            name: "long",
            occurrences: 6,
            outage: Duration::from_secs(4),
            gap: Duration::from_secs(5),
            settle: Duration::from_secs(5),
            drain: Duration::from_secs(30),
            max_per_queue: 50_000,
            queues_per_mode: 3,
            wait_cost: Duration::from_secs(5),
            ..Plan::quick()
        }
    }
}
