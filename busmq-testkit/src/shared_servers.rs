//! `redis-server` processes shared by every case of one test binary (or one xtask run): started
//! once, on a thread of their own so that they belong to no test's runtime, and killed when the
//! process exits (the harness ties each server to a pipe from this process).

use crate::redis::{RedisServer, RedisServerBuilder, require_or_skip};
use std::sync::OnceLock;

/// A set of running servers.
#[derive(Debug)]
pub struct SharedServers {
    urls: Vec<String>,
    _servers: Vec<RedisServer>,
}

impl SharedServers {
    /// Starts `count` servers the first time it is called for `slot`; `None` (after one skip line)
    /// when `redis-server` is missing and not required.
    pub fn get(
        count: usize,
        slot: &'static OnceLock<Option<SharedServers>>,
    ) -> Option<&'static SharedServers> {
        Self::get_with(count, slot, RedisServer::builder)
    }

    /// Like [`SharedServers::get`] with servers from `builder`. When `builder` names its binary
    /// ([`RedisServerBuilder::binary`]), the caller has checked that it exists.
    pub fn get_with(
        count: usize,
        slot: &'static OnceLock<Option<SharedServers>>,
        builder: fn() -> RedisServerBuilder,
    ) -> Option<&'static SharedServers> {
        slot.get_or_init(|| {
            if builder().explicit_binary().is_none() {
                require_or_skip("the shared redis-server")?;
            }
            let servers = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let mut servers = Vec::with_capacity(count);
                    for _ in 0..count {
                        servers.push(builder().start().await.expect("redis-server starts"));
                    }
                    servers
                })
            })
            .join()
            .expect("servers start");
            Some(SharedServers {
                urls: servers.iter().map(RedisServer::url).collect(),
                _servers: servers,
            })
        })
        .as_ref()
    }

    /// The servers' URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }
}
