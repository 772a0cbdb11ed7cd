//! The conformance cases: each is a plain `pub async fn(&dyn Backend)` named after the behaviour
//! it checks, with the SPEC rule ids it covers in its doc comment.

pub mod bus;
pub mod channel;
pub mod consume;
pub mod dead_letters;
pub mod dedupe;
pub mod delayed;
pub mod errors;
pub mod headers;
pub mod lifecycle;
pub mod models;
pub mod ordering;
pub mod persisted;
pub mod priority;
pub mod pubsub;
pub mod push;
pub mod push_retry;
pub mod redrive;
pub mod reliable;
pub mod replay;
pub mod retry;
pub mod service;
pub mod service_failures;
pub mod settle;
pub mod sharing;
pub mod stats;
pub mod store;
pub mod turns;
pub mod worker;
