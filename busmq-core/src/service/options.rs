//! Options of serving ([`ServeOptions`]) and of requesting ([`RequestOptions`]).

use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::queue::{ConsumeOptions, ReliableOptions};
use std::time::Duration;

/// Requests a server holds unanswered at once by default.
pub const DEFAULT_CONCURRENCY: u32 = 16;
/// How long a requester waits for a reply by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of [`Service::serve`](super::Service::serve) and
/// [`Service::serve_with`](super::Service::serve_with).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub(crate) concurrency: u32,
    pub(crate) max: Option<u64>,
    pub(crate) reliable: ReliableOptions,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            concurrency: DEFAULT_CONCURRENCY,
            max: None,
            reliable: ReliableOptions::default(),
        }
    }
}

impl ServeOptions {
    /// At most [`DEFAULT_CONCURRENCY`] requests at once, no limit on their number, a
    /// visibility timeout of 30 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` requests handed out and not yet answered at once; the server takes no
    /// more from the store until one is answered (or given back).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// Stops after `n` requests (like [`ConsumeOptions::max`]); those are still answered.
    pub fn max(mut self, n: u64) -> Self {
        self.max = Some(n);
        self
    }

    /// How long a request taken by a server that died (stopped renewing it) stays invisible
    /// before another server gets it. A live server renews the requests it holds. Default 30 s.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.reliable.visibility_timeout = timeout;
        self
    }

    /// The reliable-consumption options of the service queue in full (visibility timeout,
    /// deliveries before a request is dead-lettered, the dead-letter queue).
    pub fn reliable(mut self, options: ReliableOptions) -> Self {
        self.reliable = options;
        self
    }

    pub(crate) fn consume_options(&self) -> Result<ConsumeOptions> {
        if self.concurrency == 0 {
            return Err(Error::invalid_option("concurrency", "must be at least 1"));
        }
        // The prefetch is the concurrency: requests taken but not started wait in the server,
        // invisible to the others, so few of them should.
        let options =
            ConsumeOptions::new().reliable(self.reliable.clone()).prefetch(self.concurrency);
        Ok(match self.max {
            Some(max) => options.max(max),
            None => options,
        })
    }
}

/// Options of [`Service::request`](super::Service::request) and
/// [`Service::request_stream`](super::Service::request_stream).
#[derive(Clone, Debug)]
pub struct RequestOptions {
    pub(crate) timeout: Duration,
    pub(crate) headers: Headers,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions { timeout: DEFAULT_REQUEST_TIMEOUT, headers: Headers::new() }
    }
}

impl RequestOptions {
    /// A timeout of [`DEFAULT_REQUEST_TIMEOUT`], no headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The requester's deadline, measured by the requester's clock only: `request` fails with
    /// `Timeout` when the final reply has not come within it; a reply stream fails when the
    /// next reply has not come within it (it is re-armed on every partial reply).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Headers sent with the request; the server finds them on
    /// [`Request::headers`](super::Request::headers).
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}
