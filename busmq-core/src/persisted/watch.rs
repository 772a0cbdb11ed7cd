//! Watching a persisted object: the changes other holders make, each once and in order, from
//! the change notices the handles publish after every save and delete (see `notice.rs`).
//!
//! The watcher keeps the state it knows (version and fields). A notice that continues from that
//! version is applied as it is, so each change is reported with exactly the state it made. A
//! notice that does not (one was missed: pub/sub is not stored, so notices published while the
//! store was unreachable are lost) makes the watcher read the object again and report a
//! [`Change::Resync`]; so does the store coming back online, since changes may have happened
//! meanwhile without any later notice to reveal the gap.

use crate::context::BusInner;
use crate::error::Result;
use crate::name::{ObjectName, TopicName};
use crate::persisted::fields::{self, Fields};
use crate::persisted::notice::ChangeNotice;
use crate::persisted::stored::{self, Loaded};
use crate::store::StoreState;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::watch;

/// A change another holder made to a watched object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// The object was saved: its new version and value.
    Saved(Loaded<T>),
    /// The object was deleted; `version` is the version it had.
    Deleted {
        /// The version of the deleted state.
        version: u64,
    },
    /// Changes may have been missed (a notice was lost, or the store was offline): this is the
    /// object as read again now (`None`: it does not exist). Expiry is reported this way too,
    /// when it is noticed.
    Resync(Option<Loaded<T>>),
}

/// What a watch needs of its handle, without its type.
pub(crate) struct Source {
    pub(crate) bus: Arc<BusInner>,
    pub(crate) name: ObjectName,
    pub(crate) topic: TopicName,
    pub(crate) writer: Arc<str>,
}

/// The changes of one object made by holders other than the handle that started the watch
/// (its own saves and deletes are not reported), each once, in order. Made by
/// [`Persisted::watch`](crate::Persisted::watch).
///
/// After the store was offline, the watch reads the object again and reports a
/// [`Change::Resync`] if it changed meanwhile: the individual changes made while offline are
/// not seen. Expiry is not announced (nobody saves): it shows as a resync after a reconnect or
/// a later save. The stream ends when the bus disconnects. Items that do not decode into `T`
/// are `Err` items; the watch goes on.
pub struct Watch<T> {
    inner: BoxStream<'static, Result<Change<T>>>,
}

impl<T> fmt::Debug for Watch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl<T> Stream for Watch<T> {
    type Item = Result<Change<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<T: DeserializeOwned + Send + 'static> Watch<T> {
    pub(crate) async fn start(source: Source, target: String) -> Result<Watch<T>> {
        // Subscribed before reading, so that no change falls in between.
        let notices = source.bus.store.subscribe(&source.topic).await?;
        let mut state = source.bus.store.state();
        let online = *state.borrow_and_update() != StoreState::Offline;
        let mut follow = Follow::<T> {
            source,
            target,
            notices,
            state: Some(state),
            online,
            version: None,
            fields: Fields::new(),
            floor: 0,
            _marker: PhantomData,
        };
        match stored::fetch(&follow.source.bus, &follow.source.name).await? {
            Some((version, fields)) => follow.know(Some(version), fields),
            None => follow.know(None, Fields::new()),
        }
        let inner = futures::stream::unfold(follow, |mut follow| async move {
            let item = follow.next_change().await?;
            Some((item, follow))
        });
        Ok(Watch { inner: inner.boxed() })
    }
}

struct Follow<T> {
    source: Source,
    target: String,
    notices: BoxStream<'static, Bytes>,
    /// `None` once the store's state is gone (then only notices matter).
    state: Option<watch::Receiver<StoreState>>,
    online: bool,
    /// The state the watcher knows.
    version: Option<u64>,
    fields: Fields,
    /// The largest version known (also of deleted states): older notices are stale.
    floor: u64,
    _marker: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send> Follow<T> {
    fn know(&mut self, version: Option<u64>, fields: Fields) {
        self.version = version;
        self.fields = fields;
        self.floor = self.floor.max(version.unwrap_or(0));
    }

    fn value(&self, version: u64) -> Result<Loaded<T>> {
        let value = fields::decode(|| self.target.clone(), version, &self.fields)?;
        Ok(Loaded { version, value })
    }

    async fn next_change(&mut self) -> Option<Result<Change<T>>> {
        loop {
            let state_changed = async {
                match self.state.as_mut() {
                    Some(state) => state.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                payload = self.notices.next() => {
                    let payload = payload?;
                    if let Some(item) = self.on_notice(&payload).await {
                        return Some(item);
                    }
                }
                alive = state_changed => {
                    let Some(state) = self.state.as_mut().filter(|_| alive) else {
                        self.state = None;
                        continue;
                    };
                    let online = *state.borrow_and_update() != StoreState::Offline;
                    let back = online && !self.online;
                    self.online = online;
                    if back {
                        if let Some(item) = self.resync(None).await {
                            return Some(item);
                        }
                    }
                }
            }
        }
    }

    async fn on_notice(&mut self, payload: &[u8]) -> Option<Result<Change<T>>> {
        // Anything else published on the topic is not ours to report.
        let notice = ChangeNotice::decode(payload)?;
        let own = *notice.w == *self.source.writer;
        match notice.v {
            Some(version) => {
                if version <= self.floor {
                    return None;
                }
                if notice.p != self.version {
                    return self.resync(own.then_some(version)).await;
                }
                notice.apply(&mut self.fields);
                self.version = Some(version);
                self.floor = version;
                (!own).then(|| self.value(version).map(Change::Saved))
            }
            None => {
                let version = notice.p?;
                if self.version == Some(version) {
                    self.know(None, Fields::new());
                    self.floor = self.floor.max(version);
                    return (!own).then_some(Ok(Change::Deleted { version }));
                }
                if version <= self.floor {
                    return None;
                }
                self.resync(None).await
            }
        }
    }

    /// Reads the object again; reports it unless it is what the watcher knows, or the state
    /// of this handle's own save `own`.
    async fn resync(&mut self, own: Option<u64>) -> Option<Result<Change<T>>> {
        let found = match stored::fetch(&self.source.bus, &self.source.name).await {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        let version = found.as_ref().map(|(version, _)| *version);
        if version == self.version {
            return None;
        }
        let (v, fields) = found.unwrap_or_default();
        self.know(version, fields);
        if own.is_some() && own == version {
            return None;
        }
        Some(match version {
            Some(_) => self.value(v).map(|loaded| Change::Resync(Some(loaded))),
            None => Ok(Change::Resync(None)),
        })
    }
}
