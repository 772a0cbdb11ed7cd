//! The redis-server process harness: real servers for the Redis backend's tests.
//!
//! [`RedisServer::start`] (or [`RedisServer::builder`]) starts a `redis-server` on a free
//! loopback port or a unix socket, in its own temporary directory, waits until it answers PING
//! (with a deadline), and kills it when dropped. [`RedisServer::kill`] and
//! [`RedisServer::restart`] (same port or socket, same data directory and configuration) drive
//! failure tests.
//!
//! Servers never outlive the test process: each one is started under a tiny `sh` wrapper that
//! reads its standard input from a pipe held by the test process and kills the server when
//! that pipe closes, which also happens when the test process is killed.
//!
//! The binary is `$BUSMQ_REDIS_SERVER` if set, else `redis-server` from `PATH`, unless
//! [`RedisServerBuilder::binary`] names another (a `valkey-server`: [`valkey_available`]
//! finds it through `$BUSMQ_VALKEY_SERVER` or `PATH`). Where it is
//! missing, [`require_or_skip`] prints one skip line and tests return early, unless
//! `BUSMQ_REQUIRE_REDIS=1`, where it panics so that CI cannot pass without Redis.
//!
//! ```no_run
//! # async fn example() {
//! use busmq_testkit::redis::{require_or_skip, RedisServer};
//! if require_or_skip("my_test").is_none() {
//!     return;
//! }
//! let server = RedisServer::start().await.expect("redis-server starts");
//! let url = server.url(); // redis://127.0.0.1:<free port>
//! # let _ = url;
//! # }
//! ```

mod binary;
mod builder;
mod ping;
mod server;
mod tls;

pub use binary::{
    REQUIRE_ENV, SERVER_ENV, VALKEY_SERVER_ENV, find_binary, redis_available,
    require_binary_or_skip, require_or_skip, valkey_available,
};
pub use builder::RedisServerBuilder;
pub use server::{HarnessError, RedisServer};
pub use tls::ClientCerts;
