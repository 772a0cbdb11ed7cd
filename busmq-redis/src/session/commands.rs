//! What a new session finds of its server's command set (see `CommandSet`): whether the fast
//! paths that use `RENAME` and `SORT` are off for this session, or (`CommandSet::Full` against
//! a server without them) that the session must not open.

use crate::config::commands::CommandSet;
use crate::fault::CallError;
use redis::Value;
use redis::aio::ConnectionLike;

/// Whether the session's server is to be treated as restricted. `COMMAND INFO RENAME SORT`
/// answers nil for a command that `rename-command` disabled or renamed (Redis and Valkey
/// alike). [`CommandSet::Auto`] takes an error (a provider that refuses `COMMAND` too, a user
/// without `+command|info`) as restricted, which works everywhere; [`CommandSet::Full`] trusts
/// the setting then, but refuses a server that says it lacks one: the fast paths would fail
/// halfway (an append whose commit cannot rename would leave its entries outside the queue).
pub(crate) async fn restricted<C: ConnectionLike>(
    set: CommandSet,
    conn: &mut C,
) -> Result<bool, CallError> {
    if set == CommandSet::Restricted {
        return Ok(true);
    }
    let mut cmd = redis::cmd("COMMAND");
    cmd.arg("INFO").arg(&CommandSet::PROBED[..]);
    let missing = match cmd.query_async::<Value>(conn).await {
        Ok(answer) => missing(&answer),
        Err(e) if set == CommandSet::Full => {
            tracing::debug!(error = %e, "COMMAND INFO was refused; CommandSet::Full trusted");
            return Ok(false);
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "COMMAND INFO was refused; avoiding RENAME and SORT (see CommandSet)"
            );
            return Ok(true);
        }
    };
    match (set, missing.is_empty()) {
        (_, true) => Ok(false),
        (CommandSet::Full, false) => Err(CallError::Unsupported(format!(
            "the server has no {} (disabled or renamed with rename-command), which \
             CommandSet::Full needs; use CommandSet::Auto or CommandSet::Restricted",
            missing.join(" or ")
        ))),
        (_, false) => {
            tracing::debug!(?missing, "avoiding RENAME and SORT (see CommandSet)");
            Ok(true)
        }
    }
}

/// The probed commands `COMMAND INFO`'s answer does not describe.
fn missing(answer: &Value) -> Vec<&'static str> {
    let items = match answer {
        Value::Array(items) => items.as_slice(),
        _ => &[],
    };
    CommandSet::PROBED
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(items.get(*i), None | Some(Value::Nil)))
        .map(|(_, name)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nil_entry_means_a_command_is_missing() {
        let info = || Value::Array(vec![Value::SimpleString("rename".into())]);
        assert!(missing(&Value::Array(vec![info(), info()])).is_empty());
        assert_eq!(missing(&Value::Array(vec![Value::Nil, info()])), ["RENAME"]);
        assert_eq!(missing(&Value::Array(vec![info(), Value::Nil])), ["SORT"]);
        assert_eq!(missing(&Value::Nil), ["RENAME", "SORT"]);
    }
}
