//! Channel cases: roles, presence, ordering, structured messages, disconnect and end (SPEC
//! C1-C5).

use crate::backend::Backend;
use crate::support::{bus, drain_quiet, next, unique, within};
use busmq_core::{ChannelEvent, ChannelEvents, Error};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

fn label<T: std::fmt::Debug>(event: &ChannelEvent<T>) -> String {
    match event {
        ChannelEvent::Connect => "connect".into(),
        ChannelEvent::RemoteConnect => "remote-connect".into(),
        ChannelEvent::Message(m) => format!("message {:?}", m.body()),
        ChannelEvent::RemoteDisconnect => "remote-disconnect".into(),
        ChannelEvent::Disconnect => "disconnect".into(),
        ChannelEvent::End => "end".into(),
        ChannelEvent::Error(e) => format!("error: {e}"),
        other => format!("{other:?}"),
    }
}

/// Reads events until one has the label `want`; returns every label seen, that one included.
async fn until<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    events: &mut ChannelEvents<T>,
    want: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    within(want, async {
        loop {
            let event = events
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended before {want}: {seen:?}"));
            let l = label(&event);
            seen.push(l.clone());
            if l == want {
                return;
            }
        }
    })
    .await;
    seen
}

/// Plays the echo conversation of the seed suite; `server_first` says who binds first.
async fn echo_conversation(backend: &dyn Backend, server_first: bool) {
    let name = unique("echo");
    let (sb, cb) = (bus(backend).await, bus(backend).await);
    let server = sb.channel(&name).unwrap();
    let client = cb.channel(&name).unwrap();
    let (mut server_events, mut client_events) = if server_first {
        let s = server.listen::<String>().await.unwrap();
        (s, client.connect::<String>().await.unwrap())
    } else {
        let c = client.connect::<String>().await.unwrap();
        (server.listen::<String>().await.unwrap(), c)
    };
    let serve = async {
        let mut log = Vec::new();
        while let Some(event) = server_events.next().await {
            log.push(label(&event));
            if let ChannelEvent::Message(m) = event {
                server.send(&m.body().replace("ping", "pong")).await.unwrap();
            }
        }
        log
    };
    let talk = async {
        let mut log = Vec::new();
        let mut replies = 0;
        while let Some(event) = client_events.next().await {
            log.push(label(&event));
            match event {
                ChannelEvent::RemoteConnect => client.send(&"ping 0").await.map(|_| ()).unwrap(),
                ChannelEvent::Message(m) => {
                    assert_eq!(m.body(), &format!("pong {replies}"));
                    replies += 1;
                    if replies < 5 {
                        client.send(&format!("ping {replies}")).await.unwrap();
                    } else {
                        client.end().await.unwrap();
                    }
                }
                _ => {}
            }
        }
        log
    };
    let (server_log, client_log) =
        within("the conversation", async { tokio::join!(serve, talk) }).await;
    let mut expected_server = vec!["connect".to_string(), "remote-connect".into()];
    expected_server.extend((0..5).map(|i| format!("message \"ping {i}\"")));
    expected_server.extend(["end".to_string(), "disconnect".into()]);
    assert_eq!(server_log, expected_server);
    let mut expected_client = vec!["connect".to_string(), "remote-connect".into()];
    expected_client.extend((0..5).map(|i| format!("message \"pong {i}\"")));
    expected_client.push("disconnect".into());
    assert_eq!(client_log, expected_client, "the ender sees no End");
    assert!(!server.is_bound() && !client.is_bound());
}

/// C1-C5 (seed, study 7.2 #22): the server listens, the client connects, five echo round trips,
/// the client ends: the server sees connect, remote connect, five messages, end; the client
/// the same without end.
pub async fn channel_server_listens_client_connects(backend: &dyn Backend) {
    echo_conversation(backend, true).await;
}

/// C2 (seed, study 7.2 #23): the same conversation with the client connecting first.
pub async fn channel_client_connects_server_listens(backend: &dyn Backend) {
    echo_conversation(backend, false).await;
}

/// C1: peers with explicit roles both just connect.
pub async fn channel_explicit_roles_just_connect(backend: &dyn Backend) {
    let name = unique("roles");
    let (sb, cb) = (bus(backend).await, bus(backend).await);
    let server = sb.channel_with_roles(&name, "server", "client").unwrap();
    let client = cb.channel_with_roles(&name, "client", "server").unwrap();
    let mut se = server.connect::<String>().await.unwrap();
    let mut ce = client.connect::<String>().await.unwrap();
    assert_eq!(until(&mut se, "remote-connect").await, ["connect", "remote-connect"]);
    assert_eq!(until(&mut ce, "remote-connect").await, ["connect", "remote-connect"]);
    server.send(&"hello client!").await.unwrap();
    client.send(&"hello server!").await.unwrap();
    assert_eq!(until(&mut ce, "message \"hello client!\"").await.len(), 1);
    assert_eq!(until(&mut se, "message \"hello server!\"").await.len(), 1);
}

/// C2: a peer that connects later still learns that the other is there and receives what was
/// sent before it connected, in order.
pub async fn late_peer_still_sees_remote_connect_and_earlier_messages(backend: &dyn Backend) {
    let name = unique("late-peer");
    let (ab, bb) = (bus(backend).await, bus(backend).await);
    let early = ab.channel(&name).unwrap();
    let mut early_events = early.connect::<String>().await.unwrap();
    assert_eq!(until(&mut early_events, "connect").await, ["connect"]);
    for i in 0..3 {
        early.send(&format!("early {i}")).await.unwrap();
    }
    let late = bb.channel(&name).unwrap();
    let mut late_events = late.listen::<String>().await.unwrap();
    let seen = until(&mut late_events, "message \"early 2\"").await;
    assert_eq!(
        seen,
        [
            "connect",
            "remote-connect",
            "message \"early 0\"",
            "message \"early 1\"",
            "message \"early 2\""
        ]
    );
    assert_eq!(until(&mut early_events, "remote-connect").await, ["remote-connect"]);
}

/// C3: `RemoteConnect` comes once per remote session and never from a data message; a new
/// session of the remote is a new `RemoteConnect` after a `RemoteDisconnect`.
pub async fn remote_connect_once_per_session_never_from_data(backend: &dyn Backend) {
    let name = unique("sessions");
    let (ab, bb) = (bus(backend).await, bus(backend).await);
    let a = ab.channel(&name).unwrap();
    let b = bb.channel(&name).unwrap();
    let mut be = b.listen::<u32>().await.unwrap();
    let mut ae = a.connect::<u32>().await.unwrap();
    for i in 0..10 {
        a.send(&i).await.unwrap();
    }
    let mut seen = until(&mut be, "message 9").await;
    // Both peers greet each other again on a new session; repeated hellos must stay silent.
    until(&mut ae, "remote-connect").await;
    seen.extend(drain_quiet(&mut be).await.iter().map(label));
    assert_eq!(seen.iter().filter(|l| *l == "remote-connect").count(), 1, "{seen:?}");
    assert_eq!(seen.iter().filter(|l| l.starts_with("message")).count(), 10);
    a.disconnect().await.unwrap();
    assert_eq!(until(&mut ae, "disconnect").await.last().unwrap(), "disconnect");
    assert!(ae.next().await.is_none(), "the stream ends after disconnect");
    let mut ae = a.connect::<u32>().await.unwrap();
    assert_eq!(until(&mut be, "remote-connect").await, ["remote-disconnect", "remote-connect"]);
    until(&mut ae, "remote-connect").await;
    let extra: Vec<String> = drain_quiet(&mut be).await.iter().map(label).collect();
    assert!(extra.is_empty(), "{extra:?}");
}

/// C4: `send` on a peer that is not connected is `ChannelNotConnected`.
pub async fn send_before_connect_is_not_connected(backend: &dyn Backend) {
    let b = bus(backend).await;
    let channel = b.channel(unique("unbound")).unwrap();
    assert!(!channel.is_bound());
    let sent = channel.send(&"x").await;
    assert!(matches!(sent, Err(Error::ChannelNotConnected { .. })), "{sent:?}");
    assert!(sent.unwrap_err().to_string().contains("is not connected"));
}

/// C4: `send_to(endpoint, ..)` delivers to a role's queue without connecting.
pub async fn send_to_reaches_an_endpoint_without_connecting(backend: &dyn Backend) {
    let name = unique("send-to");
    let (ab, bb) = (bus(backend).await, bus(backend).await);
    let receiver = ab.channel(&name).unwrap();
    let mut events = receiver.connect::<String>().await.unwrap();
    let sender = bb.channel(&name).unwrap();
    sender.send_to("local", &"to the local role").await.unwrap();
    assert!(!sender.is_bound());
    let seen = until(&mut events, "message \"to the local role\"").await;
    assert_eq!(seen, ["connect", "message \"to the local role\""], "no RemoteConnect from data");
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Order {
    id: u32,
    items: Vec<String>,
    note: Option<String>,
}

/// C4 (fix): structured messages arrive as the same structure (node busmq sent
/// "[object Object]"), and user data that looks like a control frame stays data.
pub async fn structured_messages_stay_structured(backend: &dyn Backend) {
    let name = unique("structured");
    let (ab, bb) = (bus(backend).await, bus(backend).await);
    let a = ab.channel(&name).unwrap();
    let b = bb.channel(&name).unwrap();
    let mut be = b.listen::<serde_json::Value>().await.unwrap();
    let _ae = a.connect::<serde_json::Value>().await.unwrap();
    let order = Order { id: 7, items: vec!["tea".into(), "cake".into()], note: None };
    a.send(&order).await.unwrap();
    for lookalike in ["E", ":4:", "C0123456789abcdef", "D", ":1:"] {
        a.send(&lookalike).await.unwrap();
    }
    let mut messages = Vec::new();
    while messages.len() < 6 {
        match next(&mut be, "messages").await {
            ChannelEvent::Message(m) => messages.push(m.into_body()),
            ChannelEvent::Error(e) => panic!("{e}"),
            _ => {}
        }
    }
    let got: Order = serde_json::from_value(messages[0].clone()).unwrap();
    assert_eq!(got, order);
    let strings: Vec<&str> = messages[1..].iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(strings, ["E", ":4:", "C0123456789abcdef", "D", ":1:"]);
}

/// C5: `disconnect` leaves the channel open: the remote sees `RemoteDisconnect`, and a new peer
/// can connect and talk to it.
pub async fn disconnect_leaves_the_channel_open_for_a_new_peer(backend: &dyn Backend) {
    let name = unique("reconnect");
    let server_bus = bus(backend).await;
    let server = server_bus.channel(&name).unwrap();
    let mut se = server.listen::<String>().await.unwrap();
    let first_bus = bus(backend).await;
    let first = first_bus.channel(&name).unwrap();
    let mut fe = first.connect::<String>().await.unwrap();
    assert_eq!(until(&mut se, "remote-connect").await, ["connect", "remote-connect"]);
    until(&mut fe, "remote-connect").await;
    first.disconnect().await.unwrap();
    assert_eq!(until(&mut fe, "disconnect").await, ["disconnect"]);
    assert_eq!(until(&mut se, "remote-disconnect").await, ["remote-disconnect"]);
    let second_bus = bus(backend).await;
    let second = second_bus.channel(&name).unwrap();
    let mut ne = second.connect::<String>().await.unwrap();
    assert_eq!(until(&mut se, "remote-connect").await, ["remote-connect"]);
    assert_eq!(until(&mut ne, "remote-connect").await, ["connect", "remote-connect"]);
    second.send(&"hi again").await.unwrap();
    assert_eq!(until(&mut se, "message \"hi again\"").await, ["message \"hi again\""]);
    server.send(&"welcome").await.unwrap();
    assert_eq!(until(&mut ne, "message \"welcome\"").await, ["message \"welcome\""]);
}

/// C1: connecting a connected peer is `ChannelAlreadyConnected`.
pub async fn connect_twice_is_already_connected(backend: &dyn Backend) {
    let b = bus(backend).await;
    let channel = b.channel(unique("twice")).unwrap();
    let _events = channel.connect::<String>().await.unwrap();
    let again = channel.listen::<String>().await;
    assert!(matches!(again, Err(Error::ChannelAlreadyConnected { .. })), "{:?}", again.err());
    channel.disconnect().await.unwrap();
    assert!(channel.connect::<String>().await.is_ok(), "connect again after disconnect");
}
