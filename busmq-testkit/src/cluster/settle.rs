//! The last step of a slot move: every master must name the target as the slot's owner, and a
//! target that lost the slot to a stale claim of the source gets it back.

use super::{RedisCluster, err};
use crate::redis::HarnessError;
use std::time::{Duration, Instant};

impl RedisCluster {
    /// Waits until every running master names `target_id` as the owner of `slot`. After a
    /// failover has raised some config epochs, the source may still advertise the slot with a
    /// higher epoch than the target's between the two `SETSLOT NODE`s, and the target yields to
    /// it: then each of the two names the other as the owner, no node serves the slot, and
    /// every client is sent back and forth by `MOVED` for as long as it lasts (seen in `cargo
    /// xtask chaos`: a queue stalled for the rest of the run). `CLUSTER BUMPEPOCH` gives the
    /// target the greatest epoch, so that its claim, made again, wins everywhere.
    #[allow(clippy::print_stderr, reason = "a reclaimed slot explains a slow move in the log")]
    pub(super) async fn settle_slot(
        &self,
        slot: u16,
        to: usize,
        target_id: &str,
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + self.ready_timeout;
        let s = slot.to_string();
        loop {
            let mut disagree = None;
            let mut target_lost = false;
            for i in (0..self.nodes.len()).filter(|&i| self.nodes[i].pid().is_some()) {
                let Some(view) = self.view_of(i).await? else {
                    continue;
                };
                if !view.iter().any(|n| n.index == i && n.master) {
                    continue;
                }
                let owner = view.iter().find(|n| n.master && n.serves(slot)).map(|n| &n.id);
                if owner.map(String::as_str) != Some(target_id) {
                    target_lost |= i == to;
                    disagree = Some(format!("node {i} names {owner:?} as its owner"));
                }
            }
            let Some(why) = disagree else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(err(format!("slot {slot} after {:?}: {why}", self.ready_timeout)));
            }
            if target_lost {
                eprintln!("busmq-testkit: slot {slot}: node {to} yielded it ({why}); reclaiming");
                let _ = self.node_command(to, &["CLUSTER", "BUMPEPOCH"]).await?;
                let _ =
                    self.node_command(to, &["CLUSTER", "SETSLOT", &s, "NODE", target_id]).await?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
