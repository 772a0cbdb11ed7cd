//! paced-2k: one queue paced at a fixed 2,000 msg/s (a queue far from saturation, where
//! latency is what users see), next to a raw list paced the same way in the same run; and the
//! runtime variants of it and of the ping-pongs: every scenario here also runs with the client
//! on a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`) besides the
//! bench's multi-thread one.

use super::Env;
use super::channel;
use super::paced;
use super::summary::Results;
use super::support::on_current_thread;

/// Messages per second of the paced-2k scenarios.
pub(crate) const RATE: f64 = 2_000.0;

pub(crate) async fn run(env: &Env, results: &mut Results) {
    // Twice the paced budget: p99.9 needs a few thousand samples per round.
    let n = ((RATE * env.budget.paced_secs * 2.0) as u64).max(2_000);
    let warm = (RATE / 5.0) as u64;
    let note = format!("paced at {RATE:.0} msg/s for {n} messages per round");
    let wanted = |name: &str| env.wants(name);
    if wanted("baseline-paced-2k") || wanted("baseline-paced-2k/current-thread") {
        let _ = paced::raw(&env.server, RATE, warm).await;
    }
    if wanted("paced-2k") || wanted("paced-2k/current-thread") {
        let _ = paced::busmq(&env.redis(), Some(&env.server), RATE, warm).await;
    }
    for _ in 0..env.budget.rounds.min(2) {
        if wanted("baseline-paced-2k") && !results.failed("baseline-paced-2k") {
            results.record("baseline-paced-2k", paced::raw(&env.server, RATE, n).await);
        }
        if wanted("paced-2k") && !results.failed("paced-2k") {
            let sample = paced::busmq(&env.redis(), Some(&env.server), RATE, n).await;
            results.record("paced-2k", sample);
        }
        let name = "baseline-paced-2k/current-thread";
        if wanted(name) && !results.failed(name) {
            let sample = on_current_thread(|| paced::raw(&env.server, RATE, n));
            results.record(name, sample);
        }
        let name = "paced-2k/current-thread";
        if wanted(name) && !results.failed(name) {
            let backend = env.redis();
            let sample = on_current_thread(|| paced::busmq(&backend, Some(&env.server), RATE, n));
            results.record(name, sample);
        }
    }
    for name in [
        "paced-2k",
        "baseline-paced-2k",
        "paced-2k/current-thread",
        "baseline-paced-2k/current-thread",
    ] {
        if wanted(name) {
            results.note(name, &note);
        }
    }
    channel::run_current_thread(env, results);
}
