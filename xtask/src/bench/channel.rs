//! channel-rtt: two peers on two buses, one sends a message and waits for the other's echo,
//! timed per round trip; interleaved in rounds with the raw ping-pong it is compared with (and
//! with service-rtt, the request/reply round trip, and with the ping-pong of busmq's own Redis
//! commands from a raw client, `floor.rs`).

use super::Env;
use super::backend::{Backend, on_two_buses};
use super::baseline;
use super::floor;
use super::measure::{Meter, Sample};
use super::payload;
use super::service;
use super::stats::Histogram;
use super::summary::Results;
use super::support::{Ctx, Progress, Tasks, on_current_thread, unique};
use busmq_core::{Bus, Channel, ChannelEvent, ChannelEvents};
use futures::StreamExt;
use std::time::{Duration, Instant};

/// The size of the ping-pong messages in both scenarios.
const SIZE: usize = 100;
/// Unmeasured round trips before each measured round.
const WARM: u64 = 200;

pub(crate) async fn run(env: &Env, results: &mut Results) {
    let rounds = env.budget.rounds.max(2) as u64;
    let per_round = env.budget.rtt.div_ceil(rounds);
    for _ in 0..rounds {
        if env.wants("baseline-pingpong") && !results.failed("baseline-pingpong") {
            let sample = baseline::pingpong(&env.server, SIZE, WARM, per_round).await;
            results.record("baseline-pingpong", sample);
        }
        let scripted = "baseline-pingpong-scripted";
        if env.wants(scripted) && !results.failed(scripted) {
            let sample = floor::pingpong(&env.server, SIZE, WARM, per_round).await;
            results.record(scripted, sample);
        }
        if env.wants("channel-rtt") && !results.failed("channel-rtt") {
            let sample = rtt(&env.redis(), Some(&env.server), WARM, per_round).await;
            results.record("channel-rtt", sample);
        }
        if env.wants("service-rtt") && !results.failed("service-rtt") {
            let sample = service::rtt(&env.redis(), Some(&env.server), WARM, per_round).await;
            results.record("service-rtt", sample);
        }
    }
}

/// The ping-pongs again with the client on a current-thread runtime (see `lowrate.rs`), the
/// scripted floor among them, so that the current-thread channel targets have a floor too.
pub(crate) fn run_current_thread(env: &Env, results: &mut Results) {
    let (base, busmq) = ("baseline-pingpong/current-thread", "channel-rtt/current-thread");
    let scripted = "baseline-pingpong-scripted/current-thread";
    let rounds = env.budget.rounds.max(2) as u64;
    let per_round = env.budget.rtt.div_ceil(rounds);
    for _ in 0..rounds {
        if env.wants(base) && !results.failed(base) {
            let sample =
                on_current_thread(|| baseline::pingpong(&env.server, SIZE, WARM, per_round));
            results.record(base, sample);
        }
        if env.wants(scripted) && !results.failed(scripted) {
            let sample = on_current_thread(|| floor::pingpong(&env.server, SIZE, WARM, per_round));
            results.record(scripted, sample);
        }
        if env.wants(busmq) && !results.failed(busmq) {
            let backend = env.redis();
            let sample = on_current_thread(|| rtt(&backend, Some(&env.server), WARM, per_round));
            results.record(busmq, sample);
        }
    }
}

/// `n` measured round trips after `warm` unmeasured ones.
pub(crate) async fn rtt(
    backend: &Backend,
    server: Option<&super::server::Server>,
    warm: u64,
    n: u64,
) -> Result<Sample, String> {
    on_two_buses(backend, "the channel ping-pong", n, |near, far, progress| async move {
        measure(&near, &far, server, warm, n, &progress).await
    })
    .await
}

async fn measure(
    near: &Bus,
    far: &Bus,
    server: Option<&super::server::Server>,
    warm: u64,
    n: u64,
    progress: &Progress,
) -> Result<Sample, String> {
    let name = unique("rtt");
    let echo_side = far.channel(&name).ctx("channel")?;
    let echo_events = echo_side.listen::<String>().await.ctx("listen")?;
    let mut echo = Tasks::new();
    echo.spawn(echo_loop(echo_side.clone(), echo_events));
    let channel = near.channel(&name).ctx("channel")?;
    let mut events = channel.connect::<String>().await.ctx("connect")?;
    let remote = async {
        loop {
            match events.next().await {
                Some(ChannelEvent::RemoteConnect) => return Ok(()),
                Some(ChannelEvent::Error(e)) => return Err(format!("channel: {e}")),
                None | Some(ChannelEvent::Disconnect) => {
                    return Err("the channel ended before the remote connected".to_string());
                }
                Some(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), remote)
        .await
        .map_err(|_| "the remote peer did not connect within 10 s".to_string())??;
    let mut latency = Histogram::default();
    let mut meter = None;
    for i in 0..warm + n {
        if i == warm {
            meter = Some(Meter::start(server).await?);
        }
        let started = Instant::now();
        channel.send(payload::make(i, SIZE).as_str()).await.ctx("send")?;
        answer(&mut events, i).await?;
        if i >= warm {
            latency.record(started.elapsed());
            progress.received(1);
        }
    }
    let meter = meter.ok_or("no round trips to measure")?;
    let mut sample = meter.stop(n, SIZE).await?;
    sample.latency = latency;
    channel.end().await.ctx("end")?;
    echo.join().await?.pop().ok_or("no echo task")??;
    Ok(sample)
}

async fn answer(events: &mut ChannelEvents<String>, round: u64) -> Result<(), String> {
    loop {
        match events.next().await {
            Some(ChannelEvent::Message(reply)) => {
                let seq = payload::read(reply.body().as_bytes()).map(|s| s.seq);
                if seq != Some(round) {
                    return Err(format!("round trip {round} was answered with message {seq:?}"));
                }
                return Ok(());
            }
            Some(ChannelEvent::Error(e)) => return Err(format!("channel: {e}")),
            None | Some(ChannelEvent::Disconnect | ChannelEvent::End) => {
                return Err(format!("the channel ended at round trip {round}"));
            }
            Some(_) => {}
        }
    }
}

async fn echo_loop(channel: Channel, mut events: ChannelEvents<String>) -> Result<(), String> {
    while let Some(event) = events.next().await {
        match event {
            ChannelEvent::Message(message) => {
                channel.send(message.body().as_str()).await.ctx("echo send")?;
            }
            ChannelEvent::Error(e) => return Err(format!("echo side: {e}")),
            ChannelEvent::End | ChannelEvent::Disconnect => break,
            _ => {}
        }
    }
    channel.disconnect().await.ctx("echo disconnect")
}
