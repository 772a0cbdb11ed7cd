//! The workload of one mode: per queue one producer pushing numbered messages and one consumer
//! (several in the keyed mode) recording every delivery and every ack it issues, all in this
//! process, except where consumers must be killable
//! with SIGKILL: those run as child processes (`xtask chaos-worker`, see `child.rs`) that
//! report their deliveries on stdout.

use super::connect::{Settings, attach, consume_options, online_bus, store};
use super::history::Recorder;
use super::pace::paced;
use super::schedule::{KEYS, Mode, Plan, keyed_work};
use super::service::ServiceWork;
use busmq_core::{Bus, ConsumeOptions, PushOptions, Queue, When};
use futures::StreamExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

enum Consumer {
    Task(JoinHandle<()>),
    Process { child: tokio::process::Child, reader: JoinHandle<()> },
}

/// One mode's producers and consumers.
pub(crate) struct ModeRun {
    pub(crate) mode: Mode,
    pub(crate) rec: Arc<Recorder>,
    settings: Settings,
    names: Vec<String>,
    producer_bus: Bus,
    consumer_bus: Option<Bus>,
    /// Per queue, one handle per consumer (a handle consumes once at a time).
    consumer_queues: Vec<Vec<Queue>>,
    producers: Vec<JoinHandle<()>>,
    consumers: Vec<Consumer>,
    stop: watch::Sender<bool>,
    slow: watch::Sender<Duration>,
    next_consumer: u32,
    /// The service mode's servers and requesters (then there are no queue workers).
    service: Option<ServiceWork>,
}

impl std::fmt::Debug for ModeRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeRun").field("mode", &self.mode.name).finish_non_exhaustive()
    }
}

impl ModeRun {
    /// The names of this mode's queues.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Connects, attaches the queues and starts consumers, then producers. With `children`,
    /// consumers are child processes.
    pub(crate) async fn start(
        mode: Mode,
        label: &str,
        settings: Settings,
        plan: &Plan,
        start: Instant,
        children: bool,
    ) -> Result<ModeRun, String> {
        let producer_bus =
            online_bus(store(&settings.url, &settings.namespace, mode.wait)?).await?;
        let consumer_bus = if children || mode.service {
            None
        } else {
            Some(online_bus(store(&settings.url, &settings.namespace, mode.wait)?).await?)
        };
        if settings.trace {
            trace(&producer_bus, format!("{} producers", mode.name), start);
            if let Some(bus) = &consumer_bus {
                trace(bus, format!("{} consumers", mode.name), start);
            }
        }
        let mut names: Vec<String> =
            (0..plan.queues_per_mode).map(|i| format!("{}-{label}-q{i}", mode.name)).collect();
        let rec = Arc::new(Recorder::new(start, mode.keyed.then_some(KEYS)));
        let service = if mode.service {
            let name = format!("{}-{label}", mode.name);
            let work = ServiceWork::start(
                name,
                &settings,
                mode.wait,
                plan,
                rec.clone(),
                producer_bus.clone(),
            )
            .await?;
            names = vec![work.queue_name()];
            Some(work)
        } else {
            None
        };
        let mut run = ModeRun {
            mode,
            rec,
            settings,
            names,
            producer_bus,
            consumer_bus,
            consumer_queues: Vec::new(),
            producers: Vec::new(),
            consumers: Vec::new(),
            stop: watch::Sender::new(false),
            slow: watch::Sender::new(Duration::ZERO),
            next_consumer: 0,
            service,
        };
        if run.service.is_some() {
            return Ok(run);
        }
        if let Some(bus) = &run.consumer_bus {
            for name in &run.names {
                let mut handles = Vec::new();
                for _ in 0..mode.consumers_per_queue() {
                    let queue = bus.queue(name).map_err(|e| e.to_string())?;
                    attach(&queue).await?;
                    handles.push(queue);
                }
                run.consumer_queues.push(handles);
            }
        }
        run.spawn_consumers()?;
        for (index, name) in run.names.iter().enumerate() {
            let queue = run.producer_bus.queue(name).map_err(|e| e.to_string())?;
            attach(&queue).await?;
            let task = produce(
                queue,
                index,
                run.rec.clone(),
                run.stop.subscribe(),
                plan.push_every,
                plan.max_per_queue,
                run.mode,
            );
            run.producers.push(tokio::spawn(task));
        }
        Ok(run)
    }

    /// Starts every queue's consumers.
    fn spawn_consumers(&mut self) -> Result<(), String> {
        for index in 0..self.names.len() {
            for slot in 0..self.mode.consumers_per_queue() {
                let consumer = self.spawn_consumer(index, slot)?;
                self.consumers.push(consumer);
            }
        }
        Ok(())
    }

    fn spawn_consumer(&mut self, index: usize, slot: usize) -> Result<Consumer, String> {
        self.next_consumer += 1;
        let id = self.next_consumer;
        match self.consumer_queues.get(index).and_then(|handles| handles.get(slot)) {
            Some(queue) => Ok(Consumer::Task(tokio::spawn(consume(
                queue.clone(),
                index,
                id,
                consume_options(self.mode.reliable, self.settings.visibility),
                self.mode,
                self.rec.clone(),
                self.slow.subscribe(),
            )))),
            None => self.spawn_child(index, id),
        }
    }

    fn spawn_child(&self, index: usize, id: u32) -> Result<Consumer, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let visibility = self.settings.visibility.as_millis().to_string();
        let mut child = tokio::process::Command::new(exe)
            .arg("chaos-worker")
            .args(["--url", &self.settings.url, "--namespace", &self.settings.namespace])
            .args(["--queue", &self.names[index], "--visibility-ms", &visibility])
            .args(self.mode.reliable.then_some("--reliable"))
            .args(self.mode.wait.then_some("--wait"))
            .args(self.mode.keyed.then_some("--keyed"))
            .args(self.mode.batched.then_some("--batched"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start a chaos worker: {e}"))?;
        let stdout = child.stdout.take().ok_or("the worker has no stdout")?;
        let rec = self.rec.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.split(' ');
                let kind = parts.next();
                let seq = parts.next().and_then(|s| s.parse().ok());
                let deliveries = parts.next().and_then(|s| s.parse().ok());
                // The child's own clock: a pipe read late must not move a handout or an ack.
                let at = parts.next().and_then(|s| s.parse().ok()).map(|us| rec.unix_us_to_run(us));
                let (Some(seq), Some(deliveries)) = (seq, deliveries) else { continue };
                let at = at.unwrap_or_else(|| rec.now_us());
                match kind {
                    Some("D") => rec.delivered_at(index, seq, id, deliveries, at),
                    Some("A") => rec.ack_issued(index, seq, id, deliveries, at),
                    _ => {}
                }
            }
        });
        Ok(Consumer::Process { child, reader })
    }

    /// Kills every consumer (task abort, or SIGKILL of the process) and starts a replacement.
    pub(crate) async fn replace_consumers(&mut self) -> Result<(), String> {
        if let Some(service) = &mut self.service {
            return service.replace_servers();
        }
        let old = std::mem::take(&mut self.consumers);
        for consumer in old {
            kill(consumer).await;
        }
        self.spawn_consumers()
    }

    /// The service mode's typed errors by kind (`None` for the queue modes).
    pub(crate) fn service_errors(&self) -> Option<String> {
        self.service.as_ref().map(ServiceWork::errors)
    }

    /// Makes in-process consumers take `pause` per message (zero: normal speed).
    pub(crate) fn set_slow(&self, pause: Duration) {
        self.slow.send_replace(pause);
        if let Some(service) = &self.service {
            service.set_slow(pause);
        }
    }

    /// Stops pushing and waits for the producers to finish their last push.
    pub(crate) async fn stop_producers(&mut self) {
        if let Some(service) = &mut self.service {
            service.stop_requesters().await;
        }
        self.stop.send_replace(true);
        for task in self.producers.drain(..) {
            let _ = task.await;
        }
    }

    /// Stops everything and disconnects.
    pub(crate) async fn shutdown(mut self) {
        self.stop_producers().await;
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
        for consumer in self.consumers.drain(..) {
            kill(consumer).await;
        }
        let _ = self.producer_bus.disconnect().await;
        if let Some(bus) = &self.consumer_bus {
            let _ = bus.disconnect().await;
        }
    }
}

fn trace(bus: &Bus, label: String, start: Instant) {
    let mut events = bus.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("  [{:>7} ms] {label}: {event:?}", start.elapsed().as_millis());
        }
    });
}

async fn kill(consumer: Consumer) {
    match consumer {
        Consumer::Task(task) => {
            task.abort();
            let _ = task.await;
        }
        Consumer::Process { mut child, reader } => {
            if let Some(pid) = child.id() {
                // SIGKILL: no goodbye, no give-back; what it held comes back only by timeout.
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let _ = child.wait().await;
            let _ = reader.await;
        }
    }
}

async fn produce(
    queue: Queue,
    index: usize,
    rec: Arc<Recorder>,
    stop: watch::Receiver<bool>,
    every: Duration,
    max: u64,
    mode: Mode,
) {
    if mode.batched {
        return super::batched::produce(queue, index, rec, stop, every, max).await;
    }
    paced(every, max, stop, |seq| {
        let (queue, rec) = (&queue, &rec);
        async move {
            let started = rec.now();
            let acked = if mode.delayed {
                // 0 to 400 ms: due order differs from push order, and some are due at once.
                let delay = Duration::from_millis((seq % 5) * 100);
                queue.schedule(&seq, When::After(delay)).await.is_ok()
            } else if mode.keyed {
                let options = PushOptions::new().ordering_key(format!("k{}", seq % KEYS));
                queue.push_with(&seq, options).await.is_ok()
            } else {
                queue.push(&seq).await.is_ok()
            };
            rec.pushed(index, seq, started, acked);
        }
    })
    .await;
}

async fn consume(
    queue: Queue,
    index: usize,
    id: u32,
    options: ConsumeOptions,
    mode: Mode,
    rec: Arc<Recorder>,
    slow: watch::Receiver<Duration>,
) {
    // The previous consumer of this handle may still be giving its messages back.
    let mut stream = loop {
        match queue.consume_with::<u64>(options.clone()).await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    if mode.batched {
        let delivered = |seq, deliveries| {
            rec.delivered(index, seq, id, deliveries);
            Ok::<(), std::convert::Infallible>(())
        };
        let issuing = |seq, deliveries| {
            rec.ack_issued(index, seq, id, deliveries, rec.now_us());
            Ok(())
        };
        let _ = super::batched::consume(&mut stream, || *slow.borrow(), delivered, issuing).await;
    } else {
        while let Some(item) = stream.next().await {
            let Ok(delivery) = item else { continue };
            rec.delivered(index, *delivery.body(), id, delivery.deliveries());
            let work = if mode.keyed { keyed_work(*delivery.body()) } else { Duration::ZERO };
            let pause = work.max(*slow.borrow());
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if mode.reliable {
                let (seq, deliveries) = (*delivery.body(), delivery.deliveries());
                rec.ack_issued(index, seq, id, deliveries, rec.now_us());
                // A failed ack only means a redelivery, which the checker counts.
                let _ = delivery.ack().await;
            }
        }
    }
    rec.note(format!("consumer {id} of queue {index} ended by itself (a silent stop)"));
}
