//! The data operations, as free functions over the lower context ([`call::Ctx`]), one module
//! per family of Lua scripts, and the one call path they all go through (`call.rs`).

pub(crate) mod call;
pub(crate) mod full_claims;
pub(crate) mod list;
pub(crate) mod object;
pub(crate) mod push;
pub(crate) mod quarantine;
pub(crate) mod queue;
pub(crate) mod read;
pub(crate) mod receipt;
pub(crate) mod reliable;
pub(crate) mod schedule;
pub(crate) mod take;
pub(crate) mod topics;
pub(crate) mod wait;
