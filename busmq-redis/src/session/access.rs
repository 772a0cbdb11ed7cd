//! Refused credentials and ACL rights (SPEC E1): recognising them among the redis crate's and
//! the server's errors, and saying in [`Error::AccessDenied`](busmq_core::Error) what is wrong.
//!
//! Trying again with the same configuration cannot help, so these errors are not retryable.
//! Sessions check access before anything else is sent: without a password the redis crate
//! connects without learning that one is needed (it ignores the answers to its `CLIENT
//! SETINFO`), and a server that gets an unauthenticated command with a large argument (the
//! scripts) closes the connection without an answer, which reads as an I/O error. So a session
//! starts with PING, and its first pipeline carries [`probes`] that need the rights every queue
//! operation needs.

use crate::fault::CallError;
use crate::script::keys::Layout;
use crate::script::scripts::scripts;
use crate::session::tls_failure::explain as explain_tls;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionInfo, ErrorKind, RedisConnectionInfo, RedisError,
};
use std::time::Duration;

/// Who connects, as far as a reason may say: the user name, and whether a password is set
/// (never the password itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who<'a> {
    user: Option<&'a str>,
    password: bool,
}

impl<'a> Who<'a> {
    pub(crate) fn new(user: Option<&'a str>, password: bool) -> Who<'a> {
        Who { user, password }
    }

    pub(crate) fn of(settings: &'a RedisConnectionInfo) -> Who<'a> {
        Who { user: settings.username(), password: settings.password().is_some() }
    }

    fn missing(self) -> String {
        if self.password {
            "the server requires authentication and refused this connection".to_string()
        } else {
            "the server requires a password and the URL has none".to_string()
        }
    }

    fn wrong(self) -> String {
        match self.user {
            Some(user) => {
                format!("the password or user name is wrong (user {user:?}), or the user is off")
            }
            None => "the password or user name is wrong".to_string(),
        }
    }

    fn surplus(self) -> String {
        "the URL has a password but the server has none set (remove it from the URL, or set \
         requirepass on the server)"
            .to_string()
    }

    fn lacks(self, what: &str) -> String {
        format!("user {:?} lacks permission: {what}", self.user.unwrap_or("default"))
    }
}

/// The reason for one server error, by its code and text. Servers before 6.0 answered a wrong
/// password with `ERR invalid password`, and a password they did not expect with `ERR Client
/// sent AUTH, but no password is set`; 6.0 and later say `WRONGPASS` and `ERR AUTH <password>
/// called without any password configured for the default user`. The redis crate keeps only
/// the text of an error that failed its `SELECT`, hence the matching on text alone.
fn reason_for(code: &str, detail: &str, who: Who<'_>) -> Option<String> {
    let lower = detail.to_ascii_lowercase();
    // Redis 7.0: "The user executing the script can't run this command ..."; Valkey (and
    // Redis 7.2): "ACL failure in script: User <name> has no permissions to run the '<cmd>'
    // command", both with code ERR and the script's digest and line after.
    if lower.contains("the user executing the script can't")
        || lower.starts_with("acl failure in script")
    {
        return Some(who.lacks(&script_refusal(detail)));
    }
    match code {
        "NOAUTH" => Some(who.missing()),
        "WRONGPASS" => Some(who.wrong()),
        "NOPERM" => Some(who.lacks(detail.trim())),
        "ERR" if lower.starts_with("authentication required") => Some(who.missing()),
        "ERR" if lower.starts_with("invalid password") => Some(who.wrong()),
        "ERR"
            if lower.contains("no password is set")
                || lower.contains("without any password configured") =>
        {
            Some(who.surplus())
        }
        "ERR" if lower.starts_with("this user has no permissions") => {
            Some(who.lacks(detail.trim()))
        }
        _ => None,
    }
}

/// What a script was refused. Redis 7.0 reports a command, key or channel the caller may not
/// use inside a script as a script error naming only the script's digest and line (`The user
/// executing the script can't run this command or subcommand script: <sha>, on
/// @user_script:<line>.`), so the command is read from that line of busmq's own script.
/// Valkey's (and Redis 7.2's) `ACL failure in script: <what>` names the command itself.
pub(crate) fn script_refusal(detail: &str) -> String {
    // The last " script: " is where the server's own suffix begins: Valkey's text has one
    // before.
    let what = detail.rsplit_once(" script: ").map_or(detail, |(what, _)| what).trim();
    let what = what.strip_prefix("ACL failure in script: ").unwrap_or(what);
    let mut what = what.to_string();
    if let Some(what) = what.get_mut(..1) {
        what.make_ascii_lowercase();
    }
    let located = detail.rsplit_once(" script: ").and_then(|(_, rest)| {
        let (sha, rest) = rest.split_once(',')?;
        let line: usize = rest.split_once("@user_script:")?.1.trim_end_matches('.').parse().ok()?;
        let script = scripts().all().into_iter().find(|s| s.sha == sha.trim())?;
        let text = script.body.lines().nth(line.checked_sub(1)?)?;
        let command = ["redis.call('", "chunked('"]
            .iter()
            .find_map(|call| text.split_once(call)?.1.split_once('\'').map(|(c, _)| c));
        Some(match command {
            Some(command) => {
                format!("{} (in script {}, line {line})", command.to_ascii_lowercase(), script.name)
            }
            None => format!("in script {}, line {line}", script.name),
        })
    });
    match located {
        Some(at) => format!("{what}: {at}"),
        None => what,
    }
}

/// The reason when `e` means that the server refused this client's credentials or rights.
pub(crate) fn denial(e: &RedisError, who: Who<'_>) -> Option<String> {
    if e.kind() == ErrorKind::AuthenticationFailed {
        // The redis crate keeps none of the server's words here; see [`connect`] for a better
        // reason.
        return Some(who.wrong());
    }
    if let Some(errors) = e.clone().into_server_errors() {
        for (_, error) in errors.iter() {
            if let Some(reason) = reason_for(error.code(), error.details().unwrap_or(""), who) {
                return Some(reason);
            }
        }
        return None;
    }
    reason_for(e.code().unwrap_or(""), e.detail().unwrap_or(""), who)
}

/// What a call failed with, with refusals of access told apart.
pub(crate) fn classify(e: RedisError, who: Who<'_>) -> CallError {
    match denial(&e, who) {
        Some(reason) => CallError::Denied(reason),
        None => e.into(),
    }
}

/// Opens a multiplexed connection for `client`. A refused `AUTH` (or `HELLO ... AUTH`) becomes
/// [`CallError::Denied`] with the server's own reason: the redis crate reports every refusal of
/// a RESP2 `AUTH` the same way, a wrong password and a password the server does not expect
/// alike, so the refusal is asked for again on a connection of its own.
pub(crate) async fn connect(
    client: &Client,
    config: &AsyncConnectionConfig,
    timeout: Duration,
) -> Result<MultiplexedConnection, CallError> {
    match client.get_multiplexed_async_connection_with_config(config).await {
        Ok(conn) => Ok(conn),
        Err(e) => {
            let info = client.get_connection_info();
            let who = Who::of(info.redis_settings());
            if e.kind() != ErrorKind::AuthenticationFailed {
                if let Some((problem, reason)) = explain_tls(&e, info.addr(), timeout).await {
                    return Err(CallError::Tls(problem, reason));
                }
                return Err(classify(e, who));
            }
            let reason = match tokio::time::timeout(timeout, explain(info, who)).await {
                Ok(Some(reason)) => reason,
                _ => who.wrong(),
            };
            Err(CallError::Denied(reason))
        }
    }
}

/// Sends the `AUTH` of `info` by hand on a connection without credentials, to read what the
/// server says about it. `None` when that says nothing more (or the password now works).
async fn explain(info: &ConnectionInfo, who: Who<'_>) -> Option<String> {
    let settings = info.redis_settings();
    let password = settings.password()?;
    let bare = RedisConnectionInfo::default().set_skip_set_lib_name();
    let client = Client::open(info.clone().set_redis_settings(bare)).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let mut auth = redis::cmd("AUTH");
    if let Some(user) = settings.username() {
        auth.arg(user);
    }
    auth.arg(password);
    match auth.query_async::<redis::Value>(&mut conn).await {
        Ok(_) => None,
        Err(e) => denial(&e, who),
    }
}

/// A queue name no client can use (names have no control characters), for the probes.
const PROBE_QUEUE: &str = "\u{1}access";

/// Commands that need the rights every queue operation needs, and change nothing: a read-only
/// script run by digest on a queue's keys (`EVALSHA` and key rights), and a publication on a
/// queue's notice channel that nobody listens to (channel rights, which ACL users created on
/// Redis 7 lack unless given `&...`). Their answers only matter when they are refusals.
pub(crate) fn probes(layout: &Layout) -> [Cmd; 2] {
    let keys = layout.queue(PROBE_QUEUE);
    let stat = &scripts().stat;
    let mut eval = redis::cmd("EVALSHA");
    eval.arg(&stat.sha).arg(keys.keys.len()).arg(&keys.keys[..]);
    let mut publish = redis::cmd(if layout.is_sharded() { "SPUBLISH" } else { "PUBLISH" });
    publish.arg(&keys.channel).arg("");
    [eval, publish]
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ServerErrorKind;

    fn server(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.to_string(), Some(detail.to_string()))
    }

    #[test]
    fn a_refusal_inside_a_script_names_the_command_of_its_line() {
        let attach = &scripts().attach;
        let line = 1 + attach.body.lines().position(|l| l.contains("redis.call('HSET'")).unwrap();
        let detail = format!(
            "The user executing the script can't run this command or subcommand script: {}, \
             on @user_script:{line}.",
            attach.sha
        );
        let app = Who { user: Some("app"), password: true };
        let reason = denial(&server("ERR", &detail), app).expect("a refusal");
        assert_eq!(
            reason,
            format!(
                "user \"app\" lacks permission: the user executing the script can't run this \
                 command or subcommand: hset (in script attach, line {line})"
            )
        );
        // A script that is not busmq's is named by nothing more than the server says.
        let other = "The user executing the script can't access at least one of the keys \
                     mentioned in the command script: 0123, on @user_script:1.";
        assert!(denial(&server("ERR", other), app).unwrap().ends_with("in the command"));
        // Valkey 8 (and Redis 7.2) word it otherwise.
        let valkey = format!(
            "ACL failure in script: User app has no permissions to run the 'hset' command \
             script: {}, on @user_script:{line}.",
            attach.sha
        );
        let reason = denial(&server("ERR", &valkey), app).expect("a refusal");
        assert!(reason.ends_with(&format!("hset (in script attach, line {line})")), "{reason}");
    }

    #[test]
    fn refusals_are_told_apart_and_say_what_is_wrong() {
        let anonymous = Who { user: None, password: false };
        let app = Who { user: Some("app"), password: true };
        let noauth = server("NOAUTH", "Authentication required.");
        assert_eq!(
            denial(&noauth, anonymous).as_deref(),
            Some("the server requires a password and the URL has none")
        );
        let wrong = server("WRONGPASS", "invalid username-password pair or user is disabled.");
        assert!(denial(&wrong, app).unwrap().contains("user \"app\""));
        let old = server("ERR", "invalid password");
        assert_eq!(denial(&old, anonymous).as_deref(), Some("the password or user name is wrong"));
        let surplus = server(
            "ERR",
            "AUTH <password> called without any password configured for the default user. Are \
             you sure your configuration is correct?",
        );
        assert!(denial(&surplus, anonymous).unwrap().contains("the server has none"));
        let old_surplus = server("ERR", "Client sent AUTH, but no password is set");
        assert!(denial(&old_surplus, anonymous).unwrap().contains("the server has none"));
        let noperm = server("NOPERM", "this user has no permissions to run the 'evalsha' command");
        assert_eq!(
            denial(&noperm, app).as_deref(),
            Some(
                "user \"app\" lacks permission: this user has no permissions to run the 'evalsha' command"
            )
        );
        assert!(denial(&noperm, anonymous).unwrap().starts_with("user \"default\" lacks"));
        // The redis crate's own forms: a refused AUTH, and a refused SELECT with the code gone.
        let auth =
            RedisError::from((ErrorKind::AuthenticationFailed, "Password authentication failed"));
        assert!(denial(&auth, anonymous).unwrap().contains("wrong"));
        let select = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
            "Authentication required.".to_string(),
        ));
        assert!(denial(&select, anonymous).unwrap().contains("has none"));
        for other in [
            server("ERR", "unknown command"),
            server("WRONGTYPE", "Operation against a key holding the wrong kind of value"),
            RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        ] {
            assert_eq!(denial(&other, app), None, "{other}");
        }
    }

    #[test]
    fn probes_use_a_queue_no_client_can_name() {
        assert!(busmq_core::QueueName::new(PROBE_QUEUE).is_err());
        let layout = Layout::new("ns").unwrap();
        let [eval, publish] = probes(&layout);
        let args: Vec<_> = eval.args_iter().collect();
        assert_eq!(args.len(), 3 + 6);
        let channel: Vec<_> = publish.args_iter().collect();
        assert_eq!(channel.len(), 3);
        let [_, sharded] = probes(&layout.sharded());
        assert!(matches!(sharded.args_iter().next(), Some(redis::Arg::Simple(b"SPUBLISH"))));
    }
}
