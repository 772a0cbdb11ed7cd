//! Least-privilege Redis ACL rules for one namespace (SPEC S2): the key and channel patterns and
//! the command set busmq sends, ready for `ACL SETUSER` or a `user` line of `redis.conf`.
//!
//! Redis checks the commands a script calls against the caller's rights too, so the set holds
//! every command of `lua/*.lua` besides the ones the client sends itself. Keep
//! [`COMMANDS`] in step with the scripts and with `redis::cmd` calls: the `redis-acl` row of
//! `cargo xtask conformance` runs every case as a user with exactly these rules, so a command
//! added without its right fails there.
//!
//! Per feature (all of them on the namespace's keys `~<ns>:*`):
//!
//! * every session: `PING`, `SCRIPT LOAD`, `EVALSHA`, `SADD`/`SMEMBERS` on `<ns>:placement`,
//!   `SELECT` when the URL names a database other than 0, `COMMAND INFO` (whether the server
//!   has `RENAME` and `SORT`, see [`CommandSet`](crate::CommandSet); without the right busmq
//!   assumes not, and keeps to the slower paths). (The redis crate greets a server with
//!   `CLIENT SETINFO` and ignores a refusal; Redis 7.0 does not know the command, so it is not
//!   in the set. On 7.2 and later `+client|setinfo` keeps the refusals out of `ACL LOG`.)
//! * queues, reliable consumers, replay, dead letters, channels, services and persisted objects
//!   (all built from the scripts): `EVALSHA` and the commands the scripts call, from
//!   `BITFIELD` to `ZSCORE`, among them `RENAME` and `SORT .. STORE` (the fast paths; not
//!   used with [`CommandSet::Restricted`](crate::CommandSet::Restricted)) and `TIME`;
//!   `MULTI`/`EXEC` around the fast push and take, with `RPUSHX`, `LMPOP` and `LRANGE`;
//! * notices and watchers: `SUBSCRIBE`/`UNSUBSCRIBE`/`PUBLISH` on `<ns>:{<queue>}:w` (on a
//!   Cluster `SSUBSCRIBE`/`SUNSUBSCRIBE`/`SPUBLISH` on `<ns>:{<queue>}:s`), `HGET` of the
//!   tombstone;
//! * pub/sub topics: the same commands on `<ns>:t:{<topic>}`;
//! * blocking takes: `CLIENT ID`, `BLMPOP`, and `CLIENT UNBLOCK` to end a block early (see
//!   below);
//! * listing queues (the CLI's `ls`, `stat`, `peek`, `tail`): `SCAN ... MATCH <ns>:*`;
//! * `replicas_ack`: `WAIT`; on a Cluster, `EXISTS` on a queue's key refreshes the slot map;
//! * [`Deployment::Sentinel`]: `ROLE` on the data nodes (the sentinels have ACLs of their own);
//! * [`Deployment::Cluster`]: `CLUSTER SLOTS`.
//!
//! Two of these are in Redis's `@dangerous` category and are worth knowing about. `CLIENT
//! UNBLOCK` can end any client's blocking call, not only this user's; without it a consumer
//! that stops while blocked waits for the block (at most a few seconds) to end, and nothing
//! else changes. `ROLE` reveals the replication topology. `SCAN` is not filtered by the key
//! patterns: a user can see (not read) the key names, and so the queue names, of every
//! namespace on the instance.

use crate::script::keys::glob_literal;

/// The kind of deployment a user connects to: each needs a few commands of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Deployment {
    /// One or several plain instances.
    #[default]
    Plain,
    /// The data nodes of a Sentinel-managed master group.
    Sentinel,
    /// A Redis Cluster (7 or newer).
    Cluster,
}

/// The commands every deployment needs, in `ACL SETUSER` form (`command|subcommand`).
pub const COMMANDS: &[&str] = &[
    // The client's own commands.
    "ping",
    "select",
    "client|id",
    "client|unblock",
    "script|load",
    "command|info",
    "evalsha",
    "multi",
    "exec",
    "blmpop",
    "lmpop",
    "rpushx",
    "lrange",
    "exists",
    "hget",
    "sadd",
    "smembers",
    "scan",
    "wait",
    // The commands the scripts call.
    "bitfield",
    "del",
    "get",
    "getbit",
    "hdel",
    "hexists",
    "hgetall",
    "hincrby",
    "hmget",
    "hset",
    "hsetnx",
    "hvals",
    "lindex",
    "llen",
    "lpop",
    "lpush",
    "ltrim",
    "pexpire",
    "pexpireat",
    "pexpiretime",
    "rename",
    "rpush",
    "set",
    "setbit",
    "sort",
    "time",
    "unlink",
    "zadd",
    "zcard",
    "zcount",
    "zrange",
    "zrangebylex",
    "zrangebyscore",
    "zrem",
    "zremrangebyrank",
    "zremrangebyscore",
    "zscore",
];

/// The pub/sub commands of plain instances and Sentinel data nodes.
pub const PUBSUB_COMMANDS: &[&str] = &["publish", "subscribe", "unsubscribe"];

/// The pub/sub commands of a Redis Cluster (shard channels).
pub const CLUSTER_PUBSUB_COMMANDS: &[&str] = &["spublish", "ssubscribe", "sunsubscribe"];

/// The ACL rules of a user that may run busmq in `namespace` on `deployment` and do nothing
/// else: one item per `ACL SETUSER` argument (a namespace may contain spaces), to follow
/// `ACL SETUSER <name> on ><password>`. They start with `resetkeys resetchannels -@all`, so
/// they replace whatever the user had.
///
/// The patterns are `~<namespace>:*` and `&<namespace>:*`, so they also cover every namespace
/// that starts with `<namespace>:`: the user of `tenant` can reach the keys of `tenant:b`. Give
/// users on one instance namespaces where none is another's prefix followed by `:` (for
/// example `tenant-a` and `tenant-b`, not `tenant` and `tenant:b`).
///
/// ```
/// use busmq_redis::acl::{Deployment, rules};
/// let rules = rules("busmq", Deployment::Plain);
/// assert_eq!(&rules[..5], ["resetkeys", "resetchannels", "~busmq:*", "&busmq:*", "-@all"]);
/// assert!(rules.contains(&"+evalsha".to_string()));
/// ```
pub fn rules(namespace: &str, deployment: Deployment) -> Vec<String> {
    let prefix = glob_literal(namespace);
    let mut out = vec![
        "resetkeys".to_string(),
        "resetchannels".to_string(),
        format!("~{prefix}:*"),
        format!("&{prefix}:*"),
        "-@all".to_string(),
    ];
    let pubsub = match deployment {
        Deployment::Cluster => CLUSTER_PUBSUB_COMMANDS,
        Deployment::Plain | Deployment::Sentinel => PUBSUB_COMMANDS,
    };
    let extra: &[&str] = match deployment {
        Deployment::Plain => &[],
        Deployment::Sentinel => &["role"],
        Deployment::Cluster => &["cluster|slots"],
    };
    out.extend(COMMANDS.iter().chain(pubsub).chain(extra).map(|c| format!("+{c}")));
    out
}

/// [`rules`] as one line, for `redis-cli` or a `user` line of `redis.conf`. A namespace with
/// white space in it cannot be written so: use [`rules`], one argument each, for that.
///
/// ```
/// use busmq_redis::acl::{Deployment, rule_line};
/// let line = rule_line("app1", Deployment::Plain);
/// assert!(line.starts_with("resetkeys resetchannels ~app1:* &app1:* -@all +ping "));
/// ```
pub fn rule_line(namespace: &str, deployment: Deployment) -> String {
    rules(namespace, deployment).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_of_a_namespace_are_matched_literally() {
        let rules = rules("a*b?[c]\\", Deployment::Plain);
        assert_eq!(rules[2], "~a\\*b\\?\\[c\\]\\\\:*");
        assert_eq!(rules[3], "&a\\*b\\?\\[c\\]\\\\:*");
    }

    #[test]
    fn each_deployment_gets_its_own_pubsub_and_discovery_commands() {
        let plain = rules("ns", Deployment::Plain);
        let cluster = rules("ns", Deployment::Cluster);
        let sentinel = rules("ns", Deployment::Sentinel);
        assert!(plain.contains(&"+subscribe".into()) && !plain.contains(&"+ssubscribe".into()));
        assert!(
            cluster.contains(&"+ssubscribe".into()) && cluster.contains(&"+cluster|slots".into())
        );
        assert!(!cluster.contains(&"+publish".into()));
        assert!(sentinel.contains(&"+role".into()) && !plain.contains(&"+role".into()));
    }

    #[test]
    fn docs_show_the_rules_as_they_are() {
        let docs = include_str!("../../docs/redis.md");
        let line = rule_line("busmq", Deployment::Plain);
        assert!(docs.contains(&line), "docs/redis.md shows other ACL rules than:\n{line}");
    }
}
