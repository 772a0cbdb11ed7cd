//! Persisted objects as the store sees them (SPEC P3): a named hash of fields, each field an
//! opaque encoded value, with a version that every save bumps and an expiry that every save
//! and touch pushes back. One [`ObjectOp`] is one atomic operation.

use bytes::Bytes;
use std::time::Duration;

/// What a save expects of the stored object before it writes (optimistic concurrency).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The object must not exist (a first save creates it).
    Absent,
    /// The object must exist with exactly this version.
    Version(u64),
    /// The object must exist, whatever its version (a forced save).
    Exists,
}

/// A save: which fields to write and remove, under which expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSave {
    /// When the stored object does not meet it, nothing is written and the reply is
    /// [`ObjectReply::Conflict`].
    pub expect: Expect,
    /// Fields to write (name, encoded value).
    pub set: Vec<(String, Bytes)>,
    /// Fields to remove.
    pub remove: Vec<String>,
    /// The object expires this long after the save. Never zero.
    pub ttl: Duration,
}

/// One atomic operation on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectOp {
    /// Reads the version and every field.
    Load,
    /// Writes when the expectation holds: `set`, then `remove`, a new version strictly
    /// greater than every version the name had before (also across deletes and expiry), and
    /// the expiry `now + ttl`.
    Save(ObjectSave),
    /// Removes the object.
    Delete,
    /// Pushes the expiry of an existing object to `now + ttl`; writes nothing else.
    Touch(Duration),
}

/// A stored object: its version and fields (in no particular order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredObject {
    /// The version of the last save.
    pub version: u64,
    /// Every field (name, encoded value).
    pub fields: Vec<(String, Bytes)>,
}

/// The outcome of an [`ObjectOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectReply {
    /// [`ObjectOp::Load`]: the object, or `None` when it does not exist (or expired).
    Loaded(Option<StoredObject>),
    /// [`ObjectOp::Save`] wrote.
    Saved {
        /// The new version.
        version: u64,
        /// The version it replaced (`None`: the save created the object).
        previous: Option<u64>,
    },
    /// [`ObjectOp::Save`] found the object not as expected and wrote nothing.
    Conflict {
        /// The stored version (`None`: the object does not exist).
        current: Option<u64>,
    },
    /// [`ObjectOp::Delete`]: the version that was removed (`None`: there was no object).
    Deleted(Option<u64>),
    /// [`ObjectOp::Touch`]: whether the object existed (and so had its expiry pushed back).
    Touched(bool),
}
