//! The `redis-acl` row of `cargo xtask conformance` (SPEC S2): every case as a user with exactly
//! the rules of `busmq_redis::acl::rules`, and afterwards no refusal in the server's `ACL LOG`,
//! so that a command busmq sends without its right fails the row even where busmq ignores the
//! refusal (as it does for `CLIENT UNBLOCK`).

use busmq_redis::acl::{Deployment, rule_line};
use busmq_testkit::redis::{RedisServer, RedisServerBuilder};
use busmq_testkit::{Backend, FnBackend, SharedServers};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The row's name.
pub(super) const ROW: &str = "redis-acl";

const USER: &str = "busmq-acl";
const PASSWORD: &str = "acl-pw";
/// The cases put all their queues, topics and objects in the store's namespace: this one.
const NAMESPACE: &str = "busmq-acl";

/// The redis crate's greeting, which it sends whatever the rights and whose refusal it ignores;
/// Redis 7.0 does not know it, later versions log the refusal.
const IGNORED: &[&str] = &["client|setinfo"];

static SERVER: OnceLock<Option<SharedServers>> = OnceLock::new();

/// A server whose default user has a password the row never uses, and the row's user.
fn server() -> RedisServerBuilder {
    let rules = rule_line(NAMESPACE, Deployment::Plain);
    RedisServer::builder()
        .password("acl-admin-pw")
        .config(format!("user {USER} on >{PASSWORD} {rules}"))
}

/// The row: stores connecting as the row's user, in its namespace.
pub(super) fn backend(model_cases: u32) -> Arc<dyn Backend> {
    let servers = SharedServers::get_with(1, &SERVER, server);
    let missing = servers.is_none().then(|| "redis-server is not installed".to_string());
    let backend = FnBackend::new(ROW, move || {
        let admin_url = &servers.expect("available").urls()[0];
        let port = admin_url.rsplit(':').next().expect("a port");
        let url = format!("redis://{USER}:{PASSWORD}@127.0.0.1:{port}");
        let store = busmq_redis::RedisStore::builder().url(url).namespace(NAMESPACE).build();
        Arc::new(store.expect("valid url")) as _
    });
    Arc::new(backend.model_cases(model_cases).unavailable_because(missing))
}

/// Adds one failure per refusal the server logged for the row's user (none expected).
pub(super) fn check_refusals(failed: &mut Vec<String>) {
    let Some(Some(servers)) = SERVER.get() else {
        return;
    };
    let log = redis::Client::open(servers.urls()[0].as_str())
        .and_then(|client| client.get_connection())
        .and_then(|mut conn| {
            redis::cmd("ACL")
                .arg("LOG")
                .arg(1000)
                .query::<Vec<HashMap<String, redis::Value>>>(&mut conn)
        });
    let entries = match log {
        Ok(entries) => entries,
        Err(e) => {
            failed.push(format!("ACL LOG could not be read: {e}"));
            return;
        }
    };
    let text = |entry: &HashMap<String, redis::Value>, field: &str| {
        entry
            .get(field)
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            .unwrap_or_default()
    };
    for entry in &entries {
        let object = text(entry, "object");
        if IGNORED.contains(&object.as_str()) {
            continue;
        }
        failed.push(format!(
            "ACL LOG: {} refused ({} {object:?}, {})",
            text(entry, "username"),
            text(entry, "reason"),
            text(entry, "context")
        ));
    }
}
