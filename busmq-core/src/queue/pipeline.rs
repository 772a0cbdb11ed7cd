//! The producer's worker on a store that pipelines pushes ([`PipelinedPush`]): up to [`DEPTH`]
//! writes in flight, the second linked to the first, so that the callers' work and the
//! store's overlap instead of taking turns (with one write in flight, `push_all` of 100 with
//! three in flight moved about half of raw `RPUSH`'s rate: docs/performance.md, issue 14).
//! The handle's order is kept by the link (SPEC Q6, Q9): the store writes a batch only right
//! after the one it follows, and a batch it refused is sent again, unlinked, once everything
//! before it has answered.
//!
//! [`PipelinedPush`]: crate::store::PipelinedPush

use super::lifecycle::{Held, PushTarget};
use super::producer::{Producer, Ready, Target, Waiter};
use crate::error::Result;
use crate::store::{Link, NewEntry, PushBatch};
use crate::util::{now_micros, random_u64};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesOrdered, StreamExt};
use std::sync::Arc;
use tracing::Instrument;

/// Writes in flight at most.
const DEPTH: usize = 2;
/// After the store refused a linked write, this many writes go one at a time: a queue whose
/// pushes the store cannot link (a replay queue, routed entries) would otherwise pay for a
/// refused write, and the wait for the one before it, every time.
const CALM: u32 = 32;

/// A write that answered, with what it needs to be answered or sent again.
struct Landed {
    result: Result<Option<u64>>,
    entries: Vec<NewEntry>,
    waiters: Vec<Waiter>,
    held: Held,
}

/// The worker's view of what it has sent and not yet heard back about.
struct Flight {
    writes: FuturesOrdered<BoxFuture<'static, Landed>>,
    /// The youngest write in flight: its mark, and the id its last entry is to get; `None`
    /// when it is too small for the store to link a push to it.
    youngest: Option<(u64, u64)>,
    /// Marks are this plus a count: distinct for the handle's writes, and by the random start
    /// (64 bits) from any other handle's but by a chance too small to matter.
    base: u64,
    sent: u64,
    /// Writes still to go one at a time (see [`CALM`]).
    calm: u32,
    /// The fewest entries a write that follows another may hold (the store's).
    least: usize,
}

impl Producer {
    pub(super) async fn run_pipelined(self: Arc<Self>, mut target: Target) {
        let least = target.store.pipelined().map_or(usize::MAX, |p| p.least()).max(1);
        let mut flight = Flight {
            writes: FuturesOrdered::new(),
            youngest: None,
            base: random_u64(),
            sent: 0,
            calm: 0,
            least,
        };
        // A batch taken while a write was in flight that cannot follow it (keyed, written while
        // calm, or it or the write in flight too small to link): it goes out once nothing is in
        // flight.
        let mut stash: Option<(Held, Ready)> = None;
        loop {
            while flight.writes.len() < DEPTH {
                let idle = flight.writes.is_empty();
                let (held, ready) = match stash.take() {
                    Some((held, ready)) => (self.now_held(&target, held), ready),
                    None => {
                        let held = match idle {
                            true => match self.held(&mut target).await {
                                Some(held) => held,
                                None => return,
                            },
                            // Waiting or failing: what flies answers first.
                            false => match target.phase.borrow().push_target(&target.name) {
                                PushTarget::Write(held) => held,
                                _ => break,
                            },
                        };
                        // Too little to follow the write in flight: it waits for the answer,
                        // and goes out then with what joins it.
                        let room = flight.youngest.is_some() && self.waiting() >= flight.least;
                        if !idle && (flight.calm > 0 || !room) {
                            break;
                        }
                        // With nothing in flight, large units are split (see `take`).
                        let split = (idle && flight.calm == 0).then_some(flight.least);
                        let Some(batch) = self.take(split, idle) else {
                            match idle {
                                true => return,
                                false => break,
                            }
                        };
                        let Some(ready) = self.prepare(&target, &held.spec, batch) else {
                            continue;
                        };
                        (held, ready)
                    }
                };
                let linkable = ready.keyed.is_none() && flight.calm == 0;
                // What this write follows: nothing when nothing is in flight; otherwise the
                // youngest write, if the store can link both.
                let after = match idle {
                    true => None,
                    false => match flight.youngest {
                        Some(youngest) if linkable && ready.entries.len() >= flight.least => {
                            Some(youngest)
                        }
                        _ => {
                            stash = Some((held, ready));
                            break;
                        }
                    },
                };
                if !linkable {
                    flight.calm = flight.calm.saturating_sub(1);
                    self.send(&target, held, ready).await;
                    continue;
                }
                let write = self.link(&mut flight, &target, held, ready, after);
                flight.writes.push_back(write);
            }
            let Some(landed) = flight.writes.next().await else {
                continue;
            };
            let Landed { result, entries, waiters, held } = landed;
            match result {
                Ok(Some(first)) => self.resolve(&target, waiters, first),
                Ok(None) => {
                    // Nothing was written: every write before this one has answered now, so
                    // it goes again, unlinked. The write after it (if any) follows it, so the
                    // store refuses that one too, and it comes here in turn.
                    tracing::debug!(queue = target.name.as_str(), "a linked push was refused");
                    flight.calm = CALM;
                    let ready = Ready { entries, waiters, keyed: None };
                    self.send(&target, self.now_held(&target, held), ready).await;
                }
                Err(error) => self.conclude(&target, held, &entries, waiters, Err(error)).await,
            }
        }
    }

    /// The incarnation a batch taken for `held` goes to now: the one the handle holds (it may
    /// have come back as another while the batch waited), or `held` when it holds none, for
    /// the store to refuse.
    fn now_held(&self, target: &Target, held: Held) -> Held {
        match target.phase.borrow().push_target(&target.name) {
            PushTarget::Write(now) => now,
            _ => held,
        }
    }

    /// The linked store call for `ready`, following `after` (the youngest write in flight: its
    /// mark and the id its last entry is to get) if given.
    fn link(
        &self,
        flight: &mut Flight,
        target: &Target,
        held: Held,
        ready: Ready,
        after: Option<(u64, u64)>,
    ) -> BoxFuture<'static, Landed> {
        let follows = after.map(|(mark, _)| mark);
        // Above the ids the write it follows expects, or those this handle got.
        let floor = match after {
            Some((_, last)) => last,
            None => self.last().unwrap_or(0),
        };
        let first = now_micros().max(floor + 1);
        flight.sent += 1;
        let mark = flight.base.wrapping_add(flight.sent);
        let n = ready.entries.len();
        flight.youngest = (n >= flight.least).then_some((mark, first + n as u64 - 1));
        let link = Link { mark, follows, first };
        let store = target.store.clone();
        let name = target.name.clone();
        let after = self.last();
        let span = tracing::trace_span!(
            "push",
            queue = name.as_str(),
            entries = n,
            linked = follows.is_some()
        );
        async move {
            let Ready { entries, waiters, .. } = ready;
            let mut batch = PushBatch::new(held.generation, &held.spec, &entries);
            batch.after = after;
            let result = match store.pipelined() {
                Some(pipelined) => pipelined.push_linked(&name, &batch, link).await,
                None if link.follows.is_some() => Ok(None),
                None => store.push(&name, &batch).await.map(Some),
            };
            Landed { result, entries, waiters, held }
        }
        .instrument(span)
        .boxed()
    }
}
