//! Channels (SPEC section 3): a named, bi-directional link between two peers built on two
//! queues. A peer consumes `channel:<local>:<name>` and sends to `channel:<remote>:<name>`.

mod events;
pub(crate) mod frame;
mod inner;
mod presence;

pub use events::{ChannelEvent, ChannelEvents};

use inner::{Bound, ChannelInner, queue_name};

use crate::context::BusInner;
use crate::error::{Error, NameKind, Result};
use crate::headers::Headers;
use crate::name::{MAX_NAME_BYTES, shorten, validate};
use crate::queue::{AttachOptions, ConsumeOptions, DEFAULT_PREFETCH, Queue, ReliableOptions};
use crate::util::random_u64;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// Options of [`Channel::connect_with`] and [`Channel::listen_with`].
#[derive(Clone, Debug, Default)]
pub struct ChannelOptions {
    attach: AttachOptions,
    reliable: Option<ReliableOptions>,
    prefetch: Option<u32>,
}

impl ChannelOptions {
    /// At-most-once delivery, queue ttl 30 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ttl of the channel's two queues.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.attach = self.attach.ttl(ttl);
        self
    }

    /// At-least-once delivery (SPEC C6): messages must be acknowledged, and a peer that comes
    /// back after a crash receives what it did not acknowledge.
    pub fn reliable(mut self, options: ReliableOptions) -> Self {
        self.reliable = Some(options);
        self
    }

    /// Messages taken from the store per round trip.
    pub fn prefetch(mut self, prefetch: u32) -> Self {
        self.prefetch = Some(prefetch);
        self
    }

    fn consume_options(&self) -> ConsumeOptions {
        let options = ConsumeOptions::new().prefetch(self.prefetch.unwrap_or(DEFAULT_PREFETCH));
        match &self.reliable {
            Some(reliable) => options.reliable(reliable.clone()),
            None => options,
        }
    }
}

/// One peer's handle on a channel (SPEC C1). Cheap to clone.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<ChannelInner>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.inner.name)
            .field("local", &self.inner.local)
            .field("remote", &self.inner.remote)
            .field("bound", &self.is_bound())
            .finish()
    }
}

impl Channel {
    pub(crate) fn new(
        bus: Arc<BusInner>,
        name: &str,
        local: &str,
        remote: &str,
    ) -> Result<Channel> {
        validate(NameKind::Channel, name)?;
        validate(NameKind::Role, local)?;
        validate(NameKind::Role, remote)?;
        if local == remote {
            return Err(Error::InvalidName {
                kind: NameKind::Role,
                name: local.to_string(),
                reason: "the local and remote roles must differ".into(),
            });
        }
        // Both queue names must be valid too: the prefix counts towards the length limit, and
        // the error says so rather than naming a queue the user never named.
        for role in [local, remote] {
            let queue = format!("channel:{role}:{name}");
            if queue.len() > MAX_NAME_BYTES {
                let room = MAX_NAME_BYTES.saturating_sub(queue.len() - name.len());
                return Err(Error::InvalidName {
                    kind: NameKind::Channel,
                    name: shorten(name),
                    reason: format!(
                        "its queue for role {role:?} (\"channel:{role}:\" and the name) would be \
                         {} bytes long, over the limit of {MAX_NAME_BYTES}; with these roles a \
                         channel name may have at most {room} bytes",
                        queue.len()
                    ),
                });
            }
            queue_name(role, name)?;
        }
        Ok(Channel {
            inner: Arc::new(ChannelInner {
                bus,
                name: name.to_string(),
                local: local.to_string(),
                remote: remote.to_string(),
                bound: Mutex::new(None),
                op_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Connects with the roles as given (SPEC C1) and returns this peer's event stream, which
    /// starts with `Connect`.
    pub async fn connect<T: DeserializeOwned + 'static>(&self) -> Result<ChannelEvents<T>> {
        self.connect_with(ChannelOptions::default()).await
    }

    /// Connects with the roles swapped: the usual call of the "server" side when both peers use
    /// the default roles.
    pub async fn listen<T: DeserializeOwned + 'static>(&self) -> Result<ChannelEvents<T>> {
        self.listen_with(ChannelOptions::default()).await
    }

    /// [`Channel::connect`] with options.
    pub async fn connect_with<T: DeserializeOwned + 'static>(
        &self,
        options: ChannelOptions,
    ) -> Result<ChannelEvents<T>> {
        let (local, remote) = (self.inner.local.clone(), self.inner.remote.clone());
        self.bind(&local, &remote, options).await
    }

    /// [`Channel::listen`] with options.
    pub async fn listen_with<T: DeserializeOwned + 'static>(
        &self,
        options: ChannelOptions,
    ) -> Result<ChannelEvents<T>> {
        let (local, remote) = (self.inner.remote.clone(), self.inner.local.clone());
        self.bind(&local, &remote, options).await
    }

    async fn bind<T: DeserializeOwned + 'static>(
        &self,
        local: &str,
        remote: &str,
        options: ChannelOptions,
    ) -> Result<ChannelEvents<T>> {
        let inner = &self.inner;
        inner.bus.ensure_connected()?;
        let _op = inner.op_lock.lock().await;
        if crate::util::lock(&inner.bound).is_some() {
            return Err(Error::ChannelAlreadyConnected { channel: inner.name.clone() });
        }
        let inbox = Queue::new(inner.bus.clone(), queue_name(local, &inner.name)?);
        let outbox = Queue::new(inner.bus.clone(), queue_name(remote, &inner.name)?);
        let session = format!("{:016x}", random_u64());
        // The peer's session: its consumer's span (and so its takes) is made inside it.
        let span = tracing::debug_span!("channel", channel = inner.name, local, remote, session);
        let bound = async {
            outbox.attach_with(options.attach.clone()).await?;
            inbox.attach_with(options.attach.clone()).await?;
            outbox.push_frame(frame::connect(&session)).await?;
            inbox.consume_raw(options.consume_options()).await
        };
        let consumer = match bound.instrument(span.clone()).await {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::debug!(parent: &span, error = %error, "channel connect failed");
                let _ = inbox.detach().await;
                let _ = outbox.detach().await;
                return Err(error);
            }
        };
        tracing::debug!(parent: &span, "channel connected");
        *crate::util::lock(&inner.bound) = Some(Bound {
            inbox,
            outbox: outbox.clone(),
            session: session.clone(),
            span: span.clone(),
        });
        let codec = inner.bus.config.codec;
        Ok(ChannelEvents::new(consumer, inner.clone(), outbox, session, codec, span))
    }

    /// Whether this peer is connected.
    pub fn is_bound(&self) -> bool {
        crate::util::lock(&self.inner.bound).is_some()
    }

    /// Sends a message to the remote peer, in order (SPEC C4). The remote need not be connected
    /// yet; this peer must be (`ChannelNotConnected`). Returns the message id.
    pub async fn send<T: Serialize + ?Sized>(&self, message: &T) -> Result<u64> {
        self.send_with(message, Headers::new()).await
    }

    /// Sends a message with headers (SPEC P6): the remote peer finds them on the delivery of
    /// its `ChannelEvent::Message`. They are checked as [`Queue::push_with`] checks them.
    pub async fn send_with<T: Serialize + ?Sized>(
        &self,
        message: &T,
        headers: Headers,
    ) -> Result<u64> {
        let outbox = match &*crate::util::lock(&self.inner.bound) {
            Some(bound) => bound.outbox.clone(),
            None => {
                return Err(Error::ChannelNotConnected { channel: self.inner.name.clone() });
            }
        };
        let frame = self.encode(message)?;
        outbox.push_raw_with(frame, headers).await
    }

    /// Sends a message to the peer with role `endpoint` without connecting (SPEC C4).
    pub async fn send_to<T: Serialize + ?Sized>(&self, endpoint: &str, message: &T) -> Result<u64> {
        validate(NameKind::Role, endpoint)?;
        self.inner.bus.ensure_connected()?;
        let frame = self.encode(message)?;
        let queue = Queue::new(self.inner.bus.clone(), queue_name(endpoint, &self.inner.name)?);
        queue.attach().await?;
        let pushed = queue.push_raw(frame).await;
        let detached = queue.detach().await;
        let id = pushed?;
        detached?;
        Ok(id)
    }

    fn encode<T: Serialize + ?Sized>(&self, message: &T) -> Result<bytes::Bytes> {
        let target = || format!("channel {:?}", self.inner.name);
        self.inner.bus.config.encode_after(target, frame::message_buffer(), message)
    }

    /// Leaves the channel open for another peer (SPEC C5): the remote sees `RemoteDisconnect`,
    /// this peer's stream ends with `Disconnect`. A no-op when not connected.
    pub async fn disconnect(&self) -> Result<()> {
        let session = self.session();
        match session {
            Some(session) => self.inner.unbind(Some(frame::disconnect(&session))).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// Ends the channel for both peers (SPEC C5): the remote sees `End`; this peer's stream ends
    /// with `Disconnect` (not `End`).
    pub async fn end(&self) -> Result<()> {
        if self.session().is_none() {
            return Ok(());
        }
        self.inner.unbind(Some(frame::end())).await.map(|_| ())
    }

    fn session(&self) -> Option<String> {
        crate::util::lock(&self.inner.bound).as_ref().map(|b| b.session.clone())
    }
}
