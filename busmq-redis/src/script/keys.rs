//! The Redis key layout: every key of a queue is `<ns>:{<queue>}:<suffix>`, so all of them
//! share the queue's hash tag (one Redis Cluster slot) and one namespace (SPEC B6).
//!
//! | key / channel            | type    | holds                                                 |
//! |--------------------------|---------|-------------------------------------------------------|
//! | `<ns>:{q}:m`             | hash    | layout version, generation, spec, counters, `u:<key>` metadata |
//! | `<ns>:{q}:p:<k>`         | list    | page `k` of the ready entries (fixed capacity)        |
//! | `<ns>:{q}:loan`          | list    | the head page, renamed for one fast take's MULTI      |
//! | `<ns>:{q}:in`            | list    | the tail page, renamed for one large push's MULTI     |
//! | `<ns>:{q}:r`             | zset    | released / expired entries waiting at the head, by id |
//! | `<ns>:{q}:z`             | zset    | pending batches by visibility deadline (ms)           |
//! | `<ns>:{q}:x`             | hash    | per pending batch, how many entries are unsettled     |
//! | `<ns>:{q}:b:<batch>`     | list    | a pending batch's entries as they were taken          |
//! | `<ns>:{q}:a:<batch>`     | string  | bitmap of a batch's settled entries                   |
//! | `<ns>:{q}:e:<batch>`     | hash    | deadlines of a batch's extended entries, by index     |
//! | `<ns>:{q}:c`             | zset    | consumer leases (`<kind>:<id>` by deadline)           |
//! | `<ns>:{q}:f`             | list    | entries busmq did not write, moved aside (newest 1000) |
//! | `<ns>:{q}:k:<key>`       | string  | producer dedupe key: `<generation>:<id>`, expires after its window |
//! | `<ns>:{q}:h`             | zset    | takeable side entries (a level or an ordering key): score 9 - level, member id + entry |
//! | `<ns>:{q}:hi`            | zset    | every ready side entry (takeable or waiting), by id   |
//! | `<ns>:{q}:kg`            | hash    | ordering key -> id of its entry that is out (the key's gate) |
//! | `<ns>:{q}:kw`            | zset    | entries waiting behind their key: `<key>\0<id><level><entry>`, lexical |
//! | `<ns>:{q}:wk`            | list    | wake tokens for consumers blocked in `BLMPOP`         |
//! | `<ns>:{q}:t`             | hash    | tombstone: closed generations (`g:<gen>`), newest, last id |
//! | `<ns>:{q}:w`             | channel | notices for watchers: `a` (available), `c` (closed)   |
//! | `<ns>:{q}:s`             | channel | the same on Redis Cluster, as a shard channel         |
//! | `<ns>:t:{topic}`         | channel | pub/sub topic                                         |
//! | `<ns>:o:{name}`          | hash    | persisted object: its fields, each as encoded (JSON)  |
//! | `<ns>:o:{name}:v`        | string  | persisted object: the version of its last save        |
//! | `<ns>:placement`         | set     | memberships this instance has been part of            |
//!
//! The meta hash's `v` is the **layout version** ([`LAYOUT_VERSION`], `local LAYOUT` in
//! `lua/lib.lua`): it changes whenever the keys or the entry encoding change in a way an older
//! client could not read or write safely. Version 1 was the layout before the page lists, the
//! pending batches and the quarantine; version 2 is this one. Every script refuses a queue whose
//! meta hash holds another version (`BUSMQLAYOUT <found>`, `Error::UnknownLayout`) before
//! reading or writing anything else of it. (The dedupe keys `k:<key>` came later without a new
//! version: older clients never read them, and they expire by themselves. So did the side
//! entries of priorities and ordering keys, `h`, `hi`, `kg`, `kw` and `wk`: a queue that
//! never uses them has none, and an older client working on a queue that has them would not
//! see them, so mixed versions must not share a queue that uses priorities or ordering keys.)
//!
//! Pending batch names are `<client prefix>.<counter>.<segment>` ([`BatchNames`]): a random
//! prefix per store, so that they never collide between clients or processes, and a counter,
//! so that they are never reused (a settlement from an old incarnation of a queue cannot reach
//! a new batch).
//!
//! A persisted object's two keys (see `lua/object.lua`) share the tag of its name and start with
//! `<ns>:o:`, so they never meet a queue's keys (`<ns>:{...`), a topic (`<ns>:t:`) or the meta
//! pattern of the queue listing, even when a queue and an object have the same name. They carry
//! no layout version: nothing older than this layout wrote objects. The fields hash holds only
//! the object's own fields, so other tools can read it as node busmq's persisted objects are
//! read (one JSON value per field).
//!
//! On Redis Cluster the notification channel ends in `:s` instead of `:w`: the scripts publish
//! on such a channel with SPUBLISH (it lives in the queue's slot, on the queue's node) and on
//! any other with PUBLISH.
//!
//! A name containing `{`, `}` or `%` is percent-encoded inside the braces, so that the hash tag
//! is always exactly the (encoded) name and distinct names never share keys. Listing queues
//! (`ops/list.rs`) scans for the meta hashes ([`Layout::meta_pattern`]) and decodes the tag
//! back into the name ([`Layout::queue_of_meta`]).

use busmq_core::support::random_u64;
use busmq_core::{Error, NameKind};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default namespace (SPEC B6).
pub const DEFAULT_NAMESPACE: &str = "busmq";

/// The layout version this client reads and writes (see the module docs).
pub(crate) const LAYOUT_VERSION: &str = "2";

/// Checks a namespace: non-empty, at most 128 bytes, no control characters and no braces
/// (a brace would change the hash tag of every key).
pub(crate) fn validate_namespace(ns: &str) -> Result<(), Error> {
    let reject = |reason: &str| Error::InvalidName {
        kind: NameKind::Namespace,
        name: ns.to_string(),
        reason: reason.to_string(),
    };
    if ns.is_empty() {
        return Err(reject("it is empty"));
    }
    if ns.len() > 128 {
        return Err(reject("it is longer than 128 bytes"));
    }
    if ns.contains(['{', '}']) {
        return Err(reject("it contains '{' or '}', which would change the Redis hash tag"));
    }
    if ns.chars().any(char::is_control) {
        return Err(reject("it contains a control character"));
    }
    Ok(())
}

fn tag(name: &str) -> Cow<'_, str> {
    if !name.contains(['{', '}', '%']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The name whose tag is `tag`, or `None` when `tag` is not what [`tag`] makes of any name
/// (a raw brace, or a `%` that does not start one of its three escapes).
fn untag(tag: &str) -> Option<Cow<'_, str>> {
    if tag.contains(['{', '}']) {
        return None;
    }
    if !tag.contains('%') {
        return Some(Cow::Borrowed(tag));
    }
    let mut out = String::with_capacity(tag.len());
    let mut rest = tag;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "%25" => '%',
            "%7B" => '{',
            "%7D" => '}',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

/// `text` with the glob characters of `SCAN MATCH` (and of ACL patterns) escaped.
pub(crate) fn glob_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The keys of one queue, in the order the Lua scripts expect them (see `lua/lib.lua`), its
/// notification channel, and the names of its other keys.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    pub(crate) keys: [String; 6],
    pub(crate) channel: String,
    /// `<ns>:{q}:`, which every key of the queue starts with.
    prefix: String,
}

impl QueueKeys {
    fn key(&self, suffix: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + suffix.len());
        k.push_str(&self.prefix);
        k.push_str(suffix);
        k
    }

    /// The meta hash, whose existence means the queue exists.
    pub(crate) fn meta(&self) -> &str {
        &self.keys[0]
    }

    /// The tombstone hash.
    pub(crate) fn tombstone(&self) -> &str {
        &self.keys[1]
    }

    /// The quarantine list (see `lua/lib.lua`), named in reports of foreign data.
    pub(crate) fn quarantine(&self) -> String {
        self.key("f")
    }

    /// Page list `k` of the ready entries.
    pub(crate) fn page(&self, k: u64) -> String {
        self.key(&format!("p:{k}"))
    }

    /// The number of `key` when it is one of this queue's page lists.
    pub(crate) fn page_number(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.prefix)?.strip_prefix("p:")?.parse().ok()
    }

    /// The head page while a fast take holds it (see `lua/lend.lua`).
    pub(crate) fn loan(&self) -> String {
        self.key("loan")
    }

    /// The tail page while a large push appends to it (see `lua/append.lua`).
    pub(crate) fn append_in(&self) -> String {
        self.key("in")
    }

    /// The wake list consumers blocked in `BLMPOP` also block on (see "Side entries" in
    /// `lua/lib.lua`).
    pub(crate) fn wake(&self) -> String {
        self.key("wk")
    }

    /// The entry list of pending batch `batch`.
    pub(crate) fn batch(&self, batch: &str) -> String {
        self.key(&format!("b:{batch}"))
    }
}

/// Names of the pending batches one store creates (see the module docs).
#[derive(Debug)]
pub(crate) struct BatchNames {
    prefix: String,
    next: AtomicU64,
}

impl BatchNames {
    pub(crate) fn new() -> BatchNames {
        BatchNames { prefix: format!("{:x}", random_u64()), next: AtomicU64::new(0) }
    }

    /// A name no batch ever had: the prefix of one reliable take's segments.
    pub(crate) fn next(&self) -> String {
        format!("{}.{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// The batch of segment `segment` of the take named `take` (as `lua/claim.lua` names it).
    pub(crate) fn segment(take: &str, segment: usize) -> String {
        format!("{take}.{segment}")
    }
}

/// Builds keys and channel names under one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    ns: String,
    /// Redis Cluster: notification channels are shard channels.
    sharded: bool,
}

impl Layout {
    pub(crate) fn new(ns: &str) -> Result<Layout, Error> {
        validate_namespace(ns)?;
        Ok(Layout { ns: ns.to_string(), sharded: false })
    }

    /// The layout for a Redis Cluster (see the module docs).
    pub(crate) fn sharded(self) -> Layout {
        Layout { sharded: true, ..self }
    }

    /// Whether notice channels are shard channels (Redis Cluster).
    pub(crate) fn is_sharded(&self) -> bool {
        self.sharded
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.ns
    }

    pub(crate) fn queue(&self, name: &str) -> QueueKeys {
        let prefix = format!("{}:{{{}}}:", self.ns, tag(name));
        let key = |suffix: &str| {
            let mut k = String::with_capacity(prefix.len() + 1);
            k.push_str(&prefix);
            k.push_str(suffix);
            k
        };
        QueueKeys {
            keys: [key("m"), key("t"), key("r"), key("z"), key("x"), key("c")],
            channel: key(if self.sharded { "s" } else { "w" }),
            prefix,
        }
    }

    /// The `SCAN MATCH` pattern of every queue's meta hash under this namespace.
    pub(crate) fn meta_pattern(&self) -> String {
        format!("{}:{{*}}:m", glob_literal(&self.ns))
    }

    /// The name of the queue whose meta hash is `key`, or `None` when `key` is no meta hash of
    /// this namespace (another key the pattern matched, or one busmq did not write).
    pub(crate) fn queue_of_meta<'k>(&self, key: &'k str) -> Option<Cow<'k, str>> {
        let tag = key.strip_prefix(self.ns.as_str())?.strip_prefix(":{")?.strip_suffix("}:m")?;
        untag(tag).filter(|name| !name.is_empty())
    }

    pub(crate) fn topic_channel(&self, topic: &str) -> String {
        format!("{}:t:{{{}}}", self.ns, tag(topic))
    }

    /// The keys of the persisted object `name`: its fields hash and its version.
    pub(crate) fn object(&self, name: &str) -> [String; 2] {
        let hash = format!("{}:o:{{{}}}", self.ns, tag(name));
        let version = format!("{hash}:v");
        [hash, version]
    }

    pub(crate) fn placement_key(&self) -> String {
        format!("{}:placement", self.ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_share_one_hash_tag() {
        let l = Layout::new("busmq").unwrap();
        let q = l.queue("orders");
        assert_eq!(q.meta(), "busmq:{orders}:m");
        assert_eq!(q.keys[5], "busmq:{orders}:c");
        assert_eq!(q.quarantine(), "busmq:{orders}:f");
        assert_eq!(q.page(3), "busmq:{orders}:p:3");
        assert_eq!(q.page_number("busmq:{orders}:p:3"), Some(3));
        assert_eq!(q.page_number("busmq:{other}:p:3"), None);
        assert_eq!(q.page_number("busmq:{orders}:b:3"), None);
        assert_eq!(q.loan(), "busmq:{orders}:loan");
        assert_eq!(q.append_in(), "busmq:{orders}:in");
        assert_eq!(q.batch("ab.1.0"), "busmq:{orders}:b:ab.1.0");
        assert_eq!(q.channel, "busmq:{orders}:w");
        assert_eq!(l.topic_channel("news"), "busmq:t:{news}");
        assert_eq!(l.object("cart"), ["busmq:o:{cart}", "busmq:o:{cart}:v"]);
        assert_eq!(l.queue_of_meta("busmq:o:{cart}:m"), None, "objects are not queues");
        assert_eq!(l.sharded().queue("orders").channel, "busmq:{orders}:s");
    }

    #[test]
    fn braces_in_names_are_encoded_so_the_tag_is_the_whole_name() {
        let l = Layout::new("app").unwrap();
        assert_eq!(l.queue("a}b").meta(), "app:{a%7Db}:m");
        assert_eq!(l.queue("{x}").meta(), "app:{%7Bx%7D}:m");
        assert_eq!(l.queue("100%").meta(), "app:{100%25}:m");
        assert_ne!(l.queue("a%7Db").meta(), l.queue("a}b").meta());
    }

    #[test]
    fn meta_keys_decode_back_to_their_queue_names() {
        let l = Layout::new("app").unwrap();
        for name in ["orders", "a}b", "{x}", "100%", "%7D", "a:{b}:m", "é{%}"] {
            let meta = l.queue(name).meta().to_string();
            assert_eq!(l.queue_of_meta(&meta).as_deref(), Some(name), "{meta}");
        }
        for other in [
            "app:{orders}:t",
            "app:{orders}:p:3",
            "other:{orders}:m",
            "app:{}:m",
            "app:{a}b}:m",
            "app:{a%7}:m",
            "app:{a%41}:m",
            "app:{a%7d}:m",
            "app:{a%}:m",
        ] {
            assert_eq!(l.queue_of_meta(other), None, "{other}");
        }
        assert_eq!(l.meta_pattern(), "app:{*}:m");
        assert_eq!(Layout::new("a*b?[c]\\").unwrap().meta_pattern(), "a\\*b\\?\\[c\\]\\\\:{*}:m");
    }

    #[test]
    fn bad_namespaces_are_rejected() {
        for bad in ["", "a{b", "a}b", "tab\there"] {
            let e = Layout::new(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidName { kind: NameKind::Namespace, .. }), "{bad}");
        }
        assert!(Layout::new("my-app:v1").is_ok());
    }

    #[test]
    fn batch_names_are_never_reused_and_differ_between_stores() {
        let (a, b) = (BatchNames::new(), BatchNames::new());
        let (a1, a2, b1) = (a.next(), a.next(), b.next());
        assert_ne!(a1, a2);
        assert_ne!(a1, b1);
        assert_eq!(BatchNames::segment(&a1, 2), format!("{a1}.2"));
    }
}
