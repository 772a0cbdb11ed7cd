//! A server: a reliable consumer of the service queue, competing with the other servers of the
//! service, that hands out at most `concurrency` unanswered requests at once.

use super::outbox::Outbox;
use super::request::{Answer, Request};
use super::shared::ServerShared;
use super::wire;
use crate::context::BusInner;
use crate::error::{Error, Result};
use crate::observability::log_error;
use crate::queue::{Consumer, Delivery, Queue};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The requests of a service as one server receives them ([`Service::serve`]): a `Stream` of
/// [`Request`]s shared with the service's other servers, each request going to one of them.
///
/// Items are `Err` for requests whose body does not decode into `T` (the requester is answered
/// with a failure) and for a consumer that could not go on. The stream ends after `max`
/// requests, on [`Server::stop`], or when the bus disconnects. Dropping it stops at once: the
/// requests it holds unanswered are given back.
///
/// [`Service::serve`]: super::Service::serve
pub struct Server<T> {
    consumer: Consumer<Bytes>,
    shared: Arc<ServerShared>,
    permits: Arc<Semaphore>,
    concurrency: u32,
    waiting: Option<BoxFuture<'static, OwnedSemaphorePermit>>,
    permit: Option<OwnedSemaphorePermit>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Server<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("service", &self.shared.service)
            .field("consumer", &self.consumer.id())
            .finish_non_exhaustive()
    }
}

impl<T> Unpin for Server<T> {}

impl<T> Server<T> {
    pub(crate) fn new(
        bus: Arc<BusInner>,
        service: String,
        queue: Queue,
        consumer: Consumer<Bytes>,
        concurrency: u32,
    ) -> Self {
        let span =
            tracing::debug_span!("service_server", service, consumer = consumer.id(), concurrency,);
        tracing::debug!(parent: &span, "serving");
        let shared = Arc::new(ServerShared {
            outbox: Outbox::new(bus.clone()),
            bus,
            service,
            span,
            _queue: queue,
        });
        Server {
            consumer,
            shared,
            permits: Arc::new(Semaphore::new(concurrency as usize)),
            concurrency,
            waiting: None,
            permit: None,
            _marker: PhantomData,
        }
    }

    /// Stops serving gracefully: no request is taken any more, those taken and not handed out
    /// go back to the service queue at once, and the call returns when every request handed
    /// out has its final answer (or was dropped). Requests held by the caller itself must be
    /// answered first, as this waits for them.
    ///
    /// The requests in flight are no longer renewed once the server stops: answer them within
    /// the visibility timeout.
    pub async fn stop(&mut self) {
        // This server's own reservation for the next request is not a request in flight.
        self.waiting = None;
        self.permit = None;
        self.consumer.stop_keeping_held().await;
        let permits = self.permits.clone();
        let _all = permits.acquire_many(self.concurrency).await;
        tracing::debug!(parent: &self.shared.span, "stopped serving");
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.permit.is_some() {
            return Poll::Ready(());
        }
        let permits = self.permits.clone();
        let waiting = self.waiting.get_or_insert_with(|| {
            async move { permits.acquire_owned().await.expect("the semaphore is never closed") }
                .boxed()
        });
        match waiting.as_mut().poll(cx) {
            Poll::Ready(permit) => {
                self.waiting = None;
                self.permit = Some(permit);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: DeserializeOwned> Server<T> {
    /// Turns a delivery into a request, or reports why it is not one.
    fn request(&mut self, delivery: Delivery<Bytes>) -> Result<Request<T>> {
        let frame = match wire::parse_request(delivery.body()) {
            Ok(frame) => frame,
            Err(detail) => {
                let error = Error::ForeignData { queue: delivery_queue(&self.shared), detail };
                log_error("foreign service request", Some(&delivery_queue(&self.shared)), &error);
                // Dead-lettered, so that it is neither lost silently nor redelivered forever.
                tokio::spawn(async move {
                    let _ = delivery.reject("not a busmq service request").await;
                });
                return Err(error);
            }
        };
        let prefix = format!("service:{}:r:", self.shared.service);
        let suffix = frame.reply_to.strip_prefix(&prefix);
        // Exactly the prefix and 16 hex digits: `service:a:r:x` is also the request queue of
        // a service named `a:r:x`.
        let reply_queue =
            suffix.is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()));
        if !reply_queue {
            // Never push to a queue a frame names unless it is one of this service's reply
            // queues.
            let detail =
                format!("a service request whose reply queue {:?} is foreign", frame.reply_to);
            let error = Error::ForeignData { queue: delivery_queue(&self.shared), detail };
            tokio::spawn(async move {
                let _ = delivery.reject("a foreign reply queue").await;
            });
            return Err(error);
        }
        let permit = self.permit.take().expect("a permit is held before taking");
        let headers = delivery.headers().clone();
        let deliveries = delivery.deliveries();
        let message = delivery.id();
        let body = self.shared.bus.config.codec.decode::<T>(&frame.body);
        let answer =
            Arc::new(Answer::new(self.shared.clone(), frame.id, frame.reply_to, delivery, permit));
        match body {
            Ok(body) => Ok(Request::new(body, headers, deliveries, answer)),
            Err(source) => {
                let error = Error::Decode {
                    target: format!("service {:?}", self.shared.service),
                    id: message,
                    source,
                };
                let message = format!("the request could not be decoded: {error}");
                tokio::spawn(async move {
                    let _ = answer.fail(&message).await;
                });
                Err(error)
            }
        }
    }
}

fn delivery_queue(shared: &ServerShared) -> String {
    format!("service:{}", shared.service)
}

impl<T: DeserializeOwned> Stream for Server<T> {
    type Item = Result<Request<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.poll_permit(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(match Pin::new(&mut this.consumer).poll_next(cx) {
            Poll::Ready(Some(Ok(delivery))) => Some(this.request(delivery)),
            Poll::Ready(Some(Err(error))) => Some(Err(error)),
            Poll::Ready(None) => None,
            Poll::Pending => return Poll::Pending,
        })
    }
}
