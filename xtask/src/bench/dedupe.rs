//! dedupe-push (issue 16 item 7, the dedupe cost): one queue paced at paced-2k's rate, every
//! push with a dedupe key of its own, next to the same pushes without a key in the same rounds
//! (interleaved, every other round reversed). Both rows' latency is the time until a push has
//! its id, what a key costs a producer; end to end is in their notes. The saturated cost (keyed
//! pushes never coalesce) is queue-1x1/dedupe's.

use super::Env;
use super::lowrate::RATE;
use super::measure::Sample;
use super::paced::{self, Pushes};
use super::stats::Histogram;
use super::summary::Results;

const KEYED: &str = "dedupe-push";
const PLAIN: &str = "dedupe-push/plain";

/// Push latency and end-to-end latency of one row over its rounds.
#[derive(Debug, Default)]
struct Seen {
    push: Histogram,
    e2e: Histogram,
}

pub(crate) async fn run(env: &Env, results: &mut Results) {
    if !env.wants(KEYED) && !env.wants(PLAIN) {
        return;
    }
    let n = ((RATE * env.budget.paced_secs * 2.0) as u64).max(2_000);
    let warm = (RATE / 5.0) as u64;
    let mut order = [(PLAIN, Pushes::Plain), (KEYED, Pushes::Dedupe)];
    for (_, pushes) in order {
        let _ = paced::busmq_pushing(&env.redis(), Some(&env.server), RATE, warm, pushes).await;
    }
    let (mut plain, mut keyed) = (Seen::default(), Seen::default());
    for _ in 0..env.budget.rounds {
        for (name, pushes) in order {
            if !env.wants(name) || results.failed(name) {
                continue;
            }
            let measured =
                paced::busmq_pushing(&env.redis(), Some(&env.server), RATE, n, pushes).await;
            let seen = if pushes == Pushes::Plain { &mut plain } else { &mut keyed };
            results
                .record(name, measured.map(|(sample, push)| as_push_latency(sample, push, seen)));
        }
        order.reverse();
    }
    let note =
        format!("paced at {RATE:.0} msg/s for {n} messages per round; latency = push until its id");
    results.note(PLAIN, &note);
    results.note(KEYED, &note);
    if let Some(text) = compare(&keyed, &plain) {
        results.note(KEYED, &text);
    }
}

/// The row's latency becomes the push's; end to end goes to the detail.
fn as_push_latency(mut sample: Sample, push: Histogram, seen: &mut Seen) -> Sample {
    seen.e2e.merge(&sample.latency);
    seen.push.merge(&push);
    sample.detail = Some(format!(
        "end to end p50 {:.0} us, p99 {:.0} us",
        sample.latency.quantile_us(0.5).unwrap_or(0.0),
        sample.latency.quantile_us(0.99).unwrap_or(0.0)
    ));
    sample.latency = push;
    sample
}

/// The ratios the row's single ratio (push p50) leaves out, over every round of both rows.
fn compare(keyed: &Seen, plain: &Seen) -> Option<String> {
    let ratio = |a: &Histogram, b: &Histogram, q: f64| Some(a.quantile_us(q)? / b.quantile_us(q)?);
    Some(format!(
        "to {PLAIN}: push p99 {:.2}x, end to end p50 {:.2}x, p99 {:.2}x",
        ratio(&keyed.push, &plain.push, 0.99)?,
        ratio(&keyed.e2e, &plain.e2e, 0.5)?,
        ratio(&keyed.e2e, &plain.e2e, 0.99)?
    ))
}
