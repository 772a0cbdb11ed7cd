//! Runs a property model from inside an async case. Proptest generates the operation
//! sequences (from a fixed seed, as many as the backend asks for) and shrinks a failing one,
//! but every sequence runs with `.await` on the case's own runtime: a nested `block_on` would
//! not see a paused clock and could not run inside a runtime at all.

use futures::FutureExt;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// The longest one sequence may take (in the case's clock) before it counts as hung: a
/// failure like any other, shrunk and reported with its sequence. The suite gives a model case
/// this much per sequence on top of its usual deadline (see `run_case`).
pub(crate) const SEQUENCE_DEADLINE: Duration = Duration::from_secs(120);

/// The most runs spent shrinking one failure, and the most real time: a failure on a slow
/// backend is reported with a longer sequence rather than not at all.
const MAX_SHRINK_RUNS: u32 = 256;
const SHRINK_BUDGET: Duration = Duration::from_secs(60);

/// What a model run found wrong.
pub(crate) type Outcome = Result<(), String>;

/// `Err` with both sides when `got != want`.
pub(crate) fn same<T: PartialEq + Debug>(got: T, want: T, what: &str) -> Outcome {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want:?}")) }
}

/// `Err(what)` unless `holds`.
pub(crate) fn ensure(holds: bool, what: impl FnOnce() -> String) -> Outcome {
    if holds { Ok(()) } else { Err(what()) }
}

/// Runs `cases` sequences drawn from `strategy` through `run`; on the first failure, shrinks
/// the sequence and panics with the smallest failing one found and what went wrong.
#[allow(clippy::print_stderr, reason = "the unshrunk failure is printed before shrinking")]
pub(crate) async fn check<S, F, Fut>(model: &str, cases: u32, strategy: S, run: F)
where
    S: Strategy,
    S::Value: Debug,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    // A fixed seed: every backend and every run gets the same sequences, so that a failure
    // found once can be found again.
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    for case in 1..=cases {
        let mut tree = strategy.new_tree(&mut runner).expect("model strategies never reject");
        let Err(failure) = attempt(&run, tree.current()).await else {
            continue;
        };
        // Printed now, so that a shrink cut short by the case deadline still shows it.
        eprintln!("model {model}: sequence {case} of {cases} failed: {failure}; shrinking");
        let (smallest, failure) = shrink(&run, &mut tree, failure).await;
        panic!(
            "model {model}: sequence {case} of {cases} failed: {failure}\n\
             smallest failing sequence: {smallest:#?}"
        );
    }
}

/// Proptest's own shrinking walk: simplify while the run still fails, complicate back when it
/// passes, until the tree can do neither (or the budget is spent).
async fn shrink<T, F, Fut>(run: &F, tree: &mut T, mut failure: String) -> (T::Value, String)
where
    T: ValueTree,
    F: Fn(T::Value) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let mut smallest = tree.current();
    let started = Instant::now();
    let mut runs = 0;
    let mut more = tree.simplify();
    while more && runs < MAX_SHRINK_RUNS && started.elapsed() < SHRINK_BUDGET {
        runs += 1;
        match attempt(run, tree.current()).await {
            Err(why) => {
                smallest = tree.current();
                failure = why;
                more = tree.simplify();
            }
            Ok(()) => more = tree.complicate(),
        }
    }
    (smallest, failure)
}

/// One run, with a panic (an unexpected store error, a failed wait) or a hang counted as a
/// failure, so that it is shrunk too.
async fn attempt<V, F, Fut>(run: &F, value: V) -> Outcome
where
    F: Fn(V) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let caught = AssertUnwindSafe(run(value)).catch_unwind();
    match tokio::time::timeout(SEQUENCE_DEADLINE, caught).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => Err(format!("panicked: {}", panic_text(&*panic))),
        Err(_) => Err(format!("did not finish within {SEQUENCE_DEADLINE:?}")),
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else {
        "(not a string)"
    }
}
