//! The change notice published on an object's topic after each successful save or delete, so
//! that watchers follow the object without polling: who wrote (the handle's writer id, so a
//! watcher can leave its own saves out), the version before and after, and the fields written
//! and removed, so that a watcher holding the previous version rebuilds the new one exactly.

use crate::error::{Error, Result};
use crate::name::{MAX_NAME_BYTES, ObjectName, TopicName};
use crate::persisted::fields::Fields;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Notices of the object `<name>` are published on the topic `busmq:persisted:<name>`.
pub(crate) const TOPIC_PREFIX: &str = "busmq:persisted:";

/// The topic of `object`'s notices. Object names are limited so that it is a valid topic.
pub(crate) fn topic(object: &ObjectName) -> Result<TopicName> {
    let limit = MAX_NAME_BYTES - TOPIC_PREFIX.len();
    if object.as_str().len() > limit {
        return Err(Error::InvalidName {
            kind: crate::error::NameKind::Object,
            name: crate::name::shorten(object.as_str()),
            reason: format!(
                "it is {} bytes long, the limit for objects is {limit}",
                object.as_str().len()
            ),
        });
    }
    TopicName::new(format!("{TOPIC_PREFIX}{object}"))
}

/// One notice. Field values are the stored JSON texts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ChangeNotice {
    /// The writer id of the handle that made the change.
    pub(crate) w: String,
    /// The version before the change (`None`: the save created the object).
    pub(crate) p: Option<u64>,
    /// The version after the change (`None`: the object was deleted).
    pub(crate) v: Option<u64>,
    /// Fields written.
    #[serde(default)]
    pub(crate) s: BTreeMap<String, String>,
    /// Fields removed.
    #[serde(default)]
    pub(crate) d: Vec<String>,
}

impl ChangeNotice {
    pub(crate) fn saved(
        writer: &str,
        previous: Option<u64>,
        version: u64,
        set: &[(String, Bytes)],
        remove: &[String],
    ) -> ChangeNotice {
        ChangeNotice {
            w: writer.to_string(),
            p: previous,
            v: Some(version),
            // The values are serde_json's output: always UTF-8.
            s: set
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            d: remove.to_vec(),
        }
    }

    pub(crate) fn deleted(writer: &str, version: u64) -> ChangeNotice {
        ChangeNotice {
            w: writer.to_string(),
            p: Some(version),
            v: None,
            s: BTreeMap::new(),
            d: vec![],
        }
    }

    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    pub(crate) fn decode(payload: &[u8]) -> Option<ChangeNotice> {
        serde_json::from_slice(payload).ok()
    }

    /// The written fields as stored values.
    pub(crate) fn set(&self) -> Vec<(String, Bytes)> {
        self.s.iter().map(|(k, v)| (k.clone(), Bytes::from(v.clone()))).collect()
    }

    /// Applies this change to `fields`, the state at version `p`.
    pub(crate) fn apply(&self, fields: &mut Fields) {
        if self.v.is_none() {
            fields.clear();
            return;
        }
        crate::persisted::fields::apply(fields, &self.set(), &self.d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_rebuild_the_next_version() {
        let set = vec![("a".to_string(), Bytes::from("2"))];
        let notice = ChangeNotice::saved("w1", Some(5), 6, &set, &["b".to_string()]);
        let back = ChangeNotice::decode(&notice.encode()).unwrap();
        assert_eq!(back, notice);
        let mut fields: Fields =
            [("a".to_string(), Bytes::from("1")), ("b".to_string(), Bytes::from("1"))].into();
        back.apply(&mut fields);
        assert_eq!(fields, Fields::from([("a".to_string(), Bytes::from("2"))]));
    }

    #[test]
    fn object_names_leave_room_for_the_topic_prefix() {
        let longest = ObjectName::new("x".repeat(MAX_NAME_BYTES - TOPIC_PREFIX.len())).unwrap();
        assert!(topic(&longest).is_ok());
        let too_long = ObjectName::new("x".repeat(MAX_NAME_BYTES)).unwrap();
        assert!(matches!(topic(&too_long), Err(Error::InvalidName { .. })));
    }
}
