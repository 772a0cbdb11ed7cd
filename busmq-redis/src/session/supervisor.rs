//! The supervisor of one instance: a task that opens a session, watches it (pings, Sentinel
//! hints, shard subscriptions to repair), and reconnects with exponential backoff and jitter,
//! until the store disconnects. It tells the rest of the store what happened through a narrow
//! [`Report`] hook, and knows nothing else of it. It logs in a `redis.instance` span naming
//! the instance by its identity (never its URL): WARN on the first failure of an outage,
//! DEBUG per attempt with its delay, INFO when the instance is back.

use crate::fault::CallError;
use crate::session::cluster::{Feed, FeedEvent};
use crate::session::instance::Instance;
use crate::session::open::{Opened, Setup, open, refusal};
use busmq_core::Error;
use busmq_core::support::backoff;
use futures::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

/// How often dropped shard subscriptions are tried again.
const REPAIR_INTERVAL: Duration = Duration::from_millis(200);

/// What a supervisor reports to the store.
pub(crate) trait Report: Send + Sync + 'static {
    /// The instance went up or down (its flag is already set): the store's state may change.
    fn health_changed(&self);
    /// The memberships the instance has recorded (see `placement.rs`).
    fn memberships_seen(&self, memberships: Vec<String>);
    /// A background failure worth an event (once per outage).
    fn failed(&self, error: Error);
}

/// Waits for a Sentinel hint, or forever for other instances.
async fn hinted(hints: &mut Option<watch::Receiver<u64>>) {
    match hints {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Connects, watches, reconnects with backoff, until `stop` says so (or its sender is
/// dropped with the store). `first` is told the outcome of the first attempt: `Some` when the
/// instance refused this client for good.
pub(crate) async fn supervise(
    inst: Arc<Instance>,
    setup: Setup,
    report: Arc<dyn Report>,
    stop: watch::Receiver<bool>,
    first: oneshot::Sender<Option<Error>>,
) {
    let span = tracing::debug_span!("redis.instance", instance = inst.identity());
    run(inst, setup, report, stop, first).instrument(span).await
}

async fn run(
    inst: Arc<Instance>,
    setup: Setup,
    report: Arc<dyn Report>,
    mut stop: watch::Receiver<bool>,
    first: oneshot::Sender<Option<Error>>,
) {
    let mut first = Some(first);
    // When the current outage began (its first failure was logged), if there is one.
    let mut outage: Option<Instant> = None;
    let mut attempt: u32 = 0;
    // What this outage reported so far: nothing, an access denial, or another failure.
    let mut reported: Option<bool> = None;
    let mut hints = inst.group().map(|g| g.hints());
    let follower = inst.group().map(|group| {
        let group = Arc::clone(group);
        let stop = stop.clone();
        tokio::spawn(async move { group.follow(stop).await })
    });
    loop {
        if *stop.borrow() {
            break;
        }
        let opened = tokio::select! {
            opened = open(&inst, &setup) => opened,
            _ = stop.changed() => break,
        };
        match opened {
            Ok(Opened { feed, memberships }) => {
                match outage.take() {
                    Some(since) => tracing::info!(
                        attempts = attempt,
                        outage = ?since.elapsed(),
                        "reconnected to redis"
                    ),
                    None => tracing::debug!("connected to redis"),
                }
                attempt = 0;
                reported = None;
                report.memberships_seen(memberships);
                inst.set_up();
                report.health_changed();
                if let Some(tx) = first.take() {
                    let _ = tx.send(None);
                }
                // Watchers re-check everything: notices sent while we were away are lost.
                inst.hub.announce_reset();
                let stopped = monitor(&inst, feed, &mut stop).await;
                inst.go_down();
                report.health_changed();
                if stopped {
                    break;
                }
                tracing::warn!("lost the connection to redis; reconnecting with backoff");
                outage = Some(Instant::now());
            }
            Err(e) => {
                inst.go_down();
                let error = connect_error(&inst, e);
                // A refusal, a TLS problem, or a server without what the configuration requires:
                // the same configuration cannot get in.
                let denied = matches!(
                    error,
                    Error::AccessDenied { .. } | Error::InvalidOption { .. } | Error::Tls { .. }
                );
                let config = inst.config();
                let delay = backoff(attempt, config.backoff_base, config.backoff_cap);
                attempt = attempt.saturating_add(1);
                log_failure(&mut outage, attempt, delay, &error);
                if let Some(tx) = first.take() {
                    if denied {
                        // `connect` returns it and stops every supervisor.
                        let _ = tx.send(Some(error));
                        break;
                    }
                    let _ = tx.send(None);
                }
                // Once per outage, and again if its cause turns into (or out of) a refusal: a
                // server restarted with another password is news.
                if reported != Some(denied) {
                    reported = Some(denied);
                    report.failed(error);
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    // A sentinel announced a master: try it now rather than after the delay.
                    _ = hinted(&mut hints) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    if let Some(follower) = follower {
        follower.abort();
    }
    inst.go_down();
}

/// Logs a failed attempt to open a session: the first of an outage at WARN (ERROR when the
/// instance refuses the credentials or TLS cannot be set up: waiting will not help), the next
/// ones at DEBUG.
fn log_failure(outage: &mut Option<Instant>, attempt: u32, delay: Duration, error: &Error) {
    if outage.is_some() {
        tracing::debug!(attempt, ?delay, error = %error, "reconnection attempt failed");
        return;
    }
    *outage = Some(Instant::now());
    if matches!(error, Error::Tls { .. }) {
        tracing::error!(error = %error, "TLS to redis cannot be set up with this configuration");
    } else if matches!(error, Error::AccessDenied { .. }) {
        tracing::error!(error = %error, "redis refused this client's credentials or rights");
    } else if matches!(error, Error::InvalidOption { .. }) {
        tracing::error!(error = %error, "redis lacks what this client's configuration requires");
    } else {
        tracing::warn!(?delay, error = %error, "cannot connect to redis; retrying with backoff");
    }
}

/// Watches a live session until it fails (false) or the store stops (true).
async fn monitor(inst: &Instance, mut feed: Feed, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = watch_session(inst, &mut feed, stop).await;
    // Messages that arrived before the failure was noticed are still worth delivering.
    while let Some(Some(event)) = feed.next().now_or_never() {
        if let FeedEvent::Message(msg) = event {
            inst.hub.dispatch(&msg);
        }
    }
    stopped
}

async fn watch_session(inst: &Instance, feed: &mut Feed, stop: &mut watch::Receiver<bool>) -> bool {
    let ping_interval = inst.config().ping_interval;
    let mut tick = tokio::time::interval(ping_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // Shard subscriptions the cluster dropped are tried again at this pace until they all
    // succeed (a failover takes about the cluster's node timeout).
    let mut repair = tokio::time::interval(REPAIR_INTERVAL.min(ping_interval));
    repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hints = inst.group().map(|g| g.hints());
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return true;
                }
            }
            event = feed.next() => match event {
                Some(FeedEvent::Message(msg)) => inst.hub.dispatch(&msg),
                Some(FeedEvent::Lost(channel)) => inst.hub.mark_lost(channel.as_deref()),
                None => return false,
            },
            _ = repair.tick(), if inst.hub.needs_repair() => {
                if inst.hub.repair().await {
                    // Notices published while a channel had no subscription are lost.
                    inst.hub.announce_reset();
                }
            }
            _ = hinted(&mut hints) => {
                if master_moved(inst).await {
                    return false;
                }
            }
            _ = inst.suspected() => {
                if inst.take_demoted() || !inst.ping().await {
                    return false;
                }
            }
            _ = tick.tick() => {
                if !inst.ping().await {
                    return false;
                }
            }
        }
    }
}

/// Whether the sentinels now name another master than this session's node.
async fn master_moved(inst: &Instance) -> bool {
    let Some(group) = inst.group() else {
        return false;
    };
    match group.resolve().await {
        Ok(addr) => {
            let moved = inst.node().is_some_and(|node| node != addr);
            if moved {
                tracing::info!(master = %addr, "the sentinels name another master; switching");
            }
            moved
        }
        // Sentinels that do not answer say nothing about the master: the session stays.
        Err(_) => false,
    }
}

/// The event for a session that could not be opened. A driver error is its source, and the
/// message does not repeat it.
fn connect_error(inst: &Instance, e: CallError) -> Error {
    let (why, source) = match refusal(inst, e) {
        CallError::Denied(reason) => {
            return Error::AccessDenied { target: inst.identity().to_string(), reason };
        }
        CallError::Unsupported(reason) => {
            let reason = format!("redis {}: {reason}", inst.identity());
            return Error::InvalidOption { option: "command_set", reason };
        }
        CallError::Tls(problem, reason) => {
            return Error::Tls { target: inst.identity().to_string(), problem, reason };
        }
        CallError::Down => (": the store was dropped".to_string(), None),
        CallError::Timeout => {
            let after = inst.config().connect_timeout;
            (format!(": no answer within {after:?}"), None)
        }
        CallError::Redis(e) => {
            let source: busmq_core::error::Source = Arc::new(e);
            (String::new(), Some(source))
        }
    };
    let via = match inst.group() {
        Some(group) => format!(" (master {:?} via sentinels)", group.master_name()),
        None => String::new(),
    };
    Error::Store {
        backend: "redis",
        operation: "connect",
        message: format!(
            "cannot connect to redis {}{via}{why}; will keep retrying",
            inst.identity()
        ),
        retryable: true,
        source,
    }
}
