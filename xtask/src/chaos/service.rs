//! The workload of the `service` mode: competing servers of one service on one bus, and
//! requesters on another bus each sending one request at a time with a deadline. Every request
//! must end in exactly one outcome (its own reply, or a typed error) no later than its deadline;
//! a reply to another request, or an outcome past the deadline, is a violation.
//!
//! The recorder sees a request as a push (acknowledged when it got its reply) and its reply as
//! the delivery, so the checker's recovery figure is the time from a fault's end to the first
//! reply to a request sent after the fault began.

use super::connect::{Settings, online_bus, store};
use super::history::Recorder;
use super::pace::paced;
use super::schedule::Plan;
use busmq_core::{Bus, RequestOptions, ServeOptions, Service};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Competing servers of the service.
const SERVERS: usize = 2;
/// The requesters' deadline.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);
/// How far past its deadline an outcome may come (scheduling on a loaded 2-core machine)
/// before it counts as a hang.
const GRACE: Duration = Duration::from_millis(500);

/// A request and its reply: (requester, sequence number).
type Body = (usize, u64);

/// What the requesters saw besides replies.
#[derive(Debug, Default)]
struct Outcomes {
    late: AtomicU64,
    wrong: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

/// One service, its servers and its requesters.
pub(crate) struct ServiceWork {
    name: String,
    server_bus: Bus,
    rec: Arc<Recorder>,
    visibility: Duration,
    servers: Vec<JoinHandle<()>>,
    requesters: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    slow: watch::Sender<Duration>,
    outcomes: Arc<Outcomes>,
    next_server: u32,
}

impl ServiceWork {
    /// Connects the servers' bus, starts the servers, then one requester per queue of the plan
    /// on `requester_bus`.
    pub(crate) async fn start(
        name: String,
        settings: &Settings,
        wait: bool,
        plan: &Plan,
        rec: Arc<Recorder>,
        requester_bus: Bus,
    ) -> Result<ServiceWork, String> {
        let server_bus = online_bus(store(&settings.url, &settings.namespace, wait)?).await?;
        let mut work = ServiceWork {
            name,
            server_bus,
            rec,
            visibility: settings.visibility,
            servers: Vec::new(),
            requesters: Vec::new(),
            stop: watch::Sender::new(false),
            slow: watch::Sender::new(Duration::ZERO),
            outcomes: Arc::new(Outcomes::default()),
            next_server: 0,
        };
        for _ in 0..SERVERS {
            let server = work.spawn_server()?;
            work.servers.push(server);
        }
        let service = requester_bus.service(&work.name).map_err(|e| e.to_string())?;
        wait_for_servers(&service).await?;
        for index in 0..plan.queues_per_mode {
            work.requesters.push(tokio::spawn(request_loop(
                service.clone(),
                index,
                work.rec.clone(),
                work.outcomes.clone(),
                work.stop.subscribe(),
                plan.push_every,
                plan.max_per_queue,
            )));
        }
        Ok(work)
    }

    /// The name of the queue the requests go through (where cluster faults aim).
    pub(crate) fn queue_name(&self) -> String {
        format!("service:{}", self.name)
    }

    fn spawn_server(&mut self) -> Result<JoinHandle<()>, String> {
        self.next_server += 1;
        let service = self.server_bus.service(&self.name).map_err(|e| e.to_string())?;
        let options = ServeOptions::new().concurrency(8).visibility_timeout(self.visibility);
        Ok(tokio::spawn(serve(
            service,
            options,
            self.next_server,
            self.rec.clone(),
            self.slow.subscribe(),
        )))
    }

    /// Aborts every server mid-request (its handlers with it) and starts replacements.
    pub(crate) fn replace_servers(&mut self) -> Result<(), String> {
        for server in std::mem::take(&mut self.servers) {
            server.abort();
        }
        for _ in 0..SERVERS {
            let server = self.spawn_server()?;
            self.servers.push(server);
        }
        Ok(())
    }

    /// Makes every request take `pause` on its server (zero: normal speed).
    pub(crate) fn set_slow(&self, pause: Duration) {
        self.slow.send_replace(pause);
    }

    /// Stops sending, waits for the outstanding requests' outcomes, and turns what the
    /// requesters saw into notes (each one a violation).
    pub(crate) async fn stop_requesters(&mut self) {
        self.stop.send_replace(true);
        for task in self.requesters.drain(..) {
            let _ = task.await;
        }
        let late = self.outcomes.late.swap(0, Ordering::Relaxed);
        if late > 0 {
            self.rec.note(format!(
                "{late} requests ended more than {GRACE:?} past their {DEADLINE:?} deadline"
            ));
        }
        let wrong = self.outcomes.wrong.swap(0, Ordering::Relaxed);
        if wrong > 0 {
            self.rec.note(format!("{wrong} requests got a reply meant for another request"));
        }
    }

    /// The typed errors the requesters got, by kind (not violations: a request sent while
    /// Redis is down may fail).
    pub(crate) fn errors(&self) -> String {
        let errors = self.outcomes.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.iter().map(|(kind, n)| format!("{kind} {n}")).collect::<Vec<_>>().join(", ")
    }

    /// Stops everything and disconnects the servers' bus (the requesters' belongs to the
    /// caller).
    pub(crate) async fn shutdown(mut self) {
        self.stop_requesters().await;
        for server in self.servers.drain(..) {
            server.abort();
            let _ = server.await;
        }
        let _ = self.server_bus.disconnect().await;
    }
}

/// Servers register as consumers when they start: wait until the service sees one, so that
/// the first requests do not fail with `NoResponders`.
async fn wait_for_servers(service: &Service) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = RequestOptions::new().timeout(Duration::from_secs(2));
        match service.request::<Body, Body>(&(usize::MAX, 0), probe).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("no server answers: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn serve(
    service: Service,
    options: ServeOptions,
    id: u32,
    rec: Arc<Recorder>,
    slow: watch::Receiver<Duration>,
) {
    // The aborted server this one replaces may still be giving its requests back.
    let mut server = loop {
        match service.serve::<Body>(options.clone()).await {
            Ok(server) => break server,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    // Handlers live in the server task's set: aborting the server aborts them mid-request.
    let mut handlers = JoinSet::new();
    while let Some(item) = server.next().await {
        let Ok(request) = item else { continue };
        let pause = *slow.borrow();
        handlers.spawn(async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let body = *request.body();
            // A failed reply leaves the request to time out, which the requester records.
            let _ = request.reply(&body).await;
        });
        while handlers.try_join_next().is_some() {}
    }
    rec.note(format!("server {id} ended by itself (a silent stop)"));
}

async fn request_loop(
    service: Service,
    index: usize,
    rec: Arc<Recorder>,
    outcomes: Arc<Outcomes>,
    stop: watch::Receiver<bool>,
    every: Duration,
    max: u64,
) {
    paced(every, max, stop, |seq| {
        let (service, rec, outcomes) = (&service, &rec, &outcomes);
        async move {
            let started_ms = rec.now();
            let started = Instant::now();
            let options = RequestOptions::new().timeout(DEADLINE);
            let outcome = service.request::<Body, Body>(&(index, seq), options).await;
            if started.elapsed() > DEADLINE + GRACE {
                outcomes.late.fetch_add(1, Ordering::Relaxed);
            }
            match outcome {
                Ok(reply) => {
                    if reply != (index, seq) {
                        outcomes.wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    rec.pushed(index, seq, started_ms, true);
                    rec.delivered(index, seq, 0, 1);
                }
                Err(error) => {
                    rec.pushed(index, seq, started_ms, false);
                    let mut errors = outcomes.errors.lock().unwrap_or_else(|e| e.into_inner());
                    *errors.entry(error.kind()).or_default() += 1;
                }
            }
        }
    })
    .await;
}
