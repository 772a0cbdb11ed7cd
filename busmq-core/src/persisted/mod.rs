//! Persisted objects (SPEC P3, node busmq's `persistify`): a named hash of typed fields in the
//! store, loaded and saved through a serde type, with optimistic concurrency (every save
//! carries the version its handle last saw), a ttl with keep-alive, and a stream of the changes
//! other holders make. The atomic operations are the store's ([`Store::object`]); this module
//! holds what a handle remembers (the version and fields it last saw, to save only what
//! changed) and publishes a change notice after each save and delete for the watchers.
//!
//! [`Store::object`]: crate::store::Store::object

pub(crate) mod fields;
mod keep_alive;
pub(crate) mod notice;
mod stored;
mod watch;

pub use keep_alive::KeepAlive;
pub use stored::Loaded;
pub use watch::{Change, Watch};

use crate::context::BusInner;
use crate::error::{Error, Result};
use crate::name::{ObjectName, TopicName};
use crate::observability::log_error;
use crate::store::{Expect, ObjectOp, ObjectReply, ObjectSave};
use crate::util::{lock, random_u64};
use fields::Fields;
use notice::ChangeNotice;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stored::unexpected;

/// How long an object lives after its last save or touch unless told otherwise (node busmq's
/// `persistTtl`).
pub const DEFAULT_PERSIST_TTL: Duration = Duration::from_secs(60);

/// How often a forced save tries again when the object keeps changing between its tries.
const FORCE_TRIES: usize = 8;

/// Options of a [`Persisted`] handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistOptions {
    ttl: Duration,
}

impl Default for PersistOptions {
    fn default() -> Self {
        PersistOptions { ttl: DEFAULT_PERSIST_TTL }
    }
}

impl PersistOptions {
    /// The defaults: a ttl of [`DEFAULT_PERSIST_TTL`].
    pub fn new() -> Self {
        PersistOptions::default()
    }

    /// The object expires `ttl` after its last save or touch. Must not be zero.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// What a handle last saw of the object: the base of its next save.
#[derive(Debug, Default)]
struct Seen {
    version: Option<u64>,
    fields: Fields,
}

/// A handle on one persisted object of type `T` (SPEC P3), made by
/// [`Bus::persisted`](crate::Bus::persisted). `T` must serialize to a map or a struct: each of
/// its fields is stored as its own JSON value.
///
/// Clones share what the handle last saw (its version), so they act as one holder.
pub struct Persisted<T> {
    bus: Arc<BusInner>,
    name: ObjectName,
    topic: TopicName,
    ttl: Duration,
    writer: Arc<str>,
    seen: Arc<Mutex<Seen>>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Clone for Persisted<T> {
    fn clone(&self) -> Self {
        Persisted {
            bus: self.bus.clone(),
            name: self.name.clone(),
            topic: self.topic.clone(),
            ttl: self.ttl,
            writer: self.writer.clone(),
            seen: self.seen.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Persisted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persisted")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("version", &lock(&self.seen).version)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Persisted<T> {
    pub(crate) fn new(
        bus: Arc<BusInner>,
        name: ObjectName,
        options: PersistOptions,
    ) -> Result<Self> {
        if options.ttl.is_zero() {
            return Err(Error::invalid_option("ttl", "a persisted object's ttl must not be zero"));
        }
        Ok(Persisted {
            topic: notice::topic(&name)?,
            bus,
            name,
            ttl: options.ttl,
            writer: Arc::from(format!("{:016x}", random_u64())),
            seen: Arc::default(),
            _marker: PhantomData,
        })
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// How long the object lives after a save or touch of this handle.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The version this handle last loaded or saved (`None`: it saw no object, or never
    /// looked).
    pub fn version(&self) -> Option<u64> {
        lock(&self.seen).version
    }

    fn target(&self) -> String {
        format!("object {:?}", self.name.as_str())
    }

    /// Reads the object: `None` when it does not exist (never saved, deleted or expired).
    /// The version read becomes the one the next [`save`](Persisted::save) expects.
    pub async fn load(&self) -> Result<Option<Loaded<T>>> {
        self.bus.ensure_connected()?;
        let loaded = stored::fetch(&self.bus, &self.name).await?;
        let mut seen = lock(&self.seen);
        *seen = Seen::default();
        let Some((version, fields)) = loaded else { return Ok(None) };
        seen.version = Some(version);
        seen.fields = fields;
        let value = fields::decode(|| self.target(), version, &seen.fields)?;
        Ok(Some(Loaded { version, value }))
    }

    /// Saves `value` if the object is still at the version this handle last loaded or saved
    /// (or, for a handle that saw no object, if there is none): writes only the fields that
    /// changed since then, removes those that are gone, gives the object a new version and
    /// pushes its expiry to `now + ttl`. Returns the new version.
    ///
    /// When another holder saved or deleted the object in between (or it expired), nothing is
    /// written and the error is [`Error::Conflict`] with the stored version: load, apply the
    /// change again and save. A value that is not a map or a struct is [`Error::Encode`].
    pub async fn save(&self, value: &T) -> Result<u64> {
        let fields = self.encode(value)?;
        let expect = match self.version() {
            Some(version) => Expect::Version(version),
            None => Expect::Absent,
        };
        match self.write(expect, fields).await? {
            Ok(version) => Ok(version),
            Err(current) => Err(self.conflict(current)),
        }
    }

    /// Saves `value` whatever the stored version: writes the fields that changed since this
    /// handle last loaded or saved (all of them when the object does not exist), so that
    /// fields other holders changed and this handle did not keep their stored values. After
    /// overwriting someone else's save, [`load`](Persisted::load) to see the merged state.
    pub async fn save_force(&self, value: &T) -> Result<u64> {
        let fields = self.encode(value)?;
        let mut current = None;
        for _ in 0..FORCE_TRIES {
            let expect = if self.version().is_some() { Expect::Exists } else { Expect::Absent };
            match self.write(expect, fields.clone()).await? {
                Ok(version) => return Ok(version),
                Err(found) => {
                    current = found;
                    // Nothing is known of the stored fields now: write them all next time.
                    *lock(&self.seen) = Seen { version: found, fields: Fields::new() };
                }
            }
        }
        Err(self.conflict(current))
    }

    fn encode(&self, value: &T) -> Result<Fields> {
        let fields = fields::encode(|| self.target(), value)?;
        let size = fields.iter().map(|(name, value)| name.len() + value.len()).sum();
        self.bus.config.check_size(|| self.target(), size)?;
        Ok(fields)
    }

    /// One save of the diff from what this handle saw to `fields`: the new version, or the
    /// stored one when the expectation did not hold.
    async fn write(&self, expect: Expect, fields: Fields) -> Result<Result<u64, Option<u64>>> {
        self.bus.ensure_connected()?;
        let (set, remove) = fields::diff(&lock(&self.seen).fields, &fields);
        let save = ObjectSave { expect, set, remove, ttl: self.ttl };
        let (set, remove) = (save.set.clone(), save.remove.clone());
        match self.bus.store.object(&self.name, ObjectOp::Save(save)).await? {
            ObjectReply::Saved { version, previous } => {
                *lock(&self.seen) = Seen { version: Some(version), fields };
                let notice = ChangeNotice::saved(&self.writer, previous, version, &set, &remove);
                self.announce(notice).await;
                Ok(Ok(version))
            }
            ObjectReply::Conflict { current } => Ok(Err(current)),
            other => Err(unexpected("save", other)),
        }
    }

    fn conflict(&self, current: Option<u64>) -> Error {
        Error::Conflict { object: self.name.to_string(), current_version: current }
    }

    /// Removes the object now. Returns whether there was one. This handle then sees no object
    /// (its next save creates one).
    pub async fn delete(&self) -> Result<bool> {
        self.bus.ensure_connected()?;
        let removed = match self.bus.store.object(&self.name, ObjectOp::Delete).await? {
            ObjectReply::Deleted(removed) => removed,
            other => return Err(unexpected("delete", other)),
        };
        *lock(&self.seen) = Seen::default();
        if let Some(version) = removed {
            self.announce(ChangeNotice::deleted(&self.writer, version)).await;
        }
        Ok(removed.is_some())
    }

    /// Pushes the object's expiry to `now + ttl` without changing it. Returns whether it
    /// exists.
    pub async fn touch(&self) -> Result<bool> {
        self.bus.ensure_connected()?;
        match self.bus.store.object(&self.name, ObjectOp::Touch(self.ttl)).await? {
            ObjectReply::Touched(exists) => Ok(exists),
            other => Err(unexpected("touch", other)),
        }
    }

    /// Keeps the object alive: touches it every `ttl / 3` until the returned guard is dropped
    /// (node busmq's `persist(ttl)`). Failed touches are logged and tried again at the next
    /// tick; an object that does not exist is not created.
    pub fn keep_alive(&self) -> KeepAlive {
        KeepAlive::start(self.bus.clone(), self.name.clone(), self.ttl)
    }

    /// The changes other holders make from now on; see [`Watch`].
    pub async fn watch(&self) -> Result<Watch<T>>
    where
        T: Send + 'static,
    {
        self.bus.ensure_connected()?;
        Watch::start(self.clone_untyped(), self.target()).await
    }

    fn clone_untyped(&self) -> watch::Source {
        watch::Source {
            bus: self.bus.clone(),
            name: self.name.clone(),
            topic: self.topic.clone(),
            writer: self.writer.clone(),
        }
    }

    /// Tells the watchers. The change is stored already, so a failure to tell them is logged,
    /// not returned: watchers catch up when they resync.
    async fn announce(&self, notice: ChangeNotice) {
        if let Err(e) = self.bus.store.publish(&self.topic, notice.encode()).await {
            log_error("busmq could not announce a change of a persisted object", None, &e);
        }
    }
}
