//! Configuration: the builder and its checks, the command set, the URL forms, the instances
//! they describe and the settings every part of a store shares (TLS included). Nothing here
//! connects.

pub(crate) mod builder;
pub(crate) mod commands;
pub(crate) mod endpoint;
pub(crate) mod settings;
pub(crate) mod tls;
pub(crate) mod url;
