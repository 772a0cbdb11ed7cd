//! One pub/sub connection per instance, shared by every watcher and topic subscriber.
//!
//! Channels are reference-counted: the first subscriber of a channel sends SUBSCRIBE, the last
//! one to go sends UNSUBSCRIBE. After a reconnection the hub subscribes every live channel once
//! on the new connection (the old one is gone, so nothing is delivered twice) and sends
//! [`Notice::Reset`] to every watcher, because notices published during the outage are lost.
//!
//! On a Redis Cluster the "connection" is the cluster connection and channels are shard
//! channels (`SSUBSCRIBE`, one command per channel since channels of different slots live on
//! different nodes). A shard subscription can be dropped by the cluster (slot moved, node
//! lost): the hub is then marked for [`Hub::repair`], which subscribes every live channel
//! again on its current owner.

use crate::fault::CallError;
use busmq_core::store::Notice;
use busmq_core::support::lock;
use bytes::Bytes;
use futures::FutureExt;
use futures::Stream;
use futures::future::BoxFuture;
use redis::Msg;
use redis::aio::PubSubSink;
use redis::cluster_async::ClusterConnection;
use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug)]
enum Tx {
    /// A watcher, and the last generation that was already closed when it started watching:
    /// a close notice for that generation (still in flight when the watch began) is not news.
    Watch(mpsc::UnboundedSender<Notice>, u64),
    Topic(mpsc::UnboundedSender<Bytes>),
}

/// What a notice payload says: `a` (available), `c:<generation>` (closed).
fn notice(payload: &[u8], closed_before: u64) -> Option<Notice> {
    let Some(generation) = payload.strip_prefix(b"c") else {
        return Some(Notice::Available);
    };
    let generation = generation.strip_prefix(b":").unwrap_or(generation);
    let generation = std::str::from_utf8(generation).ok().and_then(|g| g.parse::<u64>().ok());
    match generation {
        Some(g) if g <= closed_before => None,
        _ => Some(Notice::Closed),
    }
}

/// How a session subscribes: on one node's pub/sub connection, or with shard subscriptions on
/// a cluster connection.
#[derive(Clone)]
pub(crate) enum Sink {
    Plain(PubSubSink),
    Sharded(ClusterConnection),
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sink::Plain(_) => "Sink::Plain",
            Sink::Sharded(_) => "Sink::Sharded",
        })
    }
}

/// How many shard subscriptions are in flight at once when many are sent.
const SHARDED_CONCURRENCY: usize = 64;

impl Sink {
    async fn subscribe(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Sink::Plain(sink) => sink.subscribe(channels).await,
            Sink::Sharded(conn) => {
                for part in channels.chunks(SHARDED_CONCURRENCY) {
                    let calls: Vec<BoxFuture<'static, redis::RedisResult<()>>> = part
                        .iter()
                        .cloned()
                        .map(|channel| {
                            let mut conn = conn.clone();
                            async move { conn.ssubscribe(channel).await }.boxed()
                        })
                        .collect();
                    for result in futures::future::join_all(calls).await {
                        result?;
                    }
                }
                Ok(())
            }
        }
    }

    async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            Sink::Plain(sink) => sink.unsubscribe(channel).await,
            Sink::Sharded(conn) => conn.sunsubscribe(channel).await,
        }
    }
}

#[derive(Debug)]
struct Sub {
    id: u64,
    tx: Tx,
}

#[derive(Debug, Default)]
struct HubState {
    sink: Option<Sink>,
    channels: HashMap<String, Vec<Sub>>,
    next: u64,
    closed: bool,
}

/// The subscriptions of one instance.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
    // Serializes SUBSCRIBE/UNSUBSCRIBE traffic and session changes, so that a channel is never
    // unsubscribed after a newer subscriber added it back.
    ops: tokio::sync::Mutex<()>,
    timeout: Duration,
    /// Some shard subscriptions may have been dropped by the cluster.
    dirty: AtomicBool,
}

impl Hub {
    pub(crate) fn new(timeout: Duration) -> Hub {
        Hub {
            state: Mutex::default(),
            ops: tokio::sync::Mutex::new(()),
            timeout,
            dirty: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        lock(&self.state)
    }

    /// Watches a queue's notification channel. `closed_before` is the generation the queue's
    /// tombstone held just before (0 when none).
    pub(crate) async fn watch(
        self: &Arc<Self>,
        channel: String,
        closed_before: u64,
    ) -> Result<Subscription<Notice>, CallError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let guard = self.add(channel, Tx::Watch(tx, closed_before)).await?;
        Ok(Subscription { rx, _guard: guard })
    }

    /// Subscribes to a topic channel.
    pub(crate) async fn topic(
        self: &Arc<Self>,
        channel: String,
    ) -> Result<Subscription<Bytes>, CallError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let guard = self.add(channel, Tx::Topic(tx)).await?;
        Ok(Subscription { rx, _guard: guard })
    }

    async fn add(self: &Arc<Self>, channel: String, tx: Tx) -> Result<Guard, CallError> {
        let _ops = self.ops.lock().await;
        let sink = {
            let st = self.lock();
            if st.closed {
                return Err(CallError::Down);
            }
            if st.channels.contains_key(&channel) {
                None
            } else {
                Some(st.sink.clone().ok_or(CallError::Down)?)
            }
        };
        if let Some(mut sink) = sink {
            // Returns once Redis confirmed the subscription: messages published after this
            // call returns are delivered.
            match tokio::time::timeout(self.timeout, sink.subscribe(std::slice::from_ref(&channel)))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(CallError::Timeout),
            }
        }
        let mut st = self.lock();
        st.next += 1;
        let id = st.next;
        st.channels.entry(channel.clone()).or_default().push(Sub { id, tx });
        Ok(Guard { hub: Arc::clone(self), channel, id })
    }

    fn remove(self: &Arc<Self>, channel: &str, id: u64) {
        let unused = {
            let mut st = self.lock();
            match st.channels.get_mut(channel) {
                Some(subs) => {
                    subs.retain(|s| s.id != id);
                    let empty = subs.is_empty();
                    if empty {
                        st.channels.remove(channel);
                    }
                    empty && st.sink.is_some()
                }
                None => false,
            }
        };
        if !unused {
            return;
        }
        // Drop is synchronous: unsubscribe in the background (outside a runtime there is no
        // connection to clean up anyway).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let hub = Arc::clone(self);
            let channel = channel.to_string();
            rt.spawn(async move { hub.unsubscribe_if_unused(channel).await });
        }
    }

    async fn unsubscribe_if_unused(&self, channel: String) {
        let _ops = self.ops.lock().await;
        let sink = {
            let st = self.lock();
            if st.channels.contains_key(&channel) {
                return;
            }
            st.sink.clone()
        };
        if let Some(mut sink) = sink {
            let _ = tokio::time::timeout(self.timeout, sink.unsubscribe(&channel)).await;
        }
    }

    /// Installs the pub/sub connection of a new session and subscribes every live channel on
    /// it, once.
    pub(crate) async fn start_session(&self, mut sink: Sink) -> Result<(), CallError> {
        let _ops = self.ops.lock().await;
        self.dirty.store(false, Ordering::SeqCst);
        let channels: Vec<String> = self.lock().channels.keys().cloned().collect();
        for part in channels.chunks(512) {
            match tokio::time::timeout(self.timeout, sink.subscribe(part)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(CallError::Timeout),
            }
        }
        self.lock().sink = Some(sink);
        Ok(())
    }

    /// Notes that the cluster dropped `channel` (or, with `None`, that a node was lost, so
    /// any channel may be gone). Only channels still wanted matter: our own unsubscriptions
    /// are confirmed the same way.
    pub(crate) fn mark_lost(&self, channel: Option<&str>) {
        let wanted = match channel {
            Some(c) => self.lock().channels.contains_key(c),
            None => true,
        };
        if wanted {
            self.dirty.store(true, Ordering::SeqCst);
        }
    }

    /// Whether a [`Hub::repair`] is due.
    pub(crate) fn needs_repair(&self) -> bool {
        self.dirty.load(Ordering::SeqCst)
    }

    /// Subscribes every live channel again (each on its slot's current owner; subscribing a
    /// channel twice on one connection is harmless). Returns whether it all succeeded; the
    /// hub stays marked otherwise, for the next attempt.
    pub(crate) async fn repair(&self) -> bool {
        let _ops = self.ops.lock().await;
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return true;
        }
        let (sink, channels) = {
            let st = self.lock();
            (st.sink.clone(), st.channels.keys().cloned().collect::<Vec<_>>())
        };
        let Some(mut sink) = sink else {
            // The session is over; the next one subscribes everything anyway.
            return true;
        };
        let done = matches!(
            tokio::time::timeout(self.timeout, sink.subscribe(&channels)).await,
            Ok(Ok(()))
        );
        if !done {
            self.dirty.store(true, Ordering::SeqCst);
        }
        done
    }

    /// Forgets the connection of a session that ended.
    pub(crate) fn end_session(&self) {
        self.lock().sink = None;
    }

    /// Tells every watcher that notices may have been missed.
    pub(crate) fn announce_reset(&self) {
        let st = self.lock();
        for sub in st.channels.values().flatten() {
            if let Tx::Watch(tx, _) = &sub.tx {
                let _ = tx.send(Notice::Reset);
            }
        }
    }

    /// Delivers one pub/sub message to the channel's subscribers.
    pub(crate) fn dispatch(&self, msg: &Msg) {
        let st = self.lock();
        let Some(subs) = st.channels.get(msg.get_channel_name()) else {
            return;
        };
        let payload = msg.get_payload_bytes();
        let mut bytes: Option<Bytes> = None;
        for sub in subs {
            match &sub.tx {
                Tx::Watch(tx, closed_before) => {
                    if let Some(n) = notice(payload, *closed_before) {
                        let _ = tx.send(n);
                    }
                }
                Tx::Topic(tx) => {
                    let b = bytes.get_or_insert_with(|| Bytes::copy_from_slice(payload));
                    let _ = tx.send(b.clone());
                }
            }
        }
    }

    /// Ends every stream (disconnect) and refuses new subscriptions until reopened.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.sink = None;
        st.channels.clear();
    }

    /// Accepts subscriptions again (connect after a disconnect).
    pub(crate) fn reopen(&self) {
        self.lock().closed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_notices_of_generations_closed_before_the_watch_are_dropped() {
        assert_eq!(notice(b"a", 0), Some(Notice::Available));
        assert_eq!(notice(b"c:17", 0), Some(Notice::Closed));
        assert_eq!(notice(b"c:17", 16), Some(Notice::Closed));
        assert_eq!(notice(b"c:17", 17), None);
        assert_eq!(notice(b"c", 17), Some(Notice::Closed));
    }
}

/// Unsubscribes when the stream is dropped.
#[derive(Debug)]
struct Guard {
    hub: Arc<Hub>,
    channel: String,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.hub.remove(&self.channel, self.id);
    }
}

/// A stream of notices or topic messages; dropping it ends the subscription.
#[derive(Debug)]
pub(crate) struct Subscription<T> {
    rx: mpsc::UnboundedReceiver<T>,
    _guard: Guard,
}

impl<T> Stream for Subscription<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}
