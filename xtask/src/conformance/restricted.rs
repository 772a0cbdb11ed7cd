//! The `redis-restricted` row of `cargo xtask conformance`: every case against a
//! `redis-server` whose configuration file disables `RENAME` and `SORT` (`rename-command`, as
//! some managed providers do; not settable on the command line in some versions), with the
//! store's default `CommandSet::Auto`, which must notice and keep to the paths without them.

use busmq_testkit::redis::{RedisServer, RedisServerBuilder};
use busmq_testkit::{Backend, FnBackend, SharedServers};
use std::sync::{Arc, OnceLock};

/// The row's name.
pub(super) const ROW: &str = "redis-restricted";

fn server() -> RedisServerBuilder {
    RedisServer::builder().config("rename-command RENAME \"\"").config("rename-command SORT \"\"")
}

/// The row: stores with the default command set (`Auto`) on the restricted server.
pub(super) fn backend(model_cases: u32) -> Arc<dyn Backend> {
    static SERVER: OnceLock<Option<SharedServers>> = OnceLock::new();
    let servers = SharedServers::get_with(1, &SERVER, server);
    let missing = servers.is_none().then(|| "redis-server is not installed".to_string());
    let backend = FnBackend::new(ROW, move || {
        let urls = servers.expect("available").urls().to_vec();
        Arc::new(busmq_redis::RedisStore::from_urls(urls).expect("valid urls")) as _
    });
    Arc::new(backend.model_cases(model_cases).unavailable_because(missing))
}
