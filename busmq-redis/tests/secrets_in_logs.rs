//! Passwords never reach the logs (SPEC S3, O1): everything busmq and the redis driver log
//! (busmq's spans and events, the driver's `log` records, all at TRACE) is captured while a
//! bus connects with a wrong password and then with the right one, works (push, reliable
//! consume, ack, nack, reject), loses its scripts and its server, and comes back. Neither
//! password appears in the capture; the instance identity does, so the capture is not empty.

mod common;

use busmq_core::{Bus, BusEvent, BusState, ConsumeOptions, Error, EventStream, ReliableOptions};
use busmq_redis::RedisStore;
use busmq_testkit::redis::{RedisServer, require_or_skip};
use futures::StreamExt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

const RIGHT: &str = "r1ght-Pa55word-7f3a";
const WRONG: &str = "wr0ng-Pa55word-c91e";

/// Everything written by the subscriber, shared with the test.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&busmq_core::support::lock(&self.0)).into_owned()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        busmq_core::support::lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

fn store(url: String) -> RedisStore {
    common::builder([url]).connect_timeout(Duration::from_secs(2)).build().expect("valid url")
}

/// Waits for the bus event `wanted` (from events subscribed before the change, so that an
/// outage shorter than a poll is still seen).
async fn wait_for(events: &mut EventStream<BusEvent>, wanted: BusEvent) {
    let found = tokio::time::timeout(common::DEADLINE, async {
        loop {
            match events.next().await {
                Some(event)
                    if std::mem::discriminant(&event) == std::mem::discriminant(&wanted) =>
                {
                    return;
                }
                Some(_) => continue,
                None => panic!("the bus event stream ended"),
            }
        }
    });
    found.await.unwrap_or_else(|_| panic!("no {wanted:?} event within the deadline"));
}

/// What a working bus logs: attach, pushes, a reliable consumer, ack, nack, reject.
async fn work(bus: &Bus) {
    let queue = bus.queue(common::queue("secrets").as_str()).expect("queue");
    queue.attach().await.expect("attach");
    for n in 0..3 {
        queue.push(&n).await.expect("push");
    }
    let options = ConsumeOptions::new().reliable(ReliableOptions::default()).max(4);
    let mut consumer = queue.consume_with::<u32>(options).await.expect("consume");
    let first = consumer.next().await.expect("a delivery").expect("decodes");
    first.ack().await.expect("ack");
    let second = consumer.next().await.expect("a delivery").expect("decodes");
    second.nack().await.expect("nack");
    let again = consumer.next().await.expect("a delivery").expect("decodes");
    again.reject("for the log").await.expect("reject");
    let redelivered = consumer.next().await.expect("a delivery").expect("decodes");
    assert_eq!(redelivered.deliveries(), 2, "the nacked message comes back");
    redelivered.ack().await.expect("ack");
    queue.detach().await.expect("detach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_appears_in_anything_logged() {
    if require_or_skip("no_password_appears_in_anything_logged").is_none() {
        return;
    }
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_writer(capture.clone())
        .try_init()
        .expect("the only subscriber of this test binary");
    let mut server = RedisServer::builder().password(RIGHT).start().await.expect("redis starts");
    let port = server.port();

    let wrong = Bus::new(store(format!("redis://:{WRONG}@127.0.0.1:{port}")));
    let refused = wrong.connect().await.expect_err("a wrong password cannot connect");
    assert!(matches!(refused, Error::AccessDenied { .. }), "{refused:?}");

    let bus = Bus::new(store(server.url()));
    assert!(server.url().contains(RIGHT), "the URL carries the password");
    assert_eq!(bus.connect().await.expect("connect"), BusState::Online);
    work(&bus).await;

    // The script cache is flushed: the next call reloads the scripts (and logs that).
    let mut admin = common::raw(&server).await;
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut admin).await.expect("flush");
    drop(admin);
    work(&bus).await;

    // The server goes away and comes back: the supervisor logs the outage and the return.
    let mut events = bus.events();
    server.restart().await.expect("restart");
    wait_for(&mut events, BusEvent::Offline).await;
    wait_for(&mut events, BusEvent::Online).await;
    work(&bus).await;
    bus.disconnect().await.expect("disconnect");

    let logged = capture.text();
    let identity = format!("127.0.0.1:{port}/0");
    assert!(logged.contains(&identity), "instances are named by identity:\n{logged}");
    let expected =
        ["bus online", "reconnected to redis", "NOSCRIPT", "dead-lettered", "redelivery"];
    for expected in expected {
        assert!(logged.contains(expected), "{expected:?} was not logged:\n{logged}");
    }
    for secret in [RIGHT, WRONG] {
        let leaks: Vec<&str> = logged.lines().filter(|line| line.contains(secret)).collect();
        assert!(leaks.is_empty(), "a password was logged:\n{}", leaks.join("\n"));
    }
}
