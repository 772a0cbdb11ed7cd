//! Message headers on the command line: `--header KEY=VALUE` as `push` takes it, and how the
//! headers of a stored message are shown to people (`[k=v …]`) and in `--json` (an object,
//! keys in the order they were set, `{}` for a message without headers).

use busmq::Headers;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// What a message without headers shows (an entry read from the store has `None`).
pub(crate) static NONE: Headers = Headers::new();

/// Parses one `--header KEY=VALUE` (clap's value parser: an error is a usage error, exit 2,
/// before anything is connected or pushed). The value is everything after the first `=`, so
/// it may hold `=` itself, and may be empty; the key follows busmq's rules for header keys.
pub(crate) fn parse_header(text: &str) -> Result<(String, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err("expected KEY=VALUE (e.g. --header tenant=acme)".to_string());
    };
    Headers::new().with(key, value).validate().map_err(|e| e.to_string())?;
    Ok((key.to_string(), value.to_string()))
}

/// The headers of a run of `push`: a key given twice keeps its first place and its last value
/// (as [`Headers::insert`] does).
pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Headers {
    pairs.into_iter().collect()
}

/// Headers in a JSON document: an object in insertion order. A `serde_json::Value` would sort
/// the keys (the workspace builds serde_json without `preserve_order`, and turning it on here
/// would change it for the libraries too), so the map is written directly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadersJson<'a>(pub(crate) &'a Headers);

impl Serialize for HeadersJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// `[tenant=acme kind="two words"]` for a line of text; `None` without headers.
pub(crate) fn inline(headers: &Headers) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let pairs: Vec<String> = headers.iter().map(|(k, v)| pair(k, v)).collect();
    Some(format!("[{}]", pairs.join(" ")))
}

/// One header as `key=value`, each side quoted (Rust string syntax) when it would otherwise
/// be ambiguous on a line: empty, or holding spaces, `=`, brackets, quotes or control
/// characters.
pub(crate) fn pair(key: &str, value: &str) -> String {
    format!("{}={}", quoted(key), quoted(value))
}

fn quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '=' | '[' | ']' | '"' | '\\')
        });
    if plain { text.to_string() } else { format!("{text:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_key_equals_value_with_a_valid_key() {
        assert_eq!(parse_header("tenant=acme"), Ok(("tenant".into(), "acme".into())));
        assert_eq!(parse_header("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert_eq!(parse_header("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_header("no-equals").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_header("=v").unwrap_err().contains("header key"));
        assert!(parse_header("a\tb=v").unwrap_err().contains("control character"));
    }

    #[test]
    fn repeated_keys_keep_their_place_and_the_last_value() {
        let pairs = [("b", "1"), ("a", "2"), ("b", "3")];
        let headers = from_pairs(pairs.map(|(k, v)| (k.to_string(), v.to_string())).to_vec());
        assert_eq!(headers.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "2")]);
    }

    #[test]
    fn headers_show_in_insertion_order_and_quote_what_is_ambiguous() {
        let headers = Headers::new().with("z", "1").with("a", "two words").with("k", "");
        assert_eq!(inline(&headers).unwrap(), r#"[z=1 a="two words" k=""]"#);
        assert_eq!(inline(&NONE), None);
        let json = serde_json::to_string(&HeadersJson(&headers)).unwrap();
        assert_eq!(json, r#"{"z":"1","a":"two words","k":""}"#);
        assert_eq!(serde_json::to_string(&HeadersJson(&NONE)).unwrap(), "{}");
    }
}
