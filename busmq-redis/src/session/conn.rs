//! The script connection of one instance's session: a multiplexed connection to one node, or
//! a cluster connection that routes every command by its key (and follows MOVED/ASK).

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use redis::{ErrorKind, RedisError};
use std::fmt;

#[derive(Clone)]
pub(crate) enum Conn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conn::Node(c) => f.debug_tuple("Node").field(c).finish(),
            Conn::Cluster(_) => f.write_str("Cluster"),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Sends `cmd` to the node that serves `key`: on a cluster the master of its slot, also
    /// for commands the cluster client cannot route by themselves (`SCRIPT LOAD`, `WAIT`); on
    /// one node, that node.
    pub(crate) async fn query_for_key(&mut self, key: &str, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Conn::Node(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                c.route_command(cmd, routing).await
            }
        }
    }

    /// Sends `cmd` to the cluster node at `node` (`host`, `port` as the cluster names it), for
    /// commands that concern one node's keys (`SCAN`); on one node, to that node.
    pub(crate) async fn query_at(
        &mut self,
        node: Option<(&str, u16)>,
        cmd: Cmd,
    ) -> RedisResult<Value> {
        match (self, node) {
            (Conn::Node(c), None) => cmd.query_async(c).await,
            (Conn::Cluster(c), Some((host, port))) => {
                let routing = SingleNodeRoutingInfo::ByAddress { host: host.to_string(), port };
                c.route_command(cmd, RoutingInfo::SingleNode(routing)).await
            }
            _ => Err(RedisError::from((
                ErrorKind::Client,
                "a cluster node was named for a single node, or none for a cluster",
            ))),
        }
    }
}
