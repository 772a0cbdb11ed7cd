//! `busmq request` against a real redis-server, with a server started here through the
//! library: replies (partial ones first) and headers, and exit 7 with a clear message for a
//! failed request, a service without a server and a deadline that passed.

mod common;

use busmq::{Request, ServeOptions, ServerHandle};
use common::{Env, redis};
use serde_json::json;
use std::time::Duration;

/// Serves `service` on its own runtime (kept running while the test runs the binary): a
/// partial reply, then a greeting naming the `tenant` header; the body `bad` fails, `slow`
/// is answered after 10 s.
fn serve(env: &Env, service: &str) -> (tokio::runtime::Runtime, ServerHandle) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let handle = runtime.block_on(async {
        let bus = env.bus().await;
        let service = bus.service(service).unwrap();
        service
            .serve_with(ServeOptions::new(), |request: Request<String>| async move {
                let tenant = request.headers().get("tenant").unwrap_or("nobody").to_string();
                match request.body().as_str() {
                    "bad" => return Err("no such greeting".to_string()),
                    "slow" => tokio::time::sleep(Duration::from_secs(10)).await,
                    _ => {}
                }
                request.partial(&"thinking").await.map_err(|e| e.to_string())?;
                Ok(format!("hello {} from {tenant}", request.body()))
            })
            .await
            .unwrap()
    });
    (runtime, handle)
}

#[test]
fn request_prints_the_replies_in_order_with_headers_sent() {
    let Some(env) = redis() else { return };
    let (runtime, server) = serve(&env, "greet");
    let run = env.run(&["request", "greet", "world", "--header", "tenant=acme"]).expect(0);
    assert_eq!(run.lines(), ["thinking", "hello world from acme"]);
    let json = env.run(&["request", "greet", "--json", "--raw", r#""json""#]).expect(0).json();
    assert_eq!(
        json,
        json!({ "service": "greet", "replies": ["thinking", "hello json from nobody"] })
    );
    runtime.block_on(server.stop());
}

#[test]
fn request_failures_exit_7_with_what_went_wrong() {
    let Some(env) = redis() else { return };
    let (runtime, server) = serve(&env, "greet");
    let failed = env.run(&["request", "greet", "bad"]).expect(7);
    assert!(failed.stderr.contains("no such greeting"), "{}", failed.stderr);
    let slow = env.run(&["request", "greet", "slow", "--timeout", "500ms"]).expect(7);
    assert!(slow.stderr.contains("timed out"), "{}", slow.stderr);
    let nobody = env.run(&["request", "nobody", "hello"]).expect(7);
    assert!(nobody.stderr.contains("\"nobody\" has no servers"), "{}", nobody.stderr);
    drop(server);
    drop(runtime);
}
