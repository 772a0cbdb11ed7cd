//! Persisted objects (SPEC P3) in memory: every object of one [`Memory`](crate::Memory) under
//! one lock, each operation one locked section, expiry on tokio's clock like the queues'.

use crate::clock::{IdClock, deadline};
use busmq_core::store::{Expect, ObjectOp, ObjectReply, ObjectSave, StoredObject};
use busmq_core::support::lock;
use busmq_core::{Error, ObjectName, Result};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
struct Object {
    version: u64,
    fields: BTreeMap<String, Bytes>,
    expires: Instant,
}

/// The objects of one memory.
#[derive(Debug, Default)]
pub(crate) struct Objects {
    map: Mutex<HashMap<ObjectName, Object>>,
}

impl Objects {
    /// Runs `op` on `name` atomically. Versions come from the memory's id clock, so they never
    /// go backwards for a name, even after a delete or an expiry.
    pub(crate) fn apply(
        &self,
        name: &ObjectName,
        op: ObjectOp,
        ids: &IdClock,
    ) -> Result<ObjectReply> {
        if let ObjectOp::Save(save) = &op {
            if save.ttl.is_zero() {
                return Err(Error::invalid_option(
                    "ttl",
                    "a persisted object's ttl must not be zero",
                ));
            }
        }
        let now = Instant::now();
        let mut map = lock(&self.map);
        if map.get(name).is_some_and(|o| o.expires <= now) {
            map.remove(name);
        }
        let current = map.get_mut(name);
        Ok(match op {
            ObjectOp::Load => ObjectReply::Loaded(current.map(|o| StoredObject {
                version: o.version,
                fields: o.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            })),
            ObjectOp::Touch(ttl) => match current {
                Some(o) => {
                    o.expires = deadline(now, ttl);
                    ObjectReply::Touched(true)
                }
                None => ObjectReply::Touched(false),
            },
            ObjectOp::Delete => ObjectReply::Deleted(map.remove(name).map(|o| o.version)),
            ObjectOp::Save(save) => {
                let stored = current.as_ref().map(|o| o.version);
                let holds = match save.expect {
                    Expect::Absent => stored.is_none(),
                    Expect::Version(v) => stored == Some(v),
                    Expect::Exists => stored.is_some(),
                };
                if !holds {
                    return Ok(ObjectReply::Conflict { current: stored });
                }
                let ObjectSave { set, remove, ttl, .. } = save;
                let version = ids.next(1);
                let object = map.entry(name.clone()).or_insert_with(|| Object {
                    version,
                    fields: BTreeMap::new(),
                    expires: now,
                });
                object.fields.extend(set);
                for field in remove {
                    object.fields.remove(&field);
                }
                object.version = version;
                object.expires = deadline(now, ttl);
                ObjectReply::Saved { version, previous: stored }
            }
        })
    }

    /// Forgets expired objects.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        lock(&self.map).retain(|_, o| o.expires > now);
    }
}
