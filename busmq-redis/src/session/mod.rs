//! The session side of the store: the instances and their connections, the supervisors that
//! keep them up (Sentinel groups and Redis Cluster included), the pub/sub hub, the blocking
//! connections, the access checks, the command set of each server, the placement of names over
//! instances, and the state derived from their health.

pub(crate) mod access;
pub(crate) mod blockers;
pub(crate) mod cluster;
pub(crate) mod commands;
pub(crate) mod conn;
pub(crate) mod fleet;
pub(crate) mod hub;
pub(crate) mod instance;
pub(crate) mod open;
pub(crate) mod placement;
pub(crate) mod sentinel;
pub(crate) mod state;
pub(crate) mod supervisor;
pub(crate) mod tls_failure;
