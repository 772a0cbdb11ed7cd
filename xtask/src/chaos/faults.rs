//! The faults the checker injects, how each is injected, and when each one *ends* (the moment
//! from which the system could work again, where recovery time starts counting).
//!
//! | fault                     | injected by                                      | ends when                          |
//! |---------------------------|--------------------------------------------------|------------------------------------|
//! | `consumer-task-killed`    | aborting every consumer task mid-stream          | the replacement tasks are spawned  |
//! | `consumer-process-killed` | `kill -9` of every consumer process              | the replacement processes started  |
//! | `client-kill`             | `CLIENT KILL TYPE normal` and `TYPE pubsub`      | at once                            |
//! | `redis-restart`           | SIGKILL of redis-server (AOF on), restart        | the server answers PING again      |
//! | `partition`               | the proxy blackholes, or cuts, every connection  | the proxy forwards again           |
//! | `slow-consumer`           | consumers take 200 ms per message                | they are fast again                |
//! | `failover`                | SIGKILL of the Sentinel master                   | the sentinels name a new master    |
//! | `failover-replica-lag`    | replicas frozen (SIGSTOP) and their links cut    | the sentinels name a new master    |
//! |                           | (`CLIENT KILL TYPE replica`) for 0.5 s while     |                                    |
//! |                           | consumers stall, SIGKILL of the master, replicas |                                    |
//! |                           | resumed                                          |                                    |
//! | `cluster-failover`        | SIGKILL of the cluster master of one of the      | its replica serves the slots and   |
//! |                           | queues (a different queue each time)             | every node reports `cluster_state:ok` |
//! | `cluster-reshard`         | every queue's slot moved to another master       | the last slot has moved            |
//! |                           | (`CLUSTER SETSLOT` + one `MIGRATE` per slot)     |                                    |
//!
//! `failover-replica-lag` makes the asynchronous replication visible: the master acknowledges
//! writes the replicas never receive, and one of those replicas becomes the master. Consumers
//! stall meanwhile, as under a backlog, so that acknowledged messages are still waiting in the
//! queue when the master dies (a message delivered before the failover cannot be lost by it).
//! At the checker's load an ordinary failover rarely loses anything; a lagging one does,
//! unless the writes waited for a replica (`WAIT`).
//!
//! After a failover ends, the killed node is restarted (it rejoins as a replica) and the set
//! is left to heal before the next fault; that repair is not part of the fault window.

use super::deploy::Deployment;
use super::fault::Fault;
use super::history::FaultWindow;
use super::schedule::Plan;
use super::workers::ModeRun;
use std::time::Duration;
use tokio::time::Instant;

const SLOW: Duration = Duration::from_millis(200);
const REPLICA_LAG: Duration = Duration::from_millis(500);

fn ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Injects occurrence `n` of `fault` and returns its window. For a failover, also returns the
/// node to restart afterwards.
pub(crate) async fn inject(
    fault: Fault,
    n: usize,
    deployment: &mut Deployment,
    runs: &mut [ModeRun],
    plan: &Plan,
    start: Instant,
) -> Result<(FaultWindow, Option<usize>), String> {
    let start_ms = ms(start);
    let mut killed = None;
    match fault {
        Fault::ConsumerTaskKilled | Fault::ConsumerProcessKilled => {
            for run in runs.iter_mut() {
                run.replace_consumers().await?;
            }
        }
        Fault::ClientKill => deployment.client_kill().await?,
        Fault::RedisRestart => deployment.restart(plan.outage).await?,
        Fault::Partition => {
            let proxy = deployment.proxy()?;
            // Alternate the two kinds: one the client notices at once, one it must time out.
            if n % 2 == 0 {
                proxy.blackhole();
            } else {
                proxy.cut();
            }
            tokio::time::sleep(plan.outage).await;
            proxy.restore();
        }
        Fault::SlowConsumer => {
            for run in runs.iter() {
                run.set_slow(SLOW);
            }
            tokio::time::sleep(plan.outage).await;
            for run in runs.iter() {
                run.set_slow(Duration::ZERO);
            }
        }
        Fault::Failover => {
            let set = deployment.sentinels()?;
            let old = set.kill_master().await.map_err(|e| e.to_string())?;
            set.wait_for_new_master(old).await.map_err(|e| e.to_string())?;
            killed = Some(old);
        }
        Fault::FailoverLag => {
            let set = deployment.sentinels()?;
            let master = set.master_index().await.map_err(|e| e.to_string())?;
            let replicas: Vec<usize> = (0..set.node_count()).filter(|i| *i != master).collect();
            for run in runs.iter() {
                run.set_slow(REPLICA_LAG);
            }
            for r in &replicas {
                set.node(*r).pause().map_err(|e| e.to_string())?;
            }
            // A frozen replica still receives the stream into its socket buffer: cut the links
            // so that what the master acknowledges from now on reaches no replica.
            set.node_command(master, &["CLIENT", "KILL", "TYPE", "replica"])
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(REPLICA_LAG).await;
            let old = set.kill_master().await;
            for r in &replicas {
                set.node(*r).resume().map_err(|e| e.to_string())?;
            }
            for run in runs.iter() {
                run.set_slow(Duration::ZERO);
            }
            let old = old.map_err(|e| e.to_string())?;
            set.wait_for_new_master(old).await.map_err(|e| e.to_string())?;
            killed = Some(old);
        }
        Fault::ClusterFailover => {
            let names: Vec<String> = runs.iter().flat_map(|r| r.names().to_vec()).collect();
            let name = &names[n % names.len()];
            let cluster = deployment.cluster_mut()?;
            let slot =
                cluster.slot_of(&format!("x:{{{name}}}")).await.map_err(|e| e.to_string())?;
            let old = cluster.kill_master_of(slot).await.map_err(|e| e.to_string())?;
            cluster.wait_for_failover(old).await.map_err(|e| e.to_string())?;
            killed = Some(old);
        }
        Fault::ClusterReshard => {
            let cluster = deployment.cluster_mut()?;
            let masters: Vec<usize> = cluster
                .topology()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|node| node.master && !node.failed && !node.slots.is_empty())
                .map(|node| node.index)
                .collect();
            for run in runs.iter() {
                for name in run.names() {
                    let key = format!("x:{{{name}}}");
                    let slot = cluster.slot_of(&key).await.map_err(|e| e.to_string())?;
                    let home = cluster.master_of(slot).await.map_err(|e| e.to_string())?;
                    let at = masters.iter().position(|m| *m == home).unwrap_or(0);
                    let to = masters[(at + 1) % masters.len()];
                    cluster.move_slot(slot, to).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok((FaultWindow { start_ms, end_ms: ms(start) }, killed))
}

/// Puts the deployment back together after a fault window (the old master of a failover
/// rejoins as a replica).
pub(crate) async fn repair(
    deployment: &mut Deployment,
    killed: Option<usize>,
) -> Result<(), String> {
    if let Some(node) = killed {
        if let Ok(cluster) = deployment.cluster_mut() {
            // It rejoins as a replica of its successor; restart_node waits until it is whole.
            return cluster.restart_node(node).await.map_err(|e| e.to_string());
        }
        let set = deployment.sentinels()?;
        set.restart_node(node).await.map_err(|e| e.to_string())?;
        set.wait_healthy().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
