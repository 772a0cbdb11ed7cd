//! busmq-testkit: the conformance suite that every busmq backend must pass, and the harness that
//! starts real `redis-server` processes for the Redis backend's tests.
//!
//! A backend's `tests/conformance.rs` implements [`Backend`] and calls [`conformance!`], which
//! turns every case of [`cases`] into its own `#[tokio::test]`.

pub mod backend;
pub mod redis;

pub use backend::Backend;
