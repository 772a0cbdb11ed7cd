//! Topics and their live subscriptions, shared by every store of one `Memory`.
//!
//! Each subscription has its own unbounded channel: a slow subscriber never blocks publishers
//! and never loses a message; what it has not read yet stays in its channel until it reads it
//! or drops the stream.

use busmq_core::TopicName;
use bytes::Bytes;
use futures::channel::mpsc;
use std::collections::HashMap;
use std::sync::Mutex;

use busmq_core::support::lock;

#[derive(Debug)]
struct Subscriber {
    /// The connection session of the store that subscribed; its disconnect ends the
    /// subscription.
    session: u64,
    tx: mpsc::UnboundedSender<Bytes>,
}

#[derive(Debug, Default)]
pub(crate) struct Topics {
    map: Mutex<HashMap<TopicName, Vec<Subscriber>>>,
}

impl Topics {
    /// Delivers to every live subscription; returns how many received the message.
    pub(crate) fn publish(&self, topic: &TopicName, payload: Bytes) -> u64 {
        let mut map = lock(&self.map);
        let Some(subscribers) = map.get_mut(topic) else {
            return 0;
        };
        let mut delivered = 0;
        subscribers.retain(|s| {
            let sent = s.tx.unbounded_send(payload.clone()).is_ok();
            delivered += u64::from(sent);
            sent
        });
        if subscribers.is_empty() {
            map.remove(topic);
        }
        delivered
    }

    /// Registers a subscription; it receives everything published after this returns.
    pub(crate) fn subscribe(
        &self,
        topic: &TopicName,
        session: u64,
    ) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded();
        lock(&self.map).entry(topic.clone()).or_default().push(Subscriber { session, tx });
        rx
    }

    /// Ends every subscription of `session`: their streams end after what they already hold.
    pub(crate) fn end_session(&self, session: u64) {
        self.retain(|s| s.session != session);
    }

    /// Forgets subscriptions whose stream was dropped.
    pub(crate) fn sweep(&self) {
        self.retain(|s| !s.tx.is_closed());
    }

    fn retain(&self, keep: impl Fn(&Subscriber) -> bool) {
        let mut map = lock(&self.map);
        map.retain(|_, subscribers| {
            subscribers.retain(&keep);
            !subscribers.is_empty()
        });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).values().map(Vec::len).sum()
    }
}
