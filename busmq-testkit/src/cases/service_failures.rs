//! Request/reply service cases about what goes wrong (SPEC P2): no server, deadlines, handler
//! errors, undecodable replies, late replies; and headers both ways.

use super::service::{patient, service};
use crate::backend::Backend;
use crate::support::{DEADLINE, bus, faulty_bus, next, unique, within};
use busmq_core::{Error, HANDLER_PANICKED, Headers, Request, RequestOptions, ServeOptions};
use std::time::Duration;
use tokio::time::Instant;

/// P2: a request to a service without a server fails with `NoResponders` at once, not at its
/// deadline.
pub async fn request_without_server_fails_fast(backend: &dyn Backend) {
    let (_b, requester, name) = service(backend, "nobody").await;
    let started = Instant::now();
    let outcome = requester.request::<_, String>("anyone?", patient()).await;
    match outcome {
        Err(Error::NoResponders { service }) => assert_eq!(service, name),
        other => panic!("expected NoResponders, got {other:?}"),
    }
    assert!(started.elapsed() < DEADLINE / 2, "took {:?}", started.elapsed());
}

/// P2 (node test 33): a request whose server does not answer within the requester's timeout
/// fails with `Timeout`, naming the service.
pub async fn request_deadline_expires_with_timeout(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "deadline").await;
    let mut server = served.serve::<String>(ServeOptions::new()).await.unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let quick = RequestOptions::new().timeout(Duration::from_millis(200));
    let asked = tokio::spawn(async move { requester.request::<_, String>("slow", quick).await });
    let held = next(&mut server, "the request").await.unwrap();
    match within("the timeout", asked).await.unwrap() {
        Err(Error::Timeout { operation: "request", target, after }) => {
            assert!(target.contains(&name), "{target}");
            assert_eq!(after, Duration::from_millis(200));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    held.reply(&"too late").await.unwrap();
}

/// P2: a handler's error reaches the requester as `ServiceFailed` with its message; so does
/// `fail`, and a panicking handler fails its request too.
pub async fn handler_error_travels_back_as_service_failed(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "failing").await;
    let handle = served
        .serve_with(ServeOptions::new(), |request: Request<i64>| async move {
            match *request.body() {
                0 => Err("division by zero".to_string()),
                1 => {
                    request.fail("refused").await.map_err(|e| e.to_string())?;
                    Ok(0)
                }
                // A panic that skips the panic hook, so that the suite's output stays free of a
                // backtrace for a panic it asked for.
                2 => std::panic::resume_unwind(Box::new("a handler bug")),
                n => Ok(100 / n),
            }
        })
        .await
        .unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    for (input, message) in [(0i64, "division by zero"), (1, "refused"), (2, HANDLER_PANICKED)] {
        match requester.request::<_, i64>(&input, patient()).await {
            Err(error @ Error::ServiceFailed { .. }) => {
                assert_eq!(error.kind(), "service_failed");
                let Error::ServiceFailed { service, message: got } = error else { unreachable!() };
                assert_eq!((service.as_str(), got.as_str()), (name.as_str(), message));
            }
            other => panic!("request {input}: expected ServiceFailed, got {other:?}"),
        }
    }
    assert_eq!(requester.request::<_, i64>(&4i64, patient()).await.unwrap(), 25);
    handle.stop().await;
}

/// P2: a reply that does not decode into the requested type is a `Decode` error naming the
/// service.
pub async fn undecodable_reply_is_a_decode_error(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "undecodable").await;
    let handle = served
        .serve_with(ServeOptions::new(), |_: Request<String>| async move {
            Ok::<_, Error>("not a number")
        })
        .await
        .unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    match requester.request::<_, u64>("how many?", patient()).await {
        Err(Error::Decode { target, .. }) => assert!(target.contains(&name), "{target}"),
        other => panic!("expected Decode, got {other:?}"),
    }
    handle.stop().await;
}

/// P2 with P6: headers travel with the request to the server and with the reply back.
pub async fn service_headers_travel_both_ways(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "headers").await;
    let mut server = served.serve::<String>(ServeOptions::new()).await.unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let options = patient().headers(Headers::new().with("tenant", "acme"));
    let asked =
        tokio::spawn(async move { requester.request_reply::<_, String>("hi", options).await });
    let request = next(&mut server, "the request").await.unwrap();
    assert_eq!(request.headers().get("tenant"), Some("acme"));
    let tenant = request.headers().get("tenant").unwrap_or_default().to_string();
    request.reply_with(&"hello", Headers::new().with("served-for", tenant)).await.unwrap();
    let reply = within("the reply", asked).await.unwrap().unwrap();
    assert_eq!(reply.body(), "hello");
    assert_eq!(reply.headers().get("served-for"), Some("acme"));
}

/// P2: a reply that comes after its request timed out is dropped: it does not reach the next
/// request of the same service handle.
pub async fn late_reply_after_timeout_is_dropped(backend: &dyn Backend) {
    let (_sb, served, name) = service(backend, "late").await;
    let mut server = served.serve::<String>(ServeOptions::new()).await.unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let first = requester.clone();
    let quick = RequestOptions::new().timeout(Duration::from_millis(200));
    let asked = tokio::spawn(async move { first.request::<_, String>("first", quick).await });
    let held = next(&mut server, "the first request").await.unwrap();
    let timed_out = within("the first request to time out", asked).await.unwrap();
    assert!(matches!(timed_out, Err(Error::Timeout { .. })), "{timed_out:?}");
    held.reply(&"late reply to the first").await.unwrap();
    let second = requester.clone();
    let asked = tokio::spawn(async move { second.request::<_, String>("second", patient()).await });
    let request = next(&mut server, "the second request").await.unwrap();
    assert_eq!(request.body(), "second");
    request.reply(&"reply to the second").await.unwrap();
    let reply = within("the second reply", asked).await.unwrap().unwrap();
    assert_eq!(reply, "reply to the second");
}

/// P2: a final reply whose push fails for a while (the store unreachable for a moment) is
/// sent once the store takes it again, and the requester gets it: the server does not
/// acknowledge a request whose answer was lost to a blip.
pub async fn final_reply_outlasts_a_failing_push(backend: &dyn Backend) {
    let name = unique("blip");
    let (sb, faults) = faulty_bus(backend).await;
    let mut server = sb.service(&name).unwrap().serve::<String>(ServeOptions::new()).await.unwrap();
    let rb = bus(backend).await;
    let requester = rb.service(&name).unwrap();
    let asked =
        tokio::spawn(async move { requester.request::<_, String>("ping", patient()).await });
    let request = next(&mut server, "the request").await.unwrap();
    faults.fail(&["push"]);
    let replied = tokio::spawn(async move { request.reply(&"pong").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!replied.is_finished(), "the reply gave up while every push failed");
    faults.heal();
    within("the reply to be sent", replied).await.unwrap().unwrap();
    let reply = within("the reply", asked).await.unwrap().unwrap();
    assert_eq!(reply, "pong");
}
