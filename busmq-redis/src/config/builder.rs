//! The builder of [`RedisStore`](crate::RedisStore): URLs and Sentinel groups, credentials,
//! namespace, timeouts, backoff, page size, replica acknowledgements and the command set, all
//! checked before anything connects. (`build` itself is next to the store, in `store.rs`, so
//! that this module does not import the store it configures.)

use crate::config::commands::CommandSet;
use crate::config::endpoint::Endpoint;
use crate::config::settings::{Config, ReplicaAck};
use crate::config::tls::ClientIdentity;
use crate::config::url::{compose_cluster, compose_sentinel, parse, redact};
use crate::script::keys::{DEFAULT_NAMESPACE, Layout};
use busmq_core::Error;
use std::sync::Arc;
use std::time::Duration;

/// The smallest and largest page sizes accepted (entries per page list).
pub const PAGE_SIZE_RANGE: (u32, u32) = (2, 1 << 20);

/// Credentials that apply to Sentinel groups that do not carry their own.
#[derive(Clone, Default)]
struct GroupCredentials {
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
    data_username: Option<String>,
    data_password: Option<String>,
}

impl std::fmt::Debug for GroupCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |p: &Option<String>| p.as_ref().map(|_| "***");
        f.debug_struct("GroupCredentials")
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &hide(&self.sentinel_password))
            .field("data_username", &self.data_username)
            .field("data_password", &hide(&self.data_password))
            .finish()
    }
}

/// What a store is made of once every option was checked.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) layout: Layout,
    pub(crate) config: Config,
}

/// Options for a [`RedisStore`](crate::RedisStore); [`RedisStoreBuilder::build`] checks them
/// all and never connects ([`Session::connect`](busmq_core::store::Session::connect) does).
#[derive(Clone)]
pub struct RedisStoreBuilder {
    urls: Vec<String>,
    namespace: String,
    config: Config,
    credentials: GroupCredentials,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs carry passwords.
        let urls: Vec<String> = self.urls.iter().map(|u| redact(u)).collect();
        f.debug_struct("RedisStoreBuilder")
            .field("urls", &urls)
            .field("namespace", &self.namespace)
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            urls: Vec::new(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            config: Config::default(),
            credentials: GroupCredentials::default(),
        }
    }
}

impl RedisStoreBuilder {
    /// Adds one instance: `redis://[user:password@]host[:port][/db]`, `rediss://...` (TLS),
    /// `redis+unix:///path[?db=N&pass=...]`, or a Sentinel-managed group:
    /// `redis+sentinel://[user:password@]host1[:port1],host2[:port2]/<master name>[/db]`
    /// `[?sentinel_username=...&sentinel_password=...]` (the credentials before `@` are the
    /// data nodes'), or a Redis Cluster: `redis+cluster://[user:password@]host1[:port1],...`.
    /// `rediss+sentinel://` and `rediss+cluster://` connect to every node (and sentinel) over
    /// TLS; see [`tls_ca_pem`](Self::tls_ca_pem) and [`tls_client_cert`](Self::tls_client_cert).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Adds one Sentinel-managed master group (one shard): the sentinels' addresses
    /// (`host[:port]`, default port 26379) and the master name they monitor. The same as the URL
    /// `redis+sentinel://host1:port1,host2:port2/<master name>`; credentials come from
    /// [`sentinel_password`](Self::sentinel_password) and [`data_password`](Self::data_password).
    pub fn sentinel<I, S>(mut self, sentinels: I, master: impl AsRef<str>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let sentinels: Vec<String> = sentinels.into_iter().map(Into::into).collect();
        self.urls.push(compose_sentinel(&sentinels, master.as_ref()));
        self
    }

    /// The password of the sentinels (`requirepass` in their configuration), for every Sentinel
    /// group whose URL does not give `sentinel_password`.
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.credentials.sentinel_password = Some(password.into());
        self
    }

    /// The ACL user of the sentinels, for every Sentinel group whose URL does not give
    /// `sentinel_username`.
    pub fn sentinel_username(mut self, username: impl Into<String>) -> Self {
        self.credentials.sentinel_username = Some(username.into());
        self
    }

    /// The password of the data nodes (masters and replicas) of every Sentinel group whose URL
    /// has no credentials. Plain `redis://` URLs carry their own.
    pub fn data_password(mut self, password: impl Into<String>) -> Self {
        self.credentials.data_password = Some(password.into());
        self
    }

    /// The ACL user of the data nodes of every Sentinel group whose URL has no credentials.
    pub fn data_username(mut self, username: impl Into<String>) -> Self {
        self.credentials.data_username = Some(username.into());
        self
    }

    /// Makes every push (and every at-most-once take) wait until `replicas` replicas have
    /// confirmed it, with Redis `WAIT replicas timeout` sent right after the script on the same
    /// connection. A push that fewer replicas confirmed within `timeout` fails with
    /// [`Error::NotReplicated`](busmq_core::Error::NotReplicated) although the master applied it (it may or may not survive a failover); an
    /// at-most-once take that fewer replicas confirmed is not delivered (a failover could hand
    /// those messages out again). Off by default; `timeout` must be below the response timeout.
    /// Reliable settlements are not waited for: a lost acknowledgement only causes a
    /// redelivery, which reliable mode allows.
    pub fn replicas_ack(mut self, replicas: u32, timeout: Duration) -> Self {
        self.config.replicas_ack = Some(ReplicaAck { replicas, timeout });
        self
    }

    /// Uses a Redis Cluster (Redis 7 or newer): the addresses (`host[:port]`, default port
    /// 6379) of some of its nodes, from which the client discovers the others and the slots.
    /// The same as the URL `redis+cluster://host1:port1,host2:port2`; a cluster must be the
    /// store's only instance.
    pub fn cluster<I, S>(mut self, seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let seeds: Vec<String> = seeds.into_iter().map(Into::into).collect();
        self.urls.push(compose_cluster(&seeds));
        self
    }

    /// Trusts server certificates signed by this certificate authority (PEM, one or more
    /// certificates) instead of the system's roots, on every `rediss://`, `rediss+sentinel://`
    /// and `rediss+cluster://` connection. The server's certificate is always verified,
    /// host name included: connect with the name or address its certificate carries.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config.tls.ca_pem = Some(Arc::new(pem.into()));
        self
    }

    /// Presents this client certificate (PEM chain) with its private key (PEM) on every TLS
    /// connection: mutual TLS, for servers with `tls-auth-clients yes`. The key is kept out of
    /// every `Debug` output and error message.
    pub fn tls_client_cert(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        let identity = ClientIdentity { cert_pem: cert_pem.into(), key_pem: key_pem.into() };
        self.config.tls.client = Some(Arc::new(identity));
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
    /// 100 ms and 2 s).
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

    /// Whether the fast paths may use `RENAME` and `SORT`, which some managed providers disable
    /// (default [`CommandSet::Auto`]: asked at every connection; see [`CommandSet`]).
    pub fn command_set(mut self, commands: CommandSet) -> Self {
        self.config.commands = commands;
        self
    }

    /// Checks every option: what [`build`](Self::build) makes the store from.
    pub(crate) fn check(self) -> Result<Checked, Error> {
        if self.urls.is_empty() {
            return Err(Error::invalid_option("urls", "at least one Redis URL is needed"));
        }
        let mut layout = Layout::new(&self.namespace)?;
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let mut endpoint = parse(url)?;
            self.credentials.fill(&mut endpoint);
            if endpoints.iter().any(|e| e.identity == endpoint.identity) {
                return Err(Error::InvalidUrl {
                    url: redact(url),
                    reason: format!("instance {} is listed twice", endpoint.identity),
                });
            }
            endpoints.push(endpoint);
        }
        if endpoints.iter().any(|e| e.cluster.is_some()) {
            if endpoints.len() > 1 {
                return Err(Error::invalid_option(
                    "urls",
                    "a Redis Cluster must be the store's only instance (it shards by itself)",
                ));
            }
            layout = layout.sharded();
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
        if let Some(ack) = c.replicas_ack {
            if ack.replicas == 0 {
                return Err(Error::invalid_option("replicas_ack", "needs at least one replica"));
            }
            if ack.timeout.is_zero() || ack.timeout >= c.response_timeout {
                return Err(Error::invalid_option(
                    "replicas_ack",
                    "the timeout must be above zero and below the response timeout",
                ));
            }
        }
        if c.backoff_cap < c.backoff_base {
            return Err(Error::invalid_option("reconnect_backoff", "the cap is below the base"));
        }
        if c.tls.is_set() {
            c.tls.check().map_err(|reason| Error::invalid_option("tls", reason))?;
            if !endpoints.iter().any(Endpoint::uses_tls) {
                return Err(Error::invalid_option(
                    "tls",
                    "a CA or client certificate is set but no URL uses TLS (rediss://, \
                     rediss+sentinel://, rediss+cluster://)",
                ));
            }
        }
        if !(PAGE_SIZE_RANGE.0..=PAGE_SIZE_RANGE.1).contains(&c.page_size) {
            return Err(Error::invalid_option(
                "page_size",
                format!("must be between {} and {}", PAGE_SIZE_RANGE.0, PAGE_SIZE_RANGE.1),
            ));
        }
        Ok(Checked { endpoints, layout, config: self.config })
    }
}

impl GroupCredentials {
    /// Gives a Sentinel group the builder's credentials where its URL had none.
    fn fill(&self, endpoint: &mut Endpoint) {
        let Some(spec) = endpoint.sentinel.as_mut() else {
            return;
        };
        if spec.username.is_none() {
            spec.username.clone_from(&self.sentinel_username);
        }
        if spec.password.is_none() {
            spec.password.clone_from(&self.sentinel_password);
        }
        let mut data = endpoint.info.redis_settings().clone();
        if data.username().is_none() && data.password().is_none() {
            if let Some(user) = &self.data_username {
                data = data.set_username(user);
            }
            if let Some(password) = &self.data_password {
                data = data.set_password(password);
            }
            endpoint.info = endpoint.info.clone().set_redis_settings(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::url::parse;

    #[test]
    fn builder_credentials_fill_only_what_the_url_lacks() {
        let creds = GroupCredentials {
            sentinel_username: None,
            sentinel_password: Some("s".into()),
            data_username: Some("app".into()),
            data_password: Some("d".into()),
        };
        let mut bare = parse("redis+sentinel://h/m").unwrap();
        creds.fill(&mut bare);
        let spec = bare.sentinel.as_ref().unwrap();
        assert_eq!(spec.password.as_deref(), Some("s"));
        assert_eq!(bare.info.redis_settings().password(), Some("d"));
        assert_eq!(bare.info.redis_settings().username(), Some("app"));
        let mut own = parse("redis+sentinel://:x@h/m?sentinel_password=y").unwrap();
        creds.fill(&mut own);
        assert_eq!(own.sentinel.as_ref().unwrap().password.as_deref(), Some("y"));
        assert_eq!(own.info.redis_settings().password(), Some("x"));
        let mut plain = parse("redis://h").unwrap();
        creds.fill(&mut plain);
        assert_eq!(plain.info.redis_settings().password(), None, "plain URLs keep their own");
    }

    #[test]
    fn replica_acknowledgements_are_checked() {
        let b = || RedisStoreBuilder::default().url("redis://h");
        assert!(b().replicas_ack(1, Duration::from_millis(500)).build().is_ok());
        for bad in [
            b().replicas_ack(0, Duration::from_millis(500)),
            b().replicas_ack(1, Duration::ZERO),
            b().replicas_ack(1, Duration::from_secs(5)),
        ] {
            match bad.build() {
                Err(Error::InvalidOption { option: "replicas_ack", .. }) => {}
                other => panic!("expected InvalidOption, got {other:?}"),
            }
        }
        let s = RedisStoreBuilder::default()
            .sentinel(["127.0.0.1:26379", "127.0.0.1:26380"], "mymaster")
            .build()
            .unwrap();
        assert_eq!(s.instances(), vec!["sentinel:mymaster/0".to_string()]);
    }
}
