//! A persisted value as fields: `T` serializes to a map, and each of its entries is stored as
//! its own JSON value (as node busmq stores them, so that other tools can read each field),
//! whatever codec the bus uses for messages. Also the diff that decides what a save writes.

use crate::error::{Error, Result};
use busmq_codec::{Codec, CodecError};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// Field name → its JSON text.
pub(crate) type Fields = BTreeMap<String, Bytes>;

fn encode_error<T>(message: String) -> CodecError {
    CodecError::Encode { codec: Codec::Json, type_name: std::any::type_name::<T>(), message }
}

fn decode_error<T>(message: String) -> CodecError {
    CodecError::Decode { codec: Codec::Json, type_name: std::any::type_name::<T>(), message }
}

/// The fields of `value`; anything but a map or a struct is an encode error.
pub(crate) fn encode<T: Serialize>(target: impl Fn() -> String, value: &T) -> Result<Fields> {
    let fail =
        |message: String| Error::Encode { target: target(), source: encode_error::<T>(message) };
    let map = match serde_json::to_value(value).map_err(|e| fail(e.to_string()))? {
        serde_json::Value::Object(map) => map,
        other => {
            let kind = match other {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Array(_) => "a sequence",
                serde_json::Value::Object(_) => "a map",
            };
            return Err(fail(format!(
                "a persisted object must serialize to a map or a struct of fields, not {kind}"
            )));
        }
    };
    map.into_iter()
        .map(|(name, field)| {
            let text = serde_json::to_vec(&field).map_err(|e| fail(e.to_string()))?;
            Ok((name, Bytes::from(text)))
        })
        .collect()
}

/// `T` from stored fields; `version` names the stored state in the error.
pub(crate) fn decode<T: DeserializeOwned>(
    target: impl Fn() -> String,
    version: u64,
    fields: &Fields,
) -> Result<T> {
    let fail = |message: String| Error::Decode {
        target: target(),
        id: version,
        source: decode_error::<T>(message),
    };
    let mut map = serde_json::Map::with_capacity(fields.len());
    for (name, text) in fields {
        let field: serde_json::Value = serde_json::from_slice(text)
            .map_err(|e| fail(format!("field {name:?} is not JSON: {e}")))?;
        map.insert(name.clone(), field);
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| fail(e.to_string()))
}

/// What turns `before` into `after`: the fields to write (new or changed) and to remove.
pub(crate) fn diff(before: &Fields, after: &Fields) -> (Vec<(String, Bytes)>, Vec<String>) {
    let set = after
        .iter()
        .filter(|(name, value)| before.get(*name) != Some(*value))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let remove = before.keys().filter(|name| !after.contains_key(*name)).cloned().collect();
    (set, remove)
}

/// Applies a diff to `fields`.
pub(crate) fn apply(fields: &mut Fields, set: &[(String, Bytes)], remove: &[String]) {
    for (name, value) in set {
        fields.insert(name.clone(), value.clone());
    }
    for name in remove {
        fields.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Doc {
        name: String,
        count: u32,
        on: bool,
        tags: Option<Vec<String>>,
    }

    fn target() -> String {
        "object \"doc\"".to_string()
    }

    #[test]
    fn fields_round_trip_as_one_json_value_each() {
        let doc = Doc { name: "a".into(), count: 2, on: true, tags: Some(vec!["x".into()]) };
        let fields = encode(target, &doc).unwrap();
        assert_eq!(fields["name"], Bytes::from("\"a\""));
        assert_eq!(fields["count"], Bytes::from("2"));
        assert_eq!(fields["tags"], Bytes::from("[\"x\"]"));
        assert_eq!(decode::<Doc>(target, 1, &fields).unwrap(), doc);
    }

    #[test]
    fn only_maps_and_structs_can_be_persisted() {
        let e = encode(target, &"text").unwrap_err();
        assert!(matches!(e, Error::Encode { .. }), "{e:?}");
        assert!(format!("{:?}", e).contains("not a string"), "{e:?}");
    }

    #[test]
    fn the_diff_names_changed_new_and_removed_fields_only() {
        let before = encode(target, &serde_json::json!({"a": 1, "b": 2, "c": 3})).unwrap();
        let after = encode(target, &serde_json::json!({"a": 1, "b": 5, "d": 4})).unwrap();
        let (set, remove) = diff(&before, &after);
        let names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(remove, ["c"]);
        let mut applied = before.clone();
        apply(&mut applied, &set, &remove);
        assert_eq!(applied, after);
    }
}
