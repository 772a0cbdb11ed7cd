//! How busmq producers push: `push` with a window of pushes in flight (so the library has to
//! coalesce concurrent pushes into batches itself), the same with a dedupe key on every push or
//! with ordering keys, or `push_all` with batches in flight.

use super::keyorder::Keys;
use super::payload;
use super::support::{Ctx, Progress};
use busmq_core::{Push, PushAll, PushOptions, Queue};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

/// Pushes in flight for the `push` producers (the "up to 256 in flight").
pub(crate) const PUSH_WINDOW: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Producer {
    /// `queue.push(msg)` with up to `window` unresolved pushes.
    Push { window: usize },
    /// The same, each push with its own dedupe key (SPEC P10: a keyed push is a store call of
    /// its own, never coalesced with others).
    Keyed { window: usize },
    /// The same, each push with an ordering key (SPEC P11): pushes share a store call only
    /// with the same key, so `keys.run` decides how many can.
    Ordered { window: usize, keys: Keys },
    /// The same, each push at level `(seq / run) % 10` (SPEC P12): runs of `run` coalesce.
    Leveled { window: usize, run: u64 },
    /// `queue.push_all(batch)` of `batch` messages with up to `window` unresolved batches.
    PushAll { batch: usize, window: usize },
}

/// Pushes messages `0..n` of `size` bytes to `queue`, and waits until all are written.
pub(crate) async fn produce(
    queue: &Queue,
    producer: Producer,
    size: usize,
    n: u64,
    progress: &Progress,
) -> Result<(), String> {
    match producer {
        Producer::Push { window }
        | Producer::Keyed { window }
        | Producer::Ordered { window, .. }
        | Producer::Leveled { window, .. } => {
            let mut inflight: FuturesUnordered<Push> = FuturesUnordered::new();
            for seq in 0..n {
                if inflight.len() >= window {
                    if let Some(result) = inflight.next().await {
                        result.ctx("push")?;
                        progress.sent(1);
                    }
                }
                let message = payload::make(seq, size);
                inflight.push(match producer {
                    Producer::Keyed { .. } => {
                        let options = PushOptions::new().dedupe(format!("m{seq}"));
                        queue.push_with(message.as_str(), options)
                    }
                    Producer::Ordered { keys, .. } => {
                        let options = PushOptions::new().ordering_key(keys.name(seq));
                        queue.push_with(message.as_str(), options)
                    }
                    Producer::Leveled { run, .. } => {
                        let level = ((seq / run.max(1)) % 10) as u8;
                        queue.push_with(message.as_str(), PushOptions::new().priority(level))
                    }
                    _ => queue.push(message.as_str()),
                });
            }
            while let Some(result) = inflight.next().await {
                result.ctx("push")?;
                progress.sent(1);
            }
        }
        Producer::PushAll { batch, window } => {
            let mut inflight: FuturesUnordered<PushAll> = FuturesUnordered::new();
            let mut seq = 0;
            while seq < n {
                if inflight.len() >= window {
                    if let Some(result) = inflight.next().await {
                        let ids: Vec<u64> = result.ctx("push_all")?;
                        progress.sent(ids.len() as u64);
                    }
                }
                let end = (seq + batch as u64).min(n);
                let messages: Vec<String> = (seq..end).map(|s| payload::make(s, size)).collect();
                inflight.push(queue.push_all(messages.iter().map(String::as_str)));
                seq = end;
            }
            while let Some(result) = inflight.next().await {
                progress.sent(result.ctx("push_all")?.len() as u64);
            }
        }
    }
    Ok(())
}
