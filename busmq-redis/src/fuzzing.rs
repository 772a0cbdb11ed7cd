//! Fuzz targets for what busmq-redis reads from outside: stored entries, script replies (the
//! generic accessors and the persisted-object replies) and connection URLs. Only with the `fuzzing` feature: the `fuzz/` cargo-fuzz crate and `cargo
//! xtask fuzz` call them.
//!
//! Each target takes any bytes and panics only when an invariant breaks: decoding never
//! panics, an entry that decodes encodes back to the same entry, refusals are typed, and a
//! password never shows in an error or a `Debug`.

use crate::config::url;
use crate::script::entry::{self, EntryArg};
use crate::script::reply::Reply;
use busmq_core::Error;
use bytes::Bytes;
use redis::{ToRedisArgs, Value};

/// A stored entry (`<id>:<deliveries>:<attr length>:<attrs><payload>`): a decoded entry
/// encodes to bytes that decode to the same entry.
pub fn entry(data: &[u8]) {
    let Ok(decoded) = entry::parse(Bytes::copy_from_slice(data)) else { return };
    let mut args = EntryArg::new(&decoded).to_redis_args();
    assert_eq!(args.len(), 1);
    let again = entry::parse(Bytes::from(args.remove(0))).expect("an encoded entry decodes");
    assert_eq!(again, decoded);
}

/// The password the URL target puts into every URL it builds.
const PASSWORD: &str = "Pw7Zq9sEcReT";

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "the password shows in {what}: {text}");
}

fn check_url(url: &str, secret: bool) {
    let parsed = url::parse(url);
    let built = crate::RedisStore::builder().url(url).build();
    if secret {
        match &parsed {
            Ok(endpoint) => assert_hidden("an endpoint's identity", &endpoint.identity),
            Err(error) => {
                assert_hidden("an error", &error.to_string());
                assert_hidden("an error's Debug", &format!("{error:?}"));
            }
        }
        match &built {
            Ok(store) => {
                assert_hidden("a store's Debug", &format!("{store:?}"));
                for instance in store.instances() {
                    assert_hidden("an instance name", &instance);
                }
            }
            Err(error) => {
                assert_hidden("an error", &error.to_string());
                assert_hidden("an error's Debug", &format!("{error:?}"));
            }
        }
    }
    for error in [parsed.err(), built.err()].into_iter().flatten() {
        assert!(
            matches!(error, Error::InvalidUrl { .. } | Error::InvalidOption { .. }),
            "{error:?}"
        );
    }
}

/// A connection URL (any scheme): parsing never panics and refuses with `InvalidUrl`; the same
/// text with `user:<password>@` placed after its scheme never shows the password in an error,
/// an identity or a store's `Debug`.
pub fn url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_url(&text, false);
    // The fuzzer learns the password from the comparisons and writes it elsewhere (a host,
    // a path), where it is no password: check only inputs that do not hold it already.
    if text.contains(PASSWORD) {
        return;
    }
    if let Some((scheme, rest)) = text.split_once("://") {
        // A password in the place every scheme reads credentials from; the rest of the URL is
        // the fuzzer's (a password with `/`, `?` or `#` must be percent-encoded by its user).
        check_url(&format!("{scheme}://user:{PASSWORD}@{rest}"), true);
        check_url(&format!("{scheme}://:{PASSWORD}@{rest}"), true);
    }
}

/// A persisted-object script reply, read as the reply of each operation: an object, an
/// outcome or a typed `Store` error, never a panic.
pub fn object_reply(data: &[u8]) {
    use busmq_core::store::{Expect, ObjectOp, ObjectSave};
    use std::time::Duration;
    let mut rest = data;
    let value = value(&mut rest, 0);
    let save = ObjectSave {
        expect: Expect::Exists,
        set: Vec::new(),
        remove: Vec::new(),
        ttl: Duration::from_secs(1),
    };
    let ops = [
        ObjectOp::Load,
        ObjectOp::Save(save),
        ObjectOp::Delete,
        ObjectOp::Touch(Duration::from_secs(1)),
    ];
    for op in ops {
        let Ok(mut reply) = Reply::parse("fuzz", value.clone()) else { return };
        if let Err(error) = crate::ops::object::parse(op, &mut reply) {
            assert!(matches!(error, Error::Store { .. }), "{error:?}");
        }
    }
}

/// A reply value built from `data`: a tag byte per value (nil, integer, bulk string, simple
/// string, array), nested at most a few levels deep.
fn value(data: &mut &[u8], depth: u32) -> Value {
    let Some((&tag, rest)) = data.split_first() else { return Value::Nil };
    *data = rest;
    let mut take = |n: usize| {
        let n = n.min(data.len());
        let (head, tail) = data.split_at(n);
        *data = tail;
        head.to_vec()
    };
    match tag % 5 {
        0 => Value::Nil,
        1 => {
            let mut raw = [0u8; 8];
            let bytes = take(8);
            raw[..bytes.len()].copy_from_slice(&bytes);
            Value::Int(i64::from_le_bytes(raw))
        }
        2 | 3 => {
            let len = take(1).first().copied().unwrap_or(0) as usize;
            let bytes = take(len);
            if tag % 5 == 2 {
                Value::BulkString(bytes)
            } else {
                Value::SimpleString(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
        _ => {
            let len = take(1).first().copied().unwrap_or(0) as usize % 16;
            let items = if depth >= 4 {
                Vec::new()
            } else {
                (0..len).map(|_| value(data, depth + 1)).collect()
            };
            Value::Array(items)
        }
    }
}

/// A script reply (`{status, ...}`): every accessor answers a value or a typed `Store` error.
pub fn script_reply(data: &[u8]) {
    let mut rest = data;
    let Ok(mut reply) = Reply::parse("fuzz", value(&mut rest, 0)) else { return };
    let _ = reply.status();
    for i in 0..reply.len() + 1 {
        let _ = reply.text(i);
        for result in [reply.u64(i), reply.opt_u64(i).map(|n| n.unwrap_or(0))] {
            if let Err(error) = result {
                assert!(matches!(error, Error::Store { .. }), "{error:?}");
            }
        }
        let _ = reply.spec(i);
    }
    for i in 0..reply.len() {
        if let Ok(items) = reply.take_array(i) {
            let raw = items.into_iter().filter_map(|v| match v {
                Value::BulkString(b) => Some(Bytes::from(b)),
                _ => None,
            });
            let (entries, foreign) = crate::ops::quarantine::split(raw);
            let _ = (entries.len(), foreign.len());
        }
        let _ = reply.take_bytes(i);
    }
}
