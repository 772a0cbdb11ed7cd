//! Topics: every live subscriber gets every message published after it subscribed, exactly
//! once; dropping a subscription stops its delivery without disturbing the others.

mod common;

use busmq_core::TopicName;
use busmq_core::store::Topics;
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_each_message_once() {
    let Some(srv) = common::server("every_subscriber_gets_each_message_once").await else {
        return;
    };
    let a = common::store(&[&srv]).await;
    let b = common::store(&[&srv]).await;
    let topic = TopicName::new(format!("t-{:x}", busmq_core::support::random_u64())).unwrap();
    assert_eq!(a.publish(&topic, Bytes::from_static(b"unheard")).await.unwrap(), 0);
    let mut s1 = a.subscribe(&topic).await.unwrap();
    let mut s2 = a.subscribe(&topic).await.unwrap();
    let mut s3 = b.subscribe(&topic).await.unwrap();
    for i in 0..10 {
        let n = b.publish(&topic, Bytes::from(format!("m{i}"))).await.unwrap();
        assert_eq!(n, 2, "two stores (connections) receive it");
    }
    for s in [&mut s1, &mut s2, &mut s3] {
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), s.next()).await {
            got.push(String::from_utf8(m.to_vec()).unwrap());
        }
        assert_eq!(got, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    }
    drop(s1);
    drop(s3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.publish(&topic, Bytes::from_static(b"last")).await.unwrap(), 1);
    let m = tokio::time::timeout(common::DEADLINE, s2.next()).await.unwrap().unwrap();
    assert_eq!(&m[..], b"last");
    common::stop(&a).await;
    common::stop(&b).await;
}
