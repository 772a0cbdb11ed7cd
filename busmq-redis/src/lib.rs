//! busmq-redis: the busmq [`Store`](busmq_core::Store) over Redis (plain instances, Sentinel
//! groups, or a Redis Cluster).
//!
//! ```no_run
//! # async fn example() -> busmq_core::Result<()> {
//! use busmq_core::store::Session;
//! use busmq_redis::RedisStore;
//! let store = RedisStore::builder()
//!     .urls(["redis://127.0.0.1:6379", "redis://127.0.0.1:6380"])
//!     .namespace("myapp")
//!     .build()?; // checks URLs and options; does not connect
//! let state = store.connect().await?;
//! # let _ = state;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! * **One atomic operation per store method**: one Lua script (`lua/<op>.lua` after the
//!   helpers of `lua/lib.lua` it uses), or one MULTI around scripts where entries should not
//!   pass through Lua (the fast take, large pushes, reliable takes), all called by digest with
//!   EVALSHA. Scripts are loaded on every (re)connection, and a NOSCRIPT answer makes the call
//!   load them where the queue lives and try once more.
//! * **Keys**: every key of a queue is `<ns>:{<queue>}:<suffix>` (one hash tag, so every script
//!   also runs on Redis Cluster). The ready messages are *page lists* of a fixed capacity
//!   (`page_size`, default 4096): positions map to pages by arithmetic, so a replay read at any
//!   position costs O(log n + max), while pushes and pops stay plain list operations. See
//!   `script/keys.rs` for the full layout and its version, and `script/entry.rs` for the entry
//!   encoding (`<id>:<deliveries>:<attr length>:<attrs><payload>`, ~21 bytes of overhead;
//!   the attrs, JSON dead-letter information and message headers, are empty for a message
//!   that has neither, so headers cost nothing where they are not used). A
//!   queue stored in a layout version this client does not know is refused with
//!   `Error::UnknownLayout`, and nothing of it is read or written.
//! * **Batching**: a push batch is one script call, a take returns up to `max` entries, a
//!   settle handles many acknowledgements; nothing costs a round trip per message. Moving data
//!   through Lua costs per entry, so the hot paths avoid touching entries in Lua: a push
//!   proposes its ids (`max(the producer's newest id + 1, clock)`), and the script appends
//!   the entries as they are when the proposal is above the queue's last id and within a
//!   second of the server clock (else it assigns `max(last + 1, now)` itself); an at-most-once
//!   take returns the lists as Redis read them. Reliable takes record one pending *batch* (one
//!   zset member with the visibility deadline) per take instead of one per entry; each
//!   delivery's receipt names its batch and index, and comes back with its settlement, so the
//!   client keeps no table of its deliveries.
//! * **Priorities and ordering keys** (SPEC P11, P12): entries pushed with a level above 0 or
//!   an ordering key are *side entries* in sorted sets next to the pages (`h`, takeable, by
//!   level then id; `hi`, every ready one, by id), with one gate per key (`kg`) and the entries
//!   waiting behind it (`kw`); takes merge them with the pages, reads by id. A queue that never
//!   uses them has none of these keys and keeps every fast path above. See "Side entries" in
//!   `lua/lib.lua`.
//! * **Wake-ups** use pub/sub: every restore/release publishes one notice per batch on the
//!   queue's channel, and so does every push while the queue's notice lease `<ns>:{q}:n` exists
//!   (set for 30 s by a take or read that came back short: someone waits for a notice; see
//!   `lua/lib.lua`). A lease lost with its server (a restart, a failover before it was
//!   replicated) is set again by the waiters' take after the reconnection's `Notice::Reset`;
//!   one deleted behind a connected client, by their next idle take (5 s at most); each instance has one pub/sub connection shared (reference counted) by all
//!   watchers and topic subscribers. [`Store::take`](busmq_core::Store::take)
//!   never blocks. An idle at-most-once consumer may instead wait in Redis through the
//!   [`BlockingTake`](busmq_core::store::BlockingTake) capability: `BLMPOP` on the page the
//!   next push appends to, on a connection it holds for the wait (fixed addresses only, and
//!   not with `replicas_ack`), and on the queue's wake list `<ns>:{q}:wk`, where scripts drop
//!   a token when an entry becomes takeable outside the pages or a schedule moves the earliest
//!   due time earlier.
//! * **Connections**: per instance one multiplexed connection for scripts (with a response
//!   timeout, default 5 s: no call waits forever), one pub/sub connection, and for fixed
//!   addresses a bb8 pool of up to 64 connections without response timeout for blocking pops
//!   (the server-side block time bounds them; a cancelled wait is ended with `CLIENT
//!   UNBLOCK`). A supervisor per instance pings it, and on failure reconnects with exponential
//!   backoff and full jitter; while an instance is down its calls fail at once with
//!   `Offline`, and outside `connect` .. `disconnect` every call fails with `NotConnected`.
//! * **Access**: a session starts with PING, and its first pipeline carries probes that need
//!   the ACL rights queue operations need (`EVALSHA`, the namespace's keys and channels), so
//!   a missing or wrong password and a missing right are found before anything else is sent.
//!   [`Session::connect`](busmq_core::store::Session::connect) returns them as
//!   `Error::AccessDenied` and leaves the store disconnected. Once connected, a reconnection refused this way is retried
//!   with backoff (the server's side may be fixed) and reported once per outage. A right
//!   refused later (a command inside a script included: the reason names it) is the same
//!   error from the call that needed it. [`acl::rules`] gives the least-privilege rules of a
//!   namespace's user: its keys `~<ns>:*`, its channels `&<ns>:*` and the commands busmq sends,
//!   per feature in the [`acl`] module docs.
//! * **State**: `Online` when every instance answers (and has its scripts), `Degraded { down }`
//!   when some do not, `Offline` when none do; the current one in a `watch`, and one event per
//!   real transition. After a reconnection every live channel is subscribed again once on the
//!   new connection (no duplicates) and every watcher receives `Notice::Reset`.
//!
//! # Placement over several plain instances
//!
//! * Each instance has a stable identity: `host:port/db` (lowercase host; default port 6379,
//!   default db 0) or `unix:<path>/db`. Credentials, TLS and the order of the URLs do not
//!   matter.
//! * A queue or topic name belongs to the instance with the highest weight
//!   `splitmix64(fnv1a64(identity ++ 0x00 ++ name))` (rendezvous hashing): names spread
//!   evenly, and adding an instance moves only the names it wins (about `1/n`).
//! * Every client records its membership (the sorted identities) in the set
//!   `<ns>:placement` on each instance when it connects. When an instance learns of an older
//!   membership, a queue created under it may still live on that membership's winner: the
//!   first operation on a queue name then asks only those older winners (usually one or two
//!   instances) whether the queue exists, and caches the answer. With a single membership (the
//!   usual case) there is no lookup at all. Queues are created only on their current winner,
//!   never on an older one; when an old queue expires or is closed, its name moves to the
//!   current winner.
//! * An instance that is down is never replaced: operations on its queues fail with
//!   `Error::Offline` until it comes back (no split brain). If a possible older holder of a
//!   not-yet-located queue is down, operations on that queue fail with `Offline` too.
//! * Topics (pub/sub) are not stored, so they always go to the current winner of the topic
//!   name. All clients of a namespace should be configured with the same instances.
//!
//! # Sentinel
//!
//! An instance can also be a Sentinel-managed master group, given as a URL or to the builder:
//!
//! ```no_run
//! # fn example() -> busmq_core::Result<()> {
//! use busmq_redis::RedisStore;
//! use std::time::Duration;
//! // The data nodes' password before '@', the sentinels' own as a parameter.
//! let a = RedisStore::open(
//!     "redis+sentinel://:data-pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/0?sentinel_password=s-pw",
//! )?;
//! // The same with the builder; several groups shard like several plain instances.
//! let b = RedisStore::builder()
//!     .sentinel(["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"], "shard-a")
//!     .sentinel(["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"], "shard-b")
//!     .sentinel_password("s-pw")
//!     .data_password("data-pw")
//!     .replicas_ack(1, Duration::from_millis(500)) // optional: pushes wait for a replica
//!     .build()?;
//! # let _ = (a, b);
//! # Ok(())
//! # }
//! ```
//!
//! * A group's placement identity is `sentinel:<master name>/<db>`: a failover moves nothing.
//! * Every session starts by asking all sentinels (`SENTINEL MASTER`) and following the one
//!   with the newest `config-epoch`, then checks `ROLE` on that node; a node that is not the
//!   master is not used.
//! * The session ends, and the next one resolves again, when the connection is lost or a ping
//!   times out, when a call is answered `READONLY` (the master was demoted behind the bus's
//!   back), or when the sentinels name another master: a background task per group listens
//!   to `+switch-master` on one sentinel at a time and polls `get-master-addr-by-name` every
//!   ping interval, and a reconnection waiting for its backoff is woken at once.
//! * The new session loads the scripts, subscribes every channel again and sends
//!   `Notice::Reset` to every watcher, so busmq-core renews its queues (re-creating one a
//!   failover lost) and consumers look again. The state goes `Offline` (or `Degraded`) and back
//!   to `Online` once per transition.
//!
//! # Redis Cluster
//!
//! A Redis Cluster (Redis 7 or newer) can be the store's one instance, given by a few seed
//! nodes:
//!
//! ```no_run
//! # fn example() -> busmq_core::Result<()> {
//! use busmq_redis::RedisStore;
//! let a = RedisStore::open("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000")?;
//! let b = RedisStore::builder().cluster(["10.0.0.1:7000", "10.0.0.2:7000"]).build()?;
//! # let _ = (a, b);
//! # Ok(())
//! # }
//! ```
//!
//! * The redis crate's cluster client discovers the slots, routes each script by the queue's
//!   hash tag (all keys of a queue are in one slot) and follows `MOVED`/`ASK`; a `NOSCRIPT`
//!   answer (a master promoted after a failover) loads the script on the master of the queue's
//!   slot and tries once more. The placement identity is `cluster:<sorted seeds>`.
//! * Pub/sub is sharded: the scripts `SPUBLISH` on `<ns>:{<queue>}:s` (a channel in the
//!   queue's slot) and watchers and topics `SSUBSCRIBE` on the owning node, so nothing is
//!   broadcast to every node. A slot move (`sunsubscribe` from the old owner) or a lost node
//!   marks the subscriptions for repair: every live channel is subscribed again on its current
//!   owner, then every watcher gets `Notice::Reset`.
//! * Scripts and subscriptions use two cluster connections (scripts over RESP2, shard
//!   subscriptions over RESP3): the redis crate would take an unsolicited `sunsubscribe` for
//!   the reply of a script in flight on a shared connection.
//! * The session stays up while at least one master answers: calls on the slots of a failed
//!   master fail (retryably) until its replica takes over.
//! * [`RedisStoreBuilder::replicas_ack`] sends `WAIT` after the script on the connection to the
//!   slot's master (a cluster pipeline does not follow redirections). A promoted replica has
//!   no replica until one rejoins, and such pushes fail retryably until then.
//! * A queue's keys must move between nodes together (the scripts use page lists that are not
//!   declared keys): move a slot's keys in one `MIGRATE`, or give `redis-cli --cluster
//!   reshard` a `--cluster-pipeline` above the number of keys of the largest queue.
//!
//! # Guarantees under failure
//!
//! Redis replication is asynchronous: the master acknowledges a write before any replica has
//! it, so a failover can lose the last acknowledged pushes (and the last takes and acks, which
//! brings messages back: duplicates in at-most-once mode, redeliveries in reliable mode).
//! [`RedisStoreBuilder::replicas_ack`] closes that gap for pushes and at-most-once takes: each
//! is followed by `WAIT n timeout` on the same connection, and fails (retryably) when fewer
//! replicas confirmed it. The README's "Guarantees under failure" states what each mode
//! guarantees under each fault, with the figures of `cargo xtask chaos`, which checks them.
//!
//! # Layout
//!
//! * `store.rs`: [`RedisStore`], the handle, and the store traits over it; delegation only.
//! * `ops/`: the data operations as functions over one context, one module per family of Lua
//!   scripts (`queue`: attach .. metadata; `push`: push.lua, append.lua; `take`: take.lua and
//!   the lend/giveback MULTI; `reliable`: claim.lua, settle.lua; `wait`: the blocking take;
//!   `read`; `topics`: watch, publish, subscribe; `quarantine`: entries busmq did not write;
//!   `list`: the [`Inspect`](busmq_core::store::Inspect) listing of queues, `SCAN` steps over
//!   every instance and every Cluster master, never `KEYS`), and `call.rs`, the one call
//!   path: routing, scripts by digest and their reload on NOSCRIPT, replica `WAIT`, reply
//!   parsing.
//! * `session/`: the instances and their connections (`instance`, `open`, `conn`), the
//!   supervisors (`supervisor`, reporting through a narrow hook to `fleet`, which connects and
//!   disconnects them all), `sentinel`, `cluster`, the pub/sub `hub`, the blocking-connection
//!   pools (`blockers`), `access` checks, `placement` and `state`.
//! * `config/`: the builder, the settings, the instances as configured (`endpoint`) and the
//!   URL forms (`url/`: plain, `hosts` shared pieces, `cluster`, `sentinel`).
//! * `script/`: the scripts and their digests, `keys` (every key name, the layout version,
//!   batch names), `entry` encoding, `args` encoding and `reply` parsing.
//! * `acl.rs`: the ACL rules of a namespace's user, public.
//! * `errors.rs` translates a failed call (`fault.rs`) into busmq's `Error`.

pub mod acl;
mod config;
mod errors;
mod fault;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod ops;
mod script;
mod session;
mod store;

pub use config::builder::{PAGE_SIZE_RANGE, RedisStoreBuilder};
pub use config::commands::CommandSet;
pub use script::keys::DEFAULT_NAMESPACE;
pub use store::RedisStore;
