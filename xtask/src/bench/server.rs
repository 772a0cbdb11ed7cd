//! The bench's own redis-server, started through the testkit harness, and the admin connection
//! that reads its INFO (version, `used_memory`, commandstats) and empties it between scenarios.

use super::commands::Commands;
use super::support::Ctx;
use busmq_testkit::redis::RedisServer;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Server {
    process: RedisServer,
    admin: MultiplexedConnection,
}

/// A plain connection for raw commands. Blocking pops wait up to a few seconds on the server,
/// so the client gives them longer than that before it gives up.
pub(crate) async fn connect(url: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).ctx("redis url")?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(10)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    client.get_multiplexed_async_connection_with_config(&config).await.ctx("connecting to redis")
}

impl Server {
    pub(crate) async fn start() -> Result<Server, String> {
        let process = RedisServer::builder().start().await.ctx("starting redis-server")?;
        let admin = connect(&process.url()).await?;
        Ok(Server { process, admin })
    }

    pub(crate) fn url(&self) -> String {
        self.process.url()
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    async fn info(&self, section: &str) -> Result<String, String> {
        let mut conn = self.admin.clone();
        redis::cmd("INFO").arg(section).query_async(&mut conn).await.ctx("INFO")
    }

    fn field(info: &str, name: &str) -> Option<String> {
        info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(|v| v.trim().into())
    }

    pub(crate) async fn version(&self) -> Result<String, String> {
        let info = self.info("server").await?;
        Self::field(&info, "redis_version").ok_or_else(|| "INFO server has no version".into())
    }

    pub(crate) async fn used_memory(&self) -> Result<u64, String> {
        let info = self.info("memory").await?;
        Self::field(&info, "used_memory")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "INFO memory has no used_memory".into())
    }

    pub(crate) async fn commands(&self) -> Result<Commands, String> {
        Ok(Commands::parse(&self.info("commandstats").await?))
    }

    pub(crate) async fn flushall(&self) -> Result<(), String> {
        let mut conn = self.admin.clone();
        redis::cmd("FLUSHALL").arg("SYNC").query_async::<()>(&mut conn).await.ctx("FLUSHALL")
    }
}
