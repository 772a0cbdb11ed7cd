//! Request/reply services (SPEC P2), built on queues: requests go to the queue
//! `service:<name>`, which every server consumes reliably (competing consumers, so a request
//! taken by a server that dies comes back to another after the visibility timeout); replies go
//! to the requester's private reply queue `service:<name>:r:<random>`, whose router hands them
//! to the waiting request by request id. Deadlines are the requester's alone: no clock is
//! compared across hosts.

mod handler;
mod options;
mod outbox;
mod replies;
mod request;
mod router;
mod server;
mod shared;
pub(crate) mod wire;

pub use handler::{HANDLER_PANICKED, ServerHandle};
pub use options::{DEFAULT_CONCURRENCY, DEFAULT_REQUEST_TIMEOUT, RequestOptions, ServeOptions};
pub use replies::{Replies, Reply};
pub use request::Request;
pub use server::Server;

use crate::context::BusInner;
use crate::error::{Error, NameKind, Result};
use crate::name::{MAX_NAME_BYTES, QueueName, shorten, validate};
use crate::queue::Queue;
use crate::util::{lock, random_u64};
use replies::RawReplies;
use router::Router;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::{self, Display};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a requester trusts that the service has a server, before asking the store again.
/// A server that went away within this window makes a request time out instead of failing
/// with `NoResponders`.
const RESPONDERS_FRESH: Duration = Duration::from_secs(1);

/// The longest reply-queue suffix (`:r:` and 16 hex digits) a service name must leave room for.
const REPLY_SUFFIX: usize = 3 + 16;

/// A request/reply service of a bus ([`Bus::service`](crate::Bus::service)). Cheap to clone;
/// the clones share one reply queue, attached on the first request and let go when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Service {
    inner: Arc<ServiceInner>,
}

struct ServiceInner {
    bus: Arc<BusInner>,
    name: String,
    /// The service queue, as the requester pushes to it.
    requests: Queue,
    attach: tokio::sync::Mutex<()>,
    router: tokio::sync::Mutex<Option<Arc<Router>>>,
    /// When a server was last seen.
    responders: Mutex<Option<Instant>>,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

impl Service {
    pub(crate) fn new(bus: Arc<BusInner>, name: &str) -> Result<Service> {
        validate(NameKind::Service, name)?;
        let longest = "service:".len() + name.len() + REPLY_SUFFIX;
        if longest > MAX_NAME_BYTES {
            return Err(Error::InvalidName {
                kind: NameKind::Service,
                name: shorten(name),
                reason: format!(
                    "its reply queues (\"service:\", the name and 19 more bytes) would be \
                     {longest} bytes long, over the limit of {MAX_NAME_BYTES}; a service name \
                     may have at most {} bytes",
                    MAX_NAME_BYTES - (longest - name.len())
                ),
            });
        }
        let requests = Queue::new(bus.clone(), QueueName::new(format!("service:{name}"))?);
        Ok(Service {
            inner: Arc::new(ServiceInner {
                bus,
                name: name.to_string(),
                requests,
                attach: tokio::sync::Mutex::new(()),
                router: tokio::sync::Mutex::new(None),
                responders: Mutex::new(None),
            }),
        })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Serves the service: returns a [`Server`], a `Stream` of the requests this server gets.
    /// Any number of servers (in this process or others) share the requests, each request
    /// going to one of them.
    pub async fn serve<T: DeserializeOwned + 'static>(
        &self,
        options: ServeOptions,
    ) -> Result<Server<T>> {
        let consume = options.consume_options()?;
        let bus = &self.inner.bus;
        bus.ensure_connected()?;
        let queue = Queue::new(bus.clone(), QueueName::new(self.inner.requests.name())?);
        queue.attach().await?;
        let consumer = queue.consume_raw(consume).await?;
        Ok(Server::new(bus.clone(), self.inner.name.clone(), queue, consumer, options.concurrency))
    }

    /// Serves the service with `handler`, running up to `concurrency` handlers at once. A
    /// handler's `Ok` is its request's final reply; its `Err` is sent as a failure (the
    /// requester gets `ServiceFailed` with the error's text); a handler that panics fails its
    /// request with [`HANDLER_PANICKED`]. A handler may also answer by itself (partial replies,
    /// or a final one, after which its result is ignored).
    pub async fn serve_with<T, R, E, F, Fut>(
        &self,
        options: ServeOptions,
        handler: F,
    ) -> Result<ServerHandle>
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Display + Send + 'static,
        F: Fn(Request<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
    {
        let server = self.serve::<T>(options).await?;
        Ok(handler::spawn(server, handler))
    }

    /// Sends a request and waits for its final reply (partial replies are skipped; a server
    /// that ended with `end()` answers with its last partial reply).
    ///
    /// Errors: `NoResponders` at once when the service has no server; `Timeout` when the final
    /// reply has not come within the timeout; `ServiceFailed` when the server failed the
    /// request; `Decode` when the reply does not decode into `R`. A request gets at most one
    /// final outcome: a later reply to it (from a server that got it again) is dropped. A
    /// request that timed out is not withdrawn: a server still handles it when it gets to it
    /// (no clock is compared across hosts), and its reply is dropped.
    pub async fn request<Q, R>(&self, request: &Q, options: RequestOptions) -> Result<R>
    where
        Q: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.request_reply(request, options).await.map(Reply::into_body)
    }

    /// [`Service::request`] that also returns the headers the server replied with.
    pub async fn request_reply<Q, R>(
        &self,
        request: &Q,
        options: RequestOptions,
    ) -> Result<Reply<R>>
    where
        Q: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.send(request, options, false).await?.final_reply().await
    }

    /// Sends a request and returns its [`Replies`]: every partial reply in order, then the
    /// final reply if it has a body, then the end. The timeout is the longest wait for each
    /// next reply (it is re-armed on every partial reply).
    pub async fn request_stream<Q, R>(
        &self,
        request: &Q,
        options: RequestOptions,
    ) -> Result<Replies<R>>
    where
        Q: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        Ok(Replies::new(self.send(request, options, true).await?))
    }

    async fn send<Q: Serialize + ?Sized>(
        &self,
        request: &Q,
        options: RequestOptions,
        rearm: bool,
    ) -> Result<RawReplies> {
        let inner = &self.inner;
        inner.bus.ensure_connected()?;
        // The deadline covers sending too: each store call below may take up to the store's
        // own timeout, and a request promises an outcome within its own.
        let now = Instant::now();
        // A timeout past the clock's range (Duration::MAX for "no deadline") waits ~30 years.
        let deadline = now
            .checked_add(options.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600));
        let timed_out = || Error::Timeout {
            operation: "request",
            target: format!("service {:?}", inner.name),
            after: options.timeout,
        };
        let router = tokio::time::timeout_at(deadline, async {
            self.check_responders().await?;
            self.router().await
        })
        .await
        .map_err(|_| timed_out())??;
        let id = format!("{:016x}{:016x}", random_u64(), random_u64());
        let target = || format!("service {:?}", inner.name);
        let header = wire::request_buffer(&id, &router.reply_to);
        let frame = inner.bus.config.encode_after(target, header, request)?;
        let (rx, registration) = router.register(&id);
        let codec = inner.bus.config.codec;
        let replies = RawReplies::new(
            rx,
            registration,
            inner.name.clone(),
            codec,
            options.timeout,
            deadline,
            rearm,
        );
        tokio::time::timeout_at(deadline, async {
            self.attach_requests().await?;
            inner.requests.push_raw_with(frame, options.headers).await
        })
        .await
        .map_err(|_| timed_out())??;
        Ok(replies)
    }

    async fn check_responders(&self) -> Result<()> {
        let inner = &self.inner;
        let seen = *lock(&inner.responders);
        if seen.is_some_and(|seen| seen.elapsed() < RESPONDERS_FRESH) {
            return Ok(());
        }
        if inner.requests.stat().await?.consumers == 0 {
            return Err(Error::NoResponders { service: inner.name.clone() });
        }
        *lock(&inner.responders) = Some(Instant::now());
        Ok(())
    }

    async fn router(&self) -> Result<Arc<Router>> {
        let mut slot = self.inner.router.lock().await;
        if let Some(router) = slot.as_ref().filter(|router| router.is_running()) {
            return Ok(router.clone());
        }
        let router = Arc::new(Router::start(self.inner.bus.clone(), &self.inner.name).await?);
        *slot = Some(router.clone());
        Ok(router)
    }

    async fn attach_requests(&self) -> Result<()> {
        let requests = &self.inner.requests;
        if requests.is_attached() {
            return Ok(());
        }
        let _attaching = self.inner.attach.lock().await;
        if !requests.is_attached() {
            requests.attach().await?;
        }
        Ok(())
    }
}
