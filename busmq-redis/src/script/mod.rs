//! The scripts and what crosses into them: the Lua scripts with their digests, the key layout,
//! how entries are stored, how arguments are written and how replies are read.

pub(crate) mod args;
pub(crate) mod assemble;
pub(crate) mod entry;
pub(crate) mod keycache;
pub(crate) mod keys;
pub(crate) mod reply;
pub(crate) mod scripts;
