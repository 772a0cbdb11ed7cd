//! Moving slots between masters: one slot with its keys ([`RedisCluster::move_slot`]), many
//! with `redis-cli --cluster reshard`, and the last step of a slot move: every master must name
//! the target as the slot's owner, and a target that lost the slot to a stale claim of the
//! source gets it back.

use super::{RedisCluster, err};
use crate::redis::HarnessError;
use crate::sentinel::Resp;
use std::time::{Duration, Instant};

/// How one attempt of [`RedisCluster::move_slot`] ended.
enum Moved {
    Done,
    /// The node the topology named as the owner is not (its view was newer); nothing moved.
    NotOwner(String),
}

impl RedisCluster {
    /// Moves `slot` to master `to` the way `redis-cli --cluster reshard` does (IMPORTING,
    /// MIGRATING, MIGRATE, SETSLOT NODE on every master), moving all its keys with one
    /// `MIGRATE` so that no queue is ever split between the two nodes. Right after a failover
    /// the node asked for the topology may still name the old owner, which then refuses to
    /// migrate: the target's import is undone and the move starts again from a fresh view,
    /// for up to the ready timeout.
    pub async fn move_slot(&self, slot: u16, to: usize) -> Result<(), HarnessError> {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            match self.try_move_slot(slot, to).await? {
                Moved::Done => return Ok(()),
                Moved::NotOwner(why) if Instant::now() > deadline => {
                    return Err(err(format!("slot {slot} after {:?}: {why}", self.ready_timeout)));
                }
                Moved::NotOwner(_) => {
                    let stable = ["CLUSTER", "SETSLOT", &slot.to_string(), "STABLE"];
                    let _ = self.node_command(to, &stable).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn try_move_slot(&self, slot: u16, to: usize) -> Result<Moved, HarnessError> {
        let nodes = self.topology().await?;
        let from = nodes
            .iter()
            .find(|n| n.master && n.serves(slot))
            .ok_or_else(|| err(format!("no master serves slot {slot}")))?
            .clone();
        let target = nodes
            .iter()
            .find(|n| n.index == to && n.master)
            .ok_or_else(|| err(format!("node {to} is not a master")))?
            .clone();
        if from.index == to {
            // Where the cluster says it is already; but the target itself may have yielded it.
            self.settle_slot(slot, to, &target.id).await?;
            return Ok(Moved::Done);
        }
        let s = slot.to_string();
        let check = |r: Resp, what: &str| match r {
            Resp::Error(e) => Err(err(format!("{what}: {e}"))),
            _ => Ok(()),
        };
        check(
            self.node_command(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from.id]).await?,
            "SETSLOT IMPORTING",
        )?;
        let migrating = ["CLUSTER", "SETSLOT", &s, "MIGRATING", &target.id];
        match self.node_command(from.index, &migrating).await? {
            Resp::Error(e) if e.contains("not the owner") => {
                return Ok(Moved::NotOwner(format!("node {} says: {e}", from.index)));
            }
            other => check(other, "SETSLOT MIGRATING")?,
        }
        let port = self.nodes[to].port().to_string();
        loop {
            let keys =
                self.node_command(from.index, &["CLUSTER", "GETKEYSINSLOT", &s, "100000"]).await?;
            let keys: Vec<String> = keys.items().iter().filter_map(Resp::text).collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "10000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            check(self.node_command(from.index, &args).await?, "MIGRATE")?;
        }
        // The target first, so that it never sends clients back to the source.
        check(
            self.node_command(to, &["CLUSTER", "SETSLOT", &s, "NODE", &target.id]).await?,
            "SETSLOT NODE on the target",
        )?;
        check(
            self.node_command(from.index, &["CLUSTER", "SETSLOT", &s, "NODE", &target.id]).await?,
            "SETSLOT NODE on the source",
        )?;
        for n in nodes.iter().filter(|n| n.master && n.index != to && n.index != from.index) {
            let _ =
                self.node_command(n.index, &["CLUSTER", "SETSLOT", &s, "NODE", &target.id]).await;
        }
        self.settle_slot(slot, to, &target.id).await?;
        Ok(Moved::Done)
    }

    /// Moves `slots` slots from master `from` to master `to` with
    /// `redis-cli --cluster reshard` (keys move `pipeline` at a time).
    pub async fn reshard(
        &self,
        from: usize,
        to: usize,
        slots: usize,
        pipeline: usize,
    ) -> Result<(), HarnessError> {
        let nodes = self.topology().await?;
        let id = |i: usize| {
            nodes
                .iter()
                .find(|n| n.index == i)
                .map(|n| n.id.clone())
                .ok_or_else(|| err(format!("node {i} is not in the topology")))
        };
        let args = vec![
            "--cluster".to_string(),
            "reshard".into(),
            format!("127.0.0.1:{}", self.nodes[to].port()),
            "--cluster-from".into(),
            id(from)?,
            "--cluster-to".into(),
            id(to)?,
            "--cluster-slots".into(),
            slots.to_string(),
            "--cluster-pipeline".into(),
            pipeline.to_string(),
            "--cluster-yes".into(),
        ];
        self.cli(&args).await?;
        Ok(())
    }

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
