//! Request/reply service cases (SPEC P2): serving, competing servers, a server that dies,
//! partial and streamed replies, graceful stop and `max`. Failures (no server, deadlines,
//! handler errors, undecodable replies, late replies) are in `service_failures.rs`.

use crate::backend::Backend;
use crate::support::{DEADLINE, bus, eventually, faulty_bus, next, unique, within};
use busmq_core::{Bus, Error, RequestOptions, ServeOptions, Service};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
struct Hello {
    hello: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
struct Hi {
    hi: String,
}

/// Request options with the suite's deadline: the cases that do not test deadlines must not
/// fail on a slow machine.
pub(crate) fn patient() -> RequestOptions {
    RequestOptions::new().timeout(DEADLINE)
}

/// A service of a fresh bus under a unique name, and the name.
pub(crate) async fn service(backend: &dyn Backend, label: &str) -> (Bus, Service, String) {
    let name = unique(label);
    let b = bus(backend).await;
    let service = b.service(&name).unwrap();
    (b, service, name)
}

/// P2 (node test 29): a server receives the request with its id and body, and the requester
/// gets the reply.
pub async fn service_serves_a_request(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "serve").await;
    let mut server = served.serve::<Hello>(ServeOptions::new()).await.unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    assert_eq!(requester.name(), name);
    let asked = tokio::spawn(async move {
        let hello = Hello { hello: "world".into() };
        requester.request::<_, Hi>(&hello, patient()).await
    });
    let request = next(&mut server, "the request").await.unwrap();
    assert_eq!(request.body(), &Hello { hello: "world".into() });
    assert!(!request.id().is_empty());
    assert_eq!(request.deliveries(), 1);
    request.reply(&Hi { hi: "there".into() }).await.unwrap();
    let reply = within("the reply", asked).await.unwrap().unwrap();
    assert_eq!(reply, Hi { hi: "there".into() });
}

/// P2: competing servers share the requests of one service; each request is answered exactly
/// once, and each server answers some.
pub async fn competing_servers_share_the_requests(backend: &dyn Backend) {
    let name = unique("compete");
    let handled = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    let mut buses = Vec::new();
    for server in 0..3 {
        let b = bus(backend).await;
        let handled = handled.clone();
        let options = ServeOptions::new().concurrency(1);
        let handle = b
            .service(&name)
            .unwrap()
            .serve_with(options, move |request: busmq_core::Request<u32>| {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    // Long enough that one server cannot take everything while the others
                    // start up.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, String>((server, *request.body()))
                }
            })
            .await
            .unwrap();
        handles.push(handle);
        buses.push(b);
    }
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let total = 30u32;
    let asks = (0..total).map(|n| {
        let requester = requester.clone();
        async move { requester.request::<_, (usize, u32)>(&n, patient()).await }
    });
    let replies = within("every reply", futures::future::join_all(asks)).await;
    let mut per_server: HashMap<usize, u32> = HashMap::new();
    for (n, reply) in replies.into_iter().enumerate() {
        let (server, echoed) = reply.unwrap_or_else(|e| panic!("request {n}: {e}"));
        assert_eq!(echoed, n as u32, "request {n} got another request's reply");
        *per_server.entry(server).or_default() += 1;
    }
    assert_eq!(handled.load(Ordering::SeqCst), total as usize, "each request handled once");
    assert_eq!(per_server.len(), 3, "every server answered some: {per_server:?}");
    for handle in handles {
        handle.stop().await;
    }
}

/// P2: a request taken by a server that dies (stops renewing, acknowledging and releasing)
/// comes back after the visibility timeout to another server, and the requester gets exactly
/// one reply.
pub async fn killed_servers_request_is_answered_by_another(backend: &dyn Backend) {
    let name = unique("killed");
    let (doomed_bus, faults) = faulty_bus(backend).await;
    let options = ServeOptions::new().visibility_timeout(Duration::from_secs(1));
    let doomed_service = doomed_bus.service(&name).unwrap();
    let mut doomed = doomed_service.serve::<String>(options.clone()).await.unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let stream_requester = requester.clone();
    let asked = tokio::spawn(async move {
        let mut replies =
            stream_requester.request_stream::<_, String>("work", patient()).await.unwrap();
        let mut all = Vec::new();
        while let Some(reply) = replies.next().await {
            all.push(reply);
        }
        all
    });
    let taken = next(&mut doomed, "the request at the doomed server").await.unwrap();
    // The process dies: from now on nothing it does reaches the store.
    faults.fail(&["take", "settle", "consumers", "renew", "restore", "push", "attach", "detach"]);
    drop(taken);
    drop(doomed);
    let sb = bus(backend).await;
    let mut survivor = sb.service(&name).unwrap().serve::<String>(options).await.unwrap();
    let again = next(&mut survivor, "the request at the surviving server").await.unwrap();
    assert_eq!(again.body(), "work");
    assert_eq!(again.deliveries(), 2);
    again.reply(&"done").await.unwrap();
    let replies = within("the reply stream", asked).await.unwrap();
    let replies: Vec<String> = replies.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(replies, ["done"]);
}

/// P2 (node test 30): partial replies and then the final reply reach a stream in order;
/// `request` returns the final one.
pub async fn partial_then_final_replies_arrive_in_order(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "partial").await;
    let handle = served
        .serve_with(ServeOptions::new(), |request: busmq_core::Request<String>| async move {
            request.partial(&format!("{} (partial)", request.body())).await?;
            Ok::<_, Error>(format!("{} (final)", request.body()))
        })
        .await
        .unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let mut replies = requester.request_stream::<_, String>("a", patient()).await.unwrap();
    let mut got = Vec::new();
    within("the reply stream to end", async {
        while let Some(reply) = replies.next().await {
            got.push(reply.unwrap());
        }
    })
    .await;
    assert_eq!(got, ["a (partial)", "a (final)"]);
    let last: String = requester.request("b", patient()).await.unwrap();
    assert_eq!(last, "b (final)");
    handle.stop().await;
}

/// P2 (node test 31): a server streams replies (partial replies, then `end`); the requester's
/// stream yields them in order and ends, even when the service handle that sent the request
/// was dropped meanwhile.
pub async fn streamed_replies_arrive_in_order_and_end(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "stream").await;
    let mut server = served.serve::<u32>(ServeOptions::new()).await.unwrap();
    let rb = bus(backend).await;
    let mut replies =
        rb.service(&name).unwrap().request_stream::<_, u32>(&4u32, patient()).await.unwrap();
    let request = next(&mut server, "the request").await.unwrap();
    for n in 0..*request.body() {
        request.partial(&n).await.unwrap();
    }
    request.end().await.unwrap();
    let mut got = Vec::new();
    within("the reply stream to end", async {
        while let Some(reply) = replies.next().await {
            got.push(reply.unwrap());
        }
    })
    .await;
    assert_eq!(got, [0, 1, 2, 3]);
}

/// P2 (node test 34): a server started with `max(1)` answers one request and takes no other;
/// the second request is not answered (it times out, or fails with `NoResponders` once the
/// requester has seen that the server is gone).
pub async fn serve_max_answers_that_many(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "max").await;
    let handle = served
        .serve_with(ServeOptions::new().max(1), |request: busmq_core::Request<u32>| async move {
            Ok::<_, Error>(request.body() + 1)
        })
        .await
        .unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let first: u32 = requester.request(&1u32, patient()).await.unwrap();
    assert_eq!(first, 2);
    let quick = RequestOptions::new().timeout(Duration::from_millis(300));
    match requester.request::<_, u32>(&2u32, quick).await {
        Err(Error::Timeout { operation: "request", .. } | Error::NoResponders { .. }) => {}
        other => panic!("the second request was answered: {other:?}"),
    }
    eventually("the server to end after max", || {
        let finished = handle.is_finished();
        async move { finished }
    })
    .await;
}

/// P2 (node test 35): stopping servers gracefully while requests are in flight: the handlers
/// finish and every requester gets its reply; nothing stays pending.
pub async fn graceful_stop_answers_requests_in_flight(backend: &dyn Backend) {
    let name = unique("graceful");
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    let mut buses = Vec::new();
    for _ in 0..2 {
        let b = bus(backend).await;
        let started = started.clone();
        let handle = b
            .service(&name)
            .unwrap()
            .serve_with(
                ServeOptions::new().concurrency(1),
                move |request: busmq_core::Request<u32>| {
                    let started = started.clone();
                    async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Ok::<_, Error>(request.body() * 10)
                    }
                },
            )
            .await
            .unwrap();
        handles.push(handle);
        buses.push(b);
    }
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let asks: Vec<_> = (1..=2u32)
        .map(|n| {
            let requester = requester.clone();
            tokio::spawn(async move { requester.request::<_, u32>(&n, patient()).await })
        })
        .collect();
    eventually("both requests to be in flight", || {
        let started = started.load(Ordering::SeqCst);
        async move { started == 2 }
    })
    .await;
    within(
        "both servers to stop",
        futures::future::join_all(handles.into_iter().map(|h| h.stop())),
    )
    .await;
    let mut got = Vec::new();
    for ask in asks {
        got.push(within("a reply", ask).await.unwrap().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, [10, 20]);
    let stat = buses[0].queue(format!("service:{name}")).unwrap().stat().await.unwrap();
    assert_eq!((stat.count, stat.pending, stat.consumers), (0, 0, 0));
}
