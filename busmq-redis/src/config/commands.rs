//! Which Redis commands busmq's fast paths may use: managed providers disable or rename some of
//! them (`rename-command RENAME ""`, also inside Lua), and busmq then keeps to slower paths
//! that avoid them.

/// The command set busmq may assume of the server ([`RedisStoreBuilder::command_set`]).
///
/// The fast at-most-once take (lend.lua and giveback.lua around an `LMPOP`), the append of a
/// large push (append.lua around an `RPUSHX`) and the page segments of a reliable take
/// (claim.lua) move whole pages with `RENAME` or `SORT .. BY nosort LIMIT .. STORE`, so that
/// entries do not pass through Lua. Without those commands the take runs take.lua, the push
/// push.lua and the reliable take claim.lua's Lua segment only: the same results, with the
/// entries copied through Lua (about what busmq cost before the fast paths).
///
/// [`RedisStoreBuilder::command_set`]: crate::RedisStoreBuilder::command_set
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CommandSet {
    /// Ask each instance at every connection (`COMMAND INFO RENAME SORT`, which names neither
    /// where it was disabled or renamed) and use the fast paths only where both exist. Where
    /// `COMMAND INFO` itself is refused, assume [`CommandSet::Restricted`]. The default.
    #[default]
    Auto,
    /// Always use the fast paths, without falling back. A server whose `COMMAND INFO` says it
    /// lacks `RENAME` or `SORT` is refused: `connect` fails with
    /// [`Error::InvalidOption`](busmq_core::Error::InvalidOption) naming `command_set` and
    /// the missing command (a later session, after a failover, reports the same as an event
    /// and keeps retrying). Where `COMMAND INFO` is refused, the setting is trusted; an
    /// operation that then meets a missing command fails with the same error, naming the
    /// command and the script.
    Full,
    /// Never use `RENAME` or `SORT`.
    Restricted,
}

impl CommandSet {
    /// The commands whose absence makes a server restricted, as `COMMAND INFO` names them.
    pub(crate) const PROBED: [&'static str; 2] = ["RENAME", "SORT"];
}
