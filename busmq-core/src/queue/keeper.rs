//! Keeps an attachment alive: renews the lease every `ttl / 3` (SPEC Q2), relays the store's
//! notices to consumers, and notices when another client closed the queue (SPEC Q4).

use super::event::QueueEvent;
use super::inner::QueueInner;
use super::lifecycle::{Held, Phase};
use crate::error::Error;
use crate::store::{Notice, Renewal};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Weak;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

fn renew_every(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(1))
}

pub(crate) async fn run(
    queue: Weak<QueueInner>,
    mut notices: BoxStream<'static, Notice>,
    ttl: Duration,
) {
    let every = renew_every(ttl);
    let mut renewal = tokio::time::interval_at(Instant::now() + every, every);
    renewal.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = renewal.tick() => {
                if !renew(&queue, &mut failures).await {
                    return;
                }
            }
            notice = notices.next() => match notice {
                Some(Notice::Available) => {
                    let Some(q) = queue.upgrade() else { return };
                    q.signal_available();
                }
                Some(Notice::Reset) => {
                    // The store reconnected: the queue may have been lost with it; renew now so
                    // that it exists again before consumers look.
                    if !renew(&queue, &mut failures).await {
                        return;
                    }
                    let Some(q) = queue.upgrade() else { return };
                    q.signal_available();
                }
                Some(Notice::Closed) => {
                    if let Some(q) = queue.upgrade() {
                        q.closed_elsewhere();
                    }
                    return;
                }
                None => match rewatch(&queue).await {
                    Some(stream) => notices = stream,
                    None => return,
                },
            }
        }
    }
}

/// Renews once. Returns false when the keeper should end (handle gone or queue closed).
async fn renew(queue: &Weak<QueueInner>, failures: &mut u32) -> bool {
    let Some(q) = queue.upgrade() else {
        return false;
    };
    let Some(held) = q.phase.borrow().held() else {
        return false;
    };
    match q.bus.store.renew(&q.name, held.generation, &held.spec).await {
        Ok(Renewal::Alive) => *failures = 0,
        Ok(Renewal::Recreated { generation, spec }) => {
            *failures = 0;
            tracing::debug!(
                queue = q.name.as_str(),
                generation,
                "queue was lost and created again"
            );
            q.phase.send_if_modified(|phase| match phase {
                Phase::Attached(h) if h.generation == held.generation => {
                    *phase = Phase::Attached(Held { generation, spec });
                    true
                }
                _ => false,
            });
        }
        Ok(Renewal::Closed) => {
            q.closed_elsewhere();
            return false;
        }
        Err(error) => {
            if *failures == 0 {
                q.emit(QueueEvent::Error(error));
            } else {
                let queue = q.name.as_str();
                tracing::debug!(queue, failures = *failures, error = %error, "renewal failed again");
            }
            *failures += 1;
        }
    }
    true
}

/// Opens a new watch after the old one ended (the store reconnected or dropped it).
async fn rewatch(queue: &Weak<QueueInner>) -> Option<BoxStream<'static, Notice>> {
    let mut attempt = 0u32;
    loop {
        let q = queue.upgrade()?;
        if q.phase.borrow().held().is_none() || !q.bus.is_connected() {
            return None;
        }
        match q.bus.store.watch(&q.name).await {
            Ok(stream) => {
                q.signal_available();
                return Some(stream);
            }
            Err(error) => {
                if attempt == 0 && !matches!(error, Error::Offline { .. }) {
                    q.emit(QueueEvent::Error(error));
                }
            }
        }
        drop(q);
        attempt += 1;
        tokio::time::sleep(crate::util::backoff(
            attempt,
            Duration::from_millis(50),
            Duration::from_secs(2),
        ))
        .await;
    }
}
