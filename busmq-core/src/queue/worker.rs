//! The worker helper (SPEC P13): consumes a queue reliably and runs an async handler on up to
//! N deliveries at once, acknowledging on success and applying the retry policy on an error
//! or a panic, with a graceful stop.

use super::delivery::Delivery;
use super::options::{ConsumeOptions, ReliableOptions};
use super::retry::RetryPolicy;
use super::{Consumer, Queue};
use crate::error::Result;
use crate::headers::Headers;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinSet};
use tracing::Instrument;

/// One message as a [`Worker`]'s handler gets it: the decoded body and what else the delivery
/// says. The worker keeps the delivery itself and settles it when the handler returns.
#[derive(Clone, Debug)]
pub struct Job<T> {
    /// The message id.
    pub id: u64,
    /// How many times it has been delivered, this time included (1 the first time).
    pub deliveries: u32,
    /// The headers it was pushed with (SPEC P6).
    pub headers: Headers,
    /// The priority level it was pushed with (SPEC P12; 0 by default).
    pub priority: u8,
    /// The ordering key it was pushed with (SPEC P11), if any: the key's next message waits
    /// until this job's message is acknowledged (or dead-lettered).
    pub ordering_key: Option<Arc<str>>,
    /// The decoded message.
    pub body: T,
}

/// Runs an async handler on the messages of a queue (SPEC P13), on up to `concurrency` at
/// once, consuming reliably: `Ok` acknowledges the message; `Err` or a panic gives it back
/// after the retry policy's delay (see [`Delivery::fail`]), and once it has been delivered
/// `max_deliveries` times it goes to the dead-letter queue with the error as its reason.
///
/// It stops when the shutdown signal completes, on [`WorkerHandle::stop`], or when consuming
/// ends (the queue was detached or closed): running handlers finish and their messages are
/// settled, and the messages it had taken but not started are given back at once. While
/// stopping, the visibility of running handlers' messages is no longer extended, so a handler
/// that runs past `visibility_timeout` may see its message delivered elsewhere too.
///
/// Each message runs in a `job` span (TRACE: queue, id, deliveries) with an event for its
/// outcome (TRACE for success, DEBUG for an error or a panic); acks, nacks and dead letters
/// are counted by the consumer's metrics (`busmq_acked_total`, `busmq_nacked_total`,
/// `busmq_dead_lettered_total`).
pub struct Worker {
    queue: Queue,
    concurrency: usize,
    options: ReliableOptions,
    shutdown: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue.name())
            .field("concurrency", &self.concurrency)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Most handlers a worker runs at once (the consumer's largest prefetch).
const MAX_CONCURRENCY: usize = 10_000;

impl Worker {
    /// A worker on `queue` (attached or not yet: it starts when the queue is attached), with
    /// concurrency 1, the default [`ReliableOptions`] and the default [`RetryPolicy`]
    /// (exponential backoff: a failing handler is not retried at once).
    pub fn new(queue: &Queue) -> Self {
        let options = ReliableOptions { retry: RetryPolicy::default(), ..Default::default() };
        Worker { queue: queue.clone(), concurrency: 1, options, shutdown: None }
    }

    /// Runs up to `n` handlers at once (1..=10000; it also takes at most `n` messages ahead,
    /// so that the others stay available to other workers).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// When failed messages come back (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = policy;
        self
    }

    /// The reliable consumption options (visibility timeout, `max_deliveries`, dead-letter
    /// queue, retry policy), replacing those set so far, the retry policy included: call
    /// [`Worker::retry`] after this to set another.
    pub fn reliable(mut self, options: ReliableOptions) -> Self {
        self.options = options;
        self
    }

    /// Stops gracefully when `signal` completes (e.g. `tokio::signal::ctrl_c()`).
    pub fn shutdown(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// Runs `handler` on each message until the worker stops (see [`Worker`]). Fails only
    /// when consuming cannot start (invalid options, `AlreadyConsuming`, a closed queue).
    pub async fn run<T, F, Fut, E>(self, handler: F) -> Result<()>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Job<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        let concurrency = self.concurrency;
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(crate::Error::invalid_option(
                "concurrency",
                format!("must be between 1 and {MAX_CONCURRENCY}, got {concurrency}"),
            ));
        }
        let options = ConsumeOptions::new().reliable(self.options).prefetch(concurrency as u32);
        let consumer: Consumer<T> = self.queue.consume_with(options).await?;
        let shutdown = self.shutdown.unwrap_or_else(|| Box::pin(std::future::pending()));
        work(consumer, concurrency, Arc::new(handler), shutdown, self.queue.name()).await;
        Ok(())
    }

    /// Starts the worker in a task of its own; stop it with [`WorkerHandle::stop`].
    pub fn start<T, F, Fut, E>(mut self, handler: F) -> WorkerHandle
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Job<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = self.shutdown.take();
        self.shutdown = Some(Box::pin(async move {
            match signal {
                Some(signal) => {
                    tokio::select! {
                        _ = signal => {}
                        _ = stopped => {}
                    }
                }
                None => {
                    let _ = stopped.await;
                }
            }
        }));
        WorkerHandle { stop: Some(stop), task: tokio::spawn(self.run(handler)) }
    }
}

/// A worker started with [`Worker::start`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl WorkerHandle {
    /// Stops gracefully (running handlers finish and are settled, messages taken and not
    /// started are given back) and waits until that is done.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }

    /// Waits until the worker ends by itself (its shutdown signal, or consuming ended).
    pub async fn join(self) -> Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

impl Queue {
    /// Runs `handler` on this queue's messages, up to `concurrency` at once, with the default
    /// retry policy, until consuming ends: a shorthand for
    /// `Worker::new(queue).concurrency(concurrency).run(handler)` (see [`Worker`]).
    pub async fn process<T, F, Fut, E>(&self, concurrency: usize, handler: F) -> Result<()>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Job<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        Worker::new(self).concurrency(concurrency).run(handler).await
    }
}

/// The worker's loop: starts handlers while fewer than `concurrency` run, until the shutdown
/// signal or the end of the stream; then stops the consumer (keeping what handlers hold) and
/// lets the running handlers finish.
async fn work<T, F, Fut, E>(
    mut consumer: Consumer<T>,
    concurrency: usize,
    handler: Arc<F>,
    mut shutdown: BoxFuture<'static, ()>,
    queue: &str,
) where
    T: Send + 'static,
    F: Fn(Job<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
    E: Display + 'static,
{
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(_) = running.join_next(), if !running.is_empty() => {}
            next = consumer.next(), if running.len() < concurrency => match next {
                Some(Ok(delivery)) => {
                    let span = tracing::trace_span!(
                        "job",
                        queue,
                        id = delivery.id(),
                        deliveries = delivery.deliveries()
                    );
                    running.spawn(one(delivery, handler.clone()).instrument(span));
                }
                // Undecodable: the consumer reported it and gave the message back.
                Some(Err(_)) => {}
                None => break,
            },
        }
    }
    consumer.stop_keeping_held().await;
    while running.join_next().await.is_some() {}
}

/// Runs the handler on one delivery and settles it by the outcome.
async fn one<T, F, Fut, E>(delivery: Delivery<T>, handler: Arc<F>)
where
    T: Send + 'static,
    F: Fn(Job<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
    E: Display + 'static,
{
    let mut body = None;
    let delivery = delivery.map(|b| body = Some(b));
    let Some(body) = body else { return };
    let job = Job {
        id: delivery.id(),
        deliveries: delivery.deliveries(),
        headers: delivery.headers().clone(),
        priority: delivery.priority(),
        ordering_key: delivery.ordering_key().map(Arc::from),
        body,
    };
    // In a task of its own, so that a panic is caught and the worker goes on.
    let run = handler(job);
    let outcome =
        tokio::spawn(async move { run.await.map_err(|e| e.to_string()) }.in_current_span()).await;
    let settled = match outcome {
        Ok(Ok(())) => {
            tracing::trace!("job done");
            delivery.ack().await
        }
        Ok(Err(reason)) => {
            tracing::debug!(error = reason, "job failed");
            delivery.fail(reason).await
        }
        Err(error) => {
            let reason = panic_text(error);
            tracing::debug!(error = reason, "job panicked");
            delivery.fail(reason).await
        }
    };
    if let Err(error) = settled {
        // Counted by the consumer's metrics; the message comes back after its visibility.
        tracing::debug!(error = %error, "job could not be settled");
    }
}

/// What a handler's panic said, as the reason of its failure.
fn panic_text(error: JoinError) -> String {
    if !error.is_panic() {
        return "handler cancelled".into();
    }
    let payload = error.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("handler panicked: {text}")
}
