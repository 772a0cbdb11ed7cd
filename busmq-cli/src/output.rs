//! How results reach the user: text and tables for people, or one JSON document for programs
//! (`--json`), and how a stored message (bytes and headers) is shown in either.
//!
//! Everything goes through [`Out`], which writes to stdout with `writeln!` (a closed pipe, as
//! in `busmq peek q | head -1`, ends the command quietly instead of panicking) and scrubs
//! secrets from notes on stderr.

use crate::exit::{CliError, CliResult};
use crate::headers::{self, HeadersJson};
use crate::secrets::Secrets;
use busmq::Headers;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

/// Where results go, and in which form.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub(crate) json: bool,
    secrets: Secrets,
}

impl Out {
    pub(crate) fn new(json: bool, secrets: Secrets) -> Self {
        Out { json, secrets }
    }

    /// Writes one line of results to stdout.
    pub(crate) fn line(&self, text: impl AsRef<str>) -> CliResult {
        let mut stdout = io::stdout().lock();
        let written = writeln!(stdout, "{}", text.as_ref()).and_then(|()| stdout.flush());
        written.map_err(pipe)
    }

    /// Writes a note for the person at the terminal to stderr (never with `--json` on
    /// stdout's behalf: notes never go to stdout).
    pub(crate) fn note(&self, text: impl AsRef<str>) {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "{}", self.secrets.scrub(text.as_ref()));
    }

    /// Prints the one JSON document of a command.
    pub(crate) fn document(&self, value: &(impl Serialize + ?Sized)) -> CliResult {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string());
        self.line(text)
    }

    /// Prints the document of a command that shows messages of `queue` (peek, tail, consume).
    pub(crate) fn messages(&self, queue: &str, messages: &[MessageJson]) -> CliResult {
        #[derive(Serialize)]
        struct Messages<'a> {
            queue: &'a str,
            messages: &'a [MessageJson],
        }
        self.document(&Messages { queue, messages })
    }

    /// A table with the house style, sized to the terminal when there is one.
    pub(crate) fn table(&self, header: &[&str]) -> Table {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
        if io::stdout().is_terminal() {
            table.set_content_arrangement(ContentArrangement::Dynamic);
        }
        table
    }
}

fn pipe(error: io::Error) -> CliError {
    if error.kind() == io::ErrorKind::BrokenPipe { CliError::reader_gone() } else { error.into() }
}

/// A stored message shown to a person: a JSON string as its text, other UTF-8 (other JSON
/// included, keys in the order it was written) as it is, anything else as hex.
pub(crate) fn body_text(payload: &[u8]) -> String {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::String(text)) => text,
        _ => match std::str::from_utf8(payload) {
            Ok(text) => text.trim().to_string(),
            Err(_) => format!("0x{}", hex(payload)),
        },
    }
}

/// A stored message in a JSON document: `body` is the JSON value when the payload is JSON
/// (busmq's default codec), else the text, else hex; `format` says which.
pub(crate) fn body_json(payload: &[u8]) -> (Value, &'static str) {
    match serde_json::from_slice::<Value>(payload) {
        Ok(value) => (value, "json"),
        Err(_) => match std::str::from_utf8(payload) {
            Ok(text) => (Value::String(text.to_string()), "text"),
            Err(_) => (Value::String(hex(payload)), "hex"),
        },
    }
}

/// One message as an object of a JSON document: `id`, `body` and `format` (see
/// [`body_json`]), `headers` (always there, `{}` for a message without any, so that a script
/// reads them without checking first), then what the command adds (dead-letter details).
///
/// A struct rather than a `Value`: a `Value` would sort the headers' keys.
#[derive(Debug, Serialize)]
pub(crate) struct MessageJson {
    id: u64,
    body: Value,
    format: &'static str,
    #[serde(serialize_with = "headers_object")]
    headers: Headers,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl MessageJson {
    pub(crate) fn new(id: u64, payload: &[u8], headers: &Headers) -> Self {
        let (body, format) = body_json(payload);
        MessageJson { id, body, format, headers: headers.clone(), extra: Map::new() }
    }

    /// Adds a field after the others.
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
}

fn headers_object<S: Serializer>(headers: &Headers, serializer: S) -> Result<S::Ok, S::Error> {
    HeadersJson(headers).serialize(serializer)
}

/// One message as a line of text: `<id>  <body>`, then `  [k=v …]` when it has headers.
pub(crate) fn message_line(id: u64, payload: &[u8], headers: &Headers) -> String {
    let body = body_text(payload);
    match headers::inline(headers) {
        Some(headers) => format!("{id}  {body}  {headers}"),
        None => format!("{id}  {body}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A duration for people: `30s`, `1.5s`, `250ms`, `2h`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_show_json_strings_as_text_and_binary_as_hex() {
        assert_eq!(body_text(br#""hello""#), "hello");
        assert_eq!(body_text(br#"{"b": 1, "a": 2}"#), r#"{"b": 1, "a": 2}"#);
        assert_eq!(body_text(b"plain words"), "plain words");
        assert_eq!(body_text(&[0xff, 0x00]), "0xff00");
        assert_eq!(body_json(b"plain"), (json!("plain"), "text"));
        assert_eq!(body_json(br#"[1]"#), (json!([1]), "json"));
    }

    #[test]
    fn messages_show_their_headers_in_order_and_json_always_has_them() {
        let headers = Headers::new().with("tenant", "acme").with("kind", "resize");
        assert_eq!(message_line(7, br#""hi""#, &headers), "7  hi  [tenant=acme kind=resize]");
        assert_eq!(message_line(8, br#""hi""#, &Headers::new()), "8  hi");
        let text =
            serde_json::to_string(&MessageJson::new(7, b"x", &headers).with("n", 1)).unwrap();
        assert_eq!(
            text,
            r#"{"id":7,"body":"x","format":"text","headers":{"tenant":"acme","kind":"resize"},"n":1}"#
        );
        let none = serde_json::to_value(MessageJson::new(8, b"1", &Headers::new())).unwrap();
        assert_eq!(none["headers"], json!({}));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(30)), "30s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2h");
    }
}
