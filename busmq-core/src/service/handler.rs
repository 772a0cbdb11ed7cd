//! The handler form of serving ([`Service::serve_with`](super::Service::serve_with)): a task
//! that takes requests from a [`Server`] and runs up to `concurrency` handlers at once, each
//! handler's result being its request's final answer.

use super::request::{Answer, Request};
use super::server::Server;
use crate::headers::Headers;
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::{self, Display};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

/// The message a requester gets when a handler panicked.
pub const HANDLER_PANICKED: &str = "handler panicked";

/// A running [`Service::serve_with`](super::Service::serve_with). [`ServerHandle::stop`] stops
/// it gracefully; dropping the handle stops it at once (the handlers are cancelled and their
/// requests given back, to be answered by another server).
pub struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    service: String,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").field("service", &self.service).finish_non_exhaustive()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

impl ServerHandle {
    /// Stops gracefully: no new request is taken, the handlers running finish and their
    /// answers are sent, the requests taken and not started go back to the service at once.
    /// Returns when all of that is done.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Whether serving has ended (after `max` requests, or the bus disconnected).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts the task serving `server` with `handler`.
pub(crate) fn spawn<T, R, E, F, Fut>(mut server: Server<T>, handler: F) -> ServerHandle
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    E: Display + Send + 'static,
    F: Fn(Request<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
{
    let (stop, mut stopped) = oneshot::channel();
    let service = server.service().to_string();
    let task = tokio::spawn(async move {
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                item = server.next() => match item {
                    Some(Ok(request)) => {
                        let answer = request.answer();
                        running.spawn(answer_with(answer, handler(request)));
                    }
                    Some(Err(error)) => tracing::debug!(%error, "request not handled"),
                    None => break,
                },
            }
        }
        // Stopping waits for the handlers' answers: they go on running in the set meanwhile.
        server.stop().await;
        while running.join_next().await.is_some() {}
    });
    ServerHandle { stop: Some(stop), task, service }
}

/// Runs one handler's future and sends its result as the final answer.
async fn answer_with<R, E>(answer: Arc<Answer>, outcome: impl Future<Output = Result<R, E>>)
where
    R: Serialize,
    E: Display,
{
    let span = answer.span().clone();
    async {
        // A handler that answered by itself (`reply`, `fail`, `end`) has the final word; its
        // result is then ignored.
        let sent = match AssertUnwindSafe(outcome).catch_unwind().await {
            Ok(Ok(reply)) => match answer.encode_final(&reply) {
                Ok(frame) => answer.finish(frame, Headers::new()).await,
                Err(error) => answer.fail(&error.to_string()).await,
            },
            Ok(Err(error)) => answer.fail(&error.to_string()).await,
            Err(_) => {
                tracing::warn!("service handler panicked");
                answer.fail(HANDLER_PANICKED).await
            }
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "handler's answer not sent");
        }
    }
    .instrument(span)
    .await
}
