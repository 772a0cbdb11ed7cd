//! service-rtt and service-throughput: request/reply through a service (SPEC P2). The round
//! trip runs in the ping-pong rounds next to channel-rtt and the raw ping-pong; the throughput
//! runs 4 servers against many requests in flight, compared with reliable-4 (requests are
//! taken reliably, so each one is a reliable message one way and a message back).

use super::Env;
use super::backend::{Backend, on_two_buses};
use super::measure::{Meter, Sample};
use super::payload;
use super::server::Server;
use super::stats::Histogram;
use super::summary::Results;
use super::support::{Ctx, Progress, Tasks, unique};
use busmq_core::{Bus, RequestOptions, ServeOptions, Service};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The size of the request and reply bodies (as channel-rtt's messages).
const SIZE: usize = 100;
/// Servers of service-throughput.
const SERVERS: usize = 4;
/// Requests in flight in service-throughput.
const IN_FLIGHT: usize = 64;
/// Requests of the warm-up that sizes service-throughput's rounds.
const WARM_REQUESTS: u64 = 2_000;
/// A request that gets no reply in this long fails the measurement.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// service-throughput, in `rounds` rounds sized to the time budget by a warm-up.
pub(crate) async fn run(env: &Env, results: &mut Results) {
    let name = "service-throughput";
    if !env.wants(name) {
        return;
    }
    let warm = throughput(&env.redis(), None, WARM_REQUESTS).await;
    let n = match warm {
        Ok(sample) => ((sample.rate() * env.budget.secs) as u64).max(WARM_REQUESTS),
        Err(error) => return results.record(name, Err(format!("warm-up: {error}"))),
    };
    for _ in 0..env.budget.rounds.max(1) {
        if results.failed(name) {
            break;
        }
        let sample = throughput(&env.redis(), Some(&env.server), n).await;
        results.record(name, sample);
    }
}

/// `n` measured request round trips after `warm` unmeasured ones, one request at a time.
pub(crate) async fn rtt(
    backend: &Backend,
    server: Option<&Server>,
    warm: u64,
    n: u64,
) -> Result<Sample, String> {
    on_two_buses(backend, "the service round trip", n, |near, far, progress| async move {
        measure_rtt(&near, &far, server, warm, n, &progress).await
    })
    .await
}

async fn measure_rtt(
    near: &Bus,
    far: &Bus,
    server: Option<&Server>,
    warm: u64,
    n: u64,
    progress: &Progress,
) -> Result<Sample, String> {
    let name = unique("svc-rtt");
    let mut servers = Tasks::new();
    servers.spawn(echo(far.service(&name).ctx("service")?, ServeOptions::new()));
    let service = near.service(&name).ctx("service")?;
    ready(&service).await?;
    let mut latency = Histogram::default();
    let mut meter = None;
    for i in 0..warm + n {
        if i == warm {
            meter = Some(Meter::start(server).await?);
        }
        let started = Instant::now();
        let body = payload::make(i, SIZE);
        let options = RequestOptions::new().timeout(REQUEST_TIMEOUT);
        let reply: String = service.request(body.as_str(), options).await.ctx("request")?;
        if reply != body {
            return Err(format!("request {i} was answered with another body"));
        }
        if i >= warm {
            latency.record(started.elapsed());
            progress.received(1);
        }
    }
    let meter = meter.ok_or("no round trips to measure")?;
    let mut sample = meter.stop(n, SIZE).await?;
    sample.latency = latency;
    drop(servers);
    Ok(sample)
}

/// `n` requests, `IN_FLIGHT` at once, answered by `SERVERS` servers on another bus.
pub(crate) async fn throughput(
    backend: &Backend,
    server: Option<&Server>,
    n: u64,
) -> Result<Sample, String> {
    on_two_buses(backend, "the service throughput", n, |requesters, servers, progress| async move {
        measure_throughput(&requesters, &servers, server, n, &progress).await
    })
    .await
}

async fn measure_throughput(
    requesters: &Bus,
    servers: &Bus,
    server: Option<&Server>,
    n: u64,
    progress: &Arc<Progress>,
) -> Result<Sample, String> {
    let name = unique("svc-tput");
    let mut serving = Tasks::new();
    for _ in 0..SERVERS {
        let service = servers.service(&name).ctx("service")?;
        serving.spawn(echo(service, ServeOptions::new().concurrency(IN_FLIGHT as u32)));
    }
    let service = requesters.service(&name).ctx("service")?;
    ready(&service).await?;
    let next = Arc::new(AtomicU64::new(0));
    let meter = Meter::start(server).await?;
    let mut sending = Tasks::new();
    for _ in 0..IN_FLIGHT {
        sending.spawn(request_loop(service.clone(), next.clone(), n, progress.clone()));
    }
    let mut latency = Histogram::default();
    for histogram in sending.join().await? {
        latency.merge(&histogram?);
    }
    let mut sample = meter.stop(n, SIZE).await?;
    sample.latency = latency;
    drop(serving);
    Ok(sample)
}

/// Takes request numbers from `next` until `n` are taken; each is sent and its reply checked.
async fn request_loop(
    service: Service,
    next: Arc<AtomicU64>,
    n: u64,
    progress: Arc<Progress>,
) -> Result<Histogram, String> {
    let mut latency = Histogram::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(latency);
        }
        let started = Instant::now();
        let body = payload::make(i, SIZE);
        let options = RequestOptions::new().timeout(REQUEST_TIMEOUT);
        let reply: String = service.request(body.as_str(), options).await.ctx("request")?;
        if reply != body {
            return Err(format!("request {i} was answered with another body"));
        }
        latency.record(started.elapsed());
        progress.received(1);
    }
}

/// A server that answers every request with its own body, each reply from a task of its own
/// so that the server has as many requests in hand as its options allow.
async fn echo(service: Service, options: ServeOptions) -> Result<(), String> {
    let mut server = service.serve::<String>(options).await.ctx("serve")?;
    let mut replies = tokio::task::JoinSet::new();
    while let Some(request) = server.next().await {
        let request = request.ctx("serve")?;
        replies.spawn(async move {
            let body = request.body().clone();
            request.reply(body.as_str()).await.ctx("reply")
        });
        while let Some(done) = replies.try_join_next() {
            done.map_err(|e| format!("a reply task failed: {e}"))??;
        }
    }
    Ok(())
}

/// Waits until a server answers (servers register when they start consuming).
async fn ready(service: &Service) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let options = RequestOptions::new().timeout(Duration::from_secs(2));
        match service.request::<str, String>("ready?", options).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(10) => {
                return Err(format!("no server answered within 10 s: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
