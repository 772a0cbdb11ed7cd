//! How busmq consumers receive: at most once until `n` messages, or reliably with acks kept in
//! flight (so the library can batch them) until all consumers of a queue together got `n`.

use super::receiver::Receiver;
use super::support::{Ctx, Progress};
use busmq_core::Consumer;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// Receives `n` messages in order from an at-most-once consumer.
pub(crate) async fn at_most_once<T: AsRef<[u8]>>(
    mut consumer: Consumer<T>,
    n: u64,
    progress: Arc<Progress>,
) -> Result<Receiver, String> {
    let mut receiver = Receiver::ordered();
    while receiver.count < n {
        match consumer.next().await {
            Some(Ok(delivery)) => {
                receiver.on_message(delivery.body().as_ref());
                progress.received(1);
            }
            Some(Err(error)) => return Err(format!("consume: {error}")),
            None => {
                return Err(format!("the consumer ended after {} of {n} messages", receiver.count));
            }
        }
    }
    Ok(receiver)
}

/// What the reliable consumers of one queue share: how many messages they got together, and
/// the signal that all `n` arrived.
#[derive(Debug)]
pub(crate) struct Team {
    n: u64,
    got: AtomicU64,
    done: watch::Sender<bool>,
}

impl Team {
    pub(crate) fn new(n: u64) -> Arc<Team> {
        Arc::new(Team { n, got: AtomicU64::new(0), done: watch::Sender::new(false) })
    }
}

/// Receives and acknowledges until the team got `n` messages, with up to `ack_window` acks
/// awaiting the store (1: each ack is awaited before the next message, as a plain loop would).
pub(crate) async fn reliable<T: AsRef<[u8]>>(
    mut consumer: Consumer<T>,
    team: Arc<Team>,
    ack_window: usize,
    mut receiver: Receiver,
    progress: Arc<Progress>,
) -> Result<Receiver, String> {
    let mut done = team.done.subscribe();
    let mut acks = FuturesUnordered::new();
    loop {
        let finished = *done.borrow_and_update();
        if finished && acks.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some(result) = acks.next(), if !acks.is_empty() => {
                let acked: busmq_core::Result<()> = result;
                acked.ctx("ack")?;
            }
            _ = done.changed(), if !finished => {}
            item = consumer.next(), if !finished && acks.len() < ack_window => match item {
                Some(Ok(delivery)) => {
                    receiver.on_message(delivery.body().as_ref());
                    progress.received(1);
                    acks.push(delivery.ack());
                    if team.got.fetch_add(1, Ordering::Relaxed) + 1 >= team.n {
                        team.done.send_replace(true);
                    }
                }
                Some(Err(error)) => return Err(format!("consume: {error}")),
                None => return Err(format!(
                    "a reliable consumer ended after {} messages (the team got {} of {})",
                    receiver.count,
                    team.got.load(Ordering::Relaxed),
                    team.n
                )),
            },
        }
    }
    consumer.stop().await;
    Ok(receiver)
}
