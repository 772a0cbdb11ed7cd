//! Reading script replies: `{status, ...}` arrays of bulk strings, integers and nils.

use busmq_core::Error;
use busmq_core::store::{QueueSpec, Retention};
use redis::Value;
use std::time::Duration;

/// A script reply: `items[0]` is the status (`ok`, `missing`, `closed`, ...).
#[derive(Debug)]
pub(crate) struct Reply {
    op: &'static str,
    items: Vec<Value>,
}

impl Reply {
    pub(crate) fn parse(op: &'static str, value: Value) -> Result<Reply, Error> {
        match value {
            Value::Array(items) if !items.is_empty() => {
                let reply = Reply { op, items };
                if reply.text(0).is_none() {
                    return Err(unexpected(op, "the status is not a string"));
                }
                Ok(reply)
            }
            other => Err(unexpected(op, format!("{other:?}"))),
        }
    }

    pub(crate) fn status(&self) -> &str {
        self.text(0).unwrap_or("")
    }

    pub(crate) fn is(&self, status: &str) -> bool {
        self.status() == status
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn text(&self, i: usize) -> Option<&str> {
        match self.items.get(i)? {
            Value::BulkString(b) => std::str::from_utf8(b).ok(),
            Value::SimpleString(s) => Some(s),
            _ => None,
        }
    }

    /// An optional number: nil or an empty string is `None`.
    pub(crate) fn opt_u64(&self, i: usize) -> Result<Option<u64>, Error> {
        match self.items.get(i) {
            None | Some(Value::Nil) => Ok(None),
            Some(Value::Int(n)) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| unexpected(self.op, format!("negative number {n} at {i}"))),
            Some(_) => match self.text(i) {
                Some("") => Ok(None),
                Some(t) => t
                    .parse()
                    .map(Some)
                    .map_err(|_| unexpected(self.op, format!("{t:?} at {i} is not a number"))),
                None => Err(unexpected(self.op, format!("item {i} is not a number"))),
            },
        }
    }

    pub(crate) fn u64(&self, i: usize) -> Result<u64, Error> {
        self.opt_u64(i)?.ok_or_else(|| unexpected(self.op, format!("item {i} is missing")))
    }

    /// Takes a bulk string out of the reply without copying it.
    pub(crate) fn take_bytes(&mut self, i: usize) -> Result<Vec<u8>, Error> {
        match self.items.get_mut(i) {
            Some(Value::BulkString(b)) => Ok(std::mem::take(b)),
            _ => Err(unexpected(self.op, format!("item {i} is not a bulk string"))),
        }
    }

    /// Takes a nested array out of the reply.
    pub(crate) fn take_array(&mut self, i: usize) -> Result<Vec<Value>, Error> {
        match self.items.get_mut(i) {
            Some(Value::Array(items)) => Ok(std::mem::take(items)),
            // Lua turns an empty table into an empty array, but be lenient with nil.
            Some(Value::Nil) => Ok(Vec::new()),
            _ => Err(unexpected(self.op, format!("item {i} is not an array"))),
        }
    }

    /// The spec and generation at `i..i + 5` (generation, ttl, maxsize, max_len, max_age).
    pub(crate) fn spec(&self, i: usize) -> Result<(u64, QueueSpec), Error> {
        let generation = self.u64(i)?;
        let spec = QueueSpec {
            ttl: Duration::from_millis(self.u64(i + 1)?),
            maxsize: self.opt_u64(i + 2)?,
            retention: Retention {
                max_len: self.opt_u64(i + 3)?,
                max_age: self.opt_u64(i + 4)?.map(Duration::from_millis),
            },
        };
        Ok((generation, spec))
    }
}

/// An answer that does not have the shape the script promises (a bug or a foreign script).
pub(crate) fn unexpected(operation: &'static str, what: impl std::fmt::Display) -> Error {
    Error::Store {
        backend: "redis",
        operation,
        message: format!("unexpected reply: {what}"),
        retryable: false,
        source: None,
    }
}
