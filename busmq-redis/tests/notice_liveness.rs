//! The notice lease can go missing under a waiting consumer (deleted, evicted, or lost with a
//! server that restarted empty or a master that failed over before replicating it): a push
//! then publishes nothing, so a reliable consumer or a replay reader that waits for notices
//! must find the push without one. These tests take the lease away under both kinds of waiter
//! and check that what is pushed next is delivered (generous deadlines only, against hangs).

mod common;

use busmq_core::store::Position;
use busmq_core::{Bus, ConsumeOptions, Consumer, Queue, ReliableOptions};
use busmq_testkit::redis::RedisServer;
use common::DEADLINE;
use futures::StreamExt;

async fn bus(server: &RedisServer) -> Bus {
    let store = common::builder([server.url()]).build().expect("valid options");
    let bus = Bus::new(store);
    bus.connect().await.expect("connect");
    bus.wait_online(DEADLINE).await.expect("online");
    bus
}

/// The notice leases of the named queues that exist now.
async fn leases(conn: &mut redis::aio::MultiplexedConnection, names: &[&str]) -> Vec<String> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*:n").query_async(conn).await.unwrap();
    keys.into_iter().filter(|k| names.iter().any(|n| k.contains(n))).collect()
}

/// Waits until both queues hold a notice lease: both consumers took or read short and wait.
async fn until_both_wait(conn: &redis::aio::MultiplexedConnection, names: &[&str]) {
    common::eventually("both consumers to hold a notice lease", || {
        let mut conn = conn.clone();
        async move { (leases(&mut conn, names).await.len() == names.len()).then_some(()) }
    })
    .await;
}

async fn next_body(consumer: &mut Consumer<String>, who: &str) -> String {
    let got = tokio::time::timeout(DEADLINE, consumer.next()).await;
    let delivery = got.unwrap_or_else(|_| panic!("{who}: nothing delivered within 30 s"));
    let delivery = delivery.expect("the stream goes on").expect("decodes");
    let body = delivery.body().clone();
    if who.starts_with("reliable") {
        delivery.ack().await.expect("acknowledged");
    }
    body
}

struct Waiters {
    _buses: [Bus; 2],
    producers: Vec<Queue>,
    reliable: Consumer<String>,
    replay: Consumer<String>,
    names: [String; 2],
}

/// A reliable consumer and a replay reader (each on its own queue, on another bus than the
/// producer), both idle and waiting for notices.
async fn waiters(server: &RedisServer, label: &str) -> Waiters {
    let (producer, consumer) = (bus(server).await, bus(server).await);
    let names = [
        common::queue(&format!("{label}_reliable")).to_string(),
        common::queue(&format!("{label}_replay")).to_string(),
    ];
    let mut producers = Vec::new();
    for name in &names {
        let q = producer.queue(name).unwrap();
        q.attach().await.unwrap();
        producers.push(q);
    }
    let q = consumer.queue(&names[0]).unwrap();
    q.attach().await.unwrap();
    let options = ConsumeOptions::new().reliable(ReliableOptions::default());
    let reliable = q.consume_with::<String>(options).await.unwrap();
    let q = consumer.queue(&names[1]).unwrap();
    q.attach().await.unwrap();
    let replay = q.consume_with::<String>(ConsumeOptions::new().replay(Position::Start)).await;
    let replay = replay.unwrap();
    Waiters { _buses: [producer, consumer], producers, reliable, replay, names }
}

impl Waiters {
    fn names(&self) -> [&str; 2] {
        [&self.names[0], &self.names[1]]
    }

    /// Pushes one message to each queue (retrying while the store comes back) and checks that
    /// both waiters receive it.
    async fn push_and_receive(&mut self, body: &str) {
        for q in &self.producers {
            common::eventually("a push to succeed", || {
                let q = q.clone();
                async move { q.push(&body.to_string()).await.ok() }
            })
            .await;
        }
        assert_eq!(next_body(&mut self.reliable, "reliable consumer").await, body);
        assert_eq!(next_body(&mut self.replay, "replay reader").await, body);
    }
}

/// The lease deleted under both waiters (twice): what is pushed next is delivered anyway (the
/// waiters take or read again on their own, which sets the lease again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_notice_lease_delays_no_message_for_good() {
    let Some(server) = common::server("a_deleted_notice_lease_delays_no_message_for_good").await
    else {
        return;
    };
    let mut conn = common::raw(&server).await;
    let mut w = waiters(&server, "lease_deleted").await;
    w.push_and_receive("first").await;
    for round in 0..2 {
        until_both_wait(&conn, &w.names()).await;
        let gone = leases(&mut conn, &w.names()).await;
        let deleted: u64 = redis::cmd("DEL").arg(&gone).query_async(&mut conn).await.unwrap();
        assert_eq!(deleted, 2, "round {round}: both leases deleted");
        w.push_and_receive(&format!("after deletion {round}")).await;
    }
    until_both_wait(&conn, &w.names()).await;
}

/// The server restarted empty (no persistence) under both waiters: after the reconnection the
/// waiters take or read again, which sets the lease on the new server, and what is pushed
/// there is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_take_the_lease_again_on_a_server_that_restarted_empty() {
    let Some(mut server) =
        common::server("waiters_take_the_lease_again_on_a_server_that_restarted_empty").await
    else {
        return;
    };
    let mut w = waiters(&server, "lease_restart").await;
    w.push_and_receive("before").await;
    let conn = common::raw(&server).await;
    until_both_wait(&conn, &w.names()).await;
    server.restart().await.expect("restart");
    let conn = common::raw(&server).await;
    until_both_wait(&conn, &w.names()).await;
    w.push_and_receive("after").await;
}
