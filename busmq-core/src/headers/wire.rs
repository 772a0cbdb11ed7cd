//! Headers as serde sees them: a map in insertion order. Reading one checks what a push would
//! have checked (valid keys, each once), so that headers a store hands back are never ones
//! busmq would have refused to write.

use super::Headers;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashSet;
use std::fmt;

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = Headers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of header keys to string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
        // Duplicates are found through a set, not `Headers::insert` (a scan per key): stored
        // bytes may hold a million keys, and a quadratic read would stall their consumer.
        let mut pairs = Vec::new();
        let mut seen = HashSet::new();
        while let Some((key, value)) = map.next_entry::<String, String>()? {
            if let Err(error) = crate::name::validate(crate::NameKind::HeaderKey, &key) {
                return Err(de::Error::custom(error));
            }
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom("a header key appears twice"));
            }
            pairs.push((key, value));
        }
        Ok(Headers { pairs })
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Headers, D::Error> {
        deserializer.deserialize_map(HeadersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile stored headers with many keys: each key was checked against all earlier ones
    /// (quadratic); now through a set. No timing is asserted (house rule): a quadratic read
    /// shows as this test taking minutes, and `cargo xtask fuzz` fails on a slow input.
    #[test]
    fn many_keys_are_read_with_one_set_lookup_each() {
        let n = 200_000;
        let mut json = String::from("{");
        for i in 0..n {
            json.push_str(&format!("\"k{i}\":\"\","));
        }
        json.push_str("\"k0\":\"\"}");
        let error = serde_json::from_str::<Headers>(&json).unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
        json.truncate(json.len() - "\"k0\":\"\"}".len() - 1);
        json.push('}');
        let headers = serde_json::from_str::<Headers>(&json).unwrap();
        assert_eq!(headers.len(), n);
        assert_eq!(headers.iter().nth(n - 1), Some((format!("k{}", n - 1).as_str(), "")));
    }

    #[test]
    fn json_keeps_the_order_and_refuses_what_a_push_would_refuse() {
        let h = Headers::new().with("z", "1").with("a", "\"two\"\n");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"{"z":"1","a":"\"two\"\n"}"#);
        assert_eq!(serde_json::from_str::<Headers>(&json).unwrap(), h);
        for bad in [r#"{"":"v"}"#, r#"{"a\u0001":"v"}"#, r#"{"a":"1","a":"2"}"#, r#"{"a":1}"#, "[]"]
        {
            assert!(serde_json::from_str::<Headers>(bad).is_err(), "{bad}");
        }
    }
}
