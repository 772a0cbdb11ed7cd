//! The builder of [`RedisStore`](crate::RedisStore): URLs, namespace, timeouts, backoff and
//! page size, all checked before anything connects.

use crate::keys::{DEFAULT_NAMESPACE, Layout};
use crate::store::RedisStore;
use crate::url::{Endpoint, parse};
use busmq_core::Error;
use std::time::Duration;

/// The smallest and largest page sizes accepted (entries per page list).
pub const PAGE_SIZE_RANGE: (u32, u32) = (2, 1 << 20);

/// Settings shared by every part of one store.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) response_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_cap: Duration,
    pub(crate) page_size: u32,
}

/// Options for a [`RedisStore`]; [`RedisStoreBuilder::build`] checks them all and never
/// connects ([`busmq_core::Store::connect`] does).
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    urls: Vec<String>,
    namespace: String,
    config: Config,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            urls: Vec::new(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            config: Config {
                response_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                ping_interval: Duration::from_secs(1),
                backoff_base: Duration::from_millis(100),
                backoff_cap: Duration::from_secs(5),
                page_size: 4096,
            },
        }
    }
}

impl RedisStoreBuilder {
    /// Adds one instance: `redis://[user:password@]host[:port][/db]`, `rediss://...` (TLS) or
    /// `redis+unix:///path[?db=N&pass=...]`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Adds several instances; queues and topics are spread over them (see the crate docs).
    pub fn urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.urls.extend(urls.into_iter().map(Into::into));
        self
    }

    /// The prefix of every key and channel (default `busmq`, SPEC B6). It may not contain
    /// `{` or `}`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How long one call may wait for its answer before failing with `Timeout` (default 5 s,
    /// SPEC E4).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.config.response_timeout = timeout;
        self
    }

    /// How long establishing a connection may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How often each instance is pinged to notice silent failures (default 1 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// Reconnection delays: exponential from `base` up to `cap`, with full jitter (defaults
    /// 100 ms and 5 s).
    pub fn reconnect_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_cap = cap;
        self
    }

    /// How many entries one page list of a new queue holds (default 4096). Larger pages mean
    /// fewer keys; smaller pages bound the cost of positioned reads more tightly. Existing
    /// queues keep the page size they were created with.
    pub fn page_size(mut self, entries: u32) -> Self {
        self.config.page_size = entries;
        self
    }

    /// Checks everything and builds the store (unconnected).
    pub fn build(self) -> Result<RedisStore, Error> {
        if self.urls.is_empty() {
            return Err(Error::invalid_option("urls", "at least one Redis URL is needed"));
        }
        let layout = Layout::new(&self.namespace)?;
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let endpoint = parse(url)?;
            if endpoints.iter().any(|e| e.identity == endpoint.identity) {
                return Err(Error::InvalidUrl {
                    url: crate::url::redact(url),
                    reason: format!("instance {} is listed twice", endpoint.identity),
                });
            }
            endpoints.push(endpoint);
        }
        let c = &self.config;
        for (name, d) in [
            ("response_timeout", c.response_timeout),
            ("connect_timeout", c.connect_timeout),
            ("ping_interval", c.ping_interval),
            ("reconnect_backoff", c.backoff_base),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_option(name, "must be greater than zero"));
            }
        }
        if c.backoff_cap < c.backoff_base {
            return Err(Error::invalid_option("reconnect_backoff", "the cap is below the base"));
        }
        if !(PAGE_SIZE_RANGE.0..=PAGE_SIZE_RANGE.1).contains(&c.page_size) {
            return Err(Error::invalid_option(
                "page_size",
                format!("must be between {} and {}", PAGE_SIZE_RANGE.0, PAGE_SIZE_RANGE.1),
            ));
        }
        RedisStore::new(endpoints, layout, self.config)
    }
}
