//! The shared conformance suite (busmq-testkit) against Redis: one `redis-server`, and three
//! instances with queues sharded over them. Each test binary starts its own servers once.

use busmq_testkit::{FnBackend, SharedServers};
use std::sync::{Arc, OnceLock};

fn redis(name: &str, servers: Option<&'static SharedServers>) -> impl busmq_testkit::Backend {
    let missing = servers.is_none().then(|| "redis-server is not installed".to_string());
    FnBackend::new(name, move || {
        let urls = servers.expect("available").urls().to_vec();
        Arc::new(busmq_redis::RedisStore::from_urls(urls).expect("valid urls")) as _
    })
    // The property models run real time here: fewer sequences than on memory.
    .model_cases(8)
    .unavailable_because(missing)
}

mod single {
    static SERVERS: super::OnceLock<Option<super::SharedServers>> = super::OnceLock::new();
    busmq_testkit::conformance!(super::redis("redis", super::SharedServers::get(1, &SERVERS)));
}

mod sharded {
    static SERVERS: super::OnceLock<Option<super::SharedServers>> = super::OnceLock::new();
    busmq_testkit::conformance!(super::redis(
        "redis-sharded-3",
        super::SharedServers::get(3, &SERVERS)
    ));
}
