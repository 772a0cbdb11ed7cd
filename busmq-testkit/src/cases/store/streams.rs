//! Store contract: the streams a store hands out: queue watches (pushes, releases, restores,
//! closes) and pub/sub subscriptions (SPEC P1), and how a disconnect ends them.

use super::fixtures::{
    AMO, SEC, about_to_wait, connected, filled, notice, notice_of, online, push, queue, reliable,
    spec, topic,
};
use crate::backend::Backend;
use crate::support::{drain_quiet, ends, next, take};
use busmq_core::store::{Notice, Restored, Settle, Settlement};
use bytes::Bytes;

/// Q10, Q11 (consumers deliver as messages arrive): once a consumer is about to wait (a read
/// or take came back short), a push from another store wakes every watcher of the queue
/// (notices may be coalesced, so each watcher hears at least one), and later pushes wake them
/// again.
pub async fn store_watchers_hear_pushes_from_another_store(backend: &dyn Backend) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("watch-push");
    let generation = a.attach(&q, &spec()).await.unwrap().generation;
    let mut first = a.watch(&q).await.unwrap();
    let mut second = a.watch(&q).await.unwrap();
    about_to_wait(&*a, &q).await;
    push(&*b, &q, generation, &spec(), &["1"]).await;
    push(&*b, &q, generation, &spec(), &["2"]).await;
    for watch in [&mut first, &mut second] {
        assert_eq!(notice(watch, "a push notice").await, Notice::Available);
    }
    drop(first);
    drain_quiet(&mut second).await;
    push(&*b, &q, generation, &spec(), &["3"]).await;
    assert_eq!(notice(&mut second, "the next push's notice").await, Notice::Available);
}

/// Q10, Q11: a watch taken before the queue exists hears its first push (consumers watch
/// before their first take).
pub async fn store_a_watch_of_a_queue_that_does_not_exist_yet_hears_its_first_push(
    backend: &dyn Backend,
) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("watch-early");
    let mut watch = a.watch(&q).await.unwrap();
    about_to_wait(&*a, &q).await;
    push(&*b, &q, 1, &spec(), &["1"]).await;
    assert_eq!(notice(&mut watch, "the first push").await, Notice::Available);
}

/// Q12, Q13: messages going back to ready wake watchers too: a restore, a reliable release,
/// and a return.
pub async fn store_restores_releases_and_returns_wake_watchers(backend: &dyn Backend) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("watch-back");
    let generation = filled(&*a, &q, &spec(), &["1", "2", "3"]).await;
    let mut watch = a.watch(&q).await.unwrap();
    let taken = b.take(&q, 1, AMO).await.unwrap().entries;
    drain_quiet(&mut watch).await;
    assert_eq!(b.restore(&q, generation, &taken).await.unwrap(), Restored::Done);
    assert_eq!(notice(&mut watch, "the restore's notice").await, Notice::Available);
    let held = b.take(&q, 2, reliable(60 * SEC, 5)).await.unwrap().entries;
    drain_quiet(&mut watch).await;
    b.settle(&q, &[Settle::of(&held[0], Settlement::Release)]).await.unwrap();
    assert_eq!(notice(&mut watch, "the release's notice").await, Notice::Available);
    drain_quiet(&mut watch).await;
    b.settle(&q, &[Settle::of(&held[1], Settlement::Return)]).await.unwrap();
    assert_eq!(notice(&mut watch, "the return's notice").await, Notice::Available);
}

/// Q4: a close is told to every watcher, on every store; the watch goes on and hears the next
/// incarnation's pushes.
pub async fn store_a_close_is_told_to_every_watcher(backend: &dyn Backend) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("watch-close");
    a.attach(&q, &spec()).await.unwrap();
    let mut on_a = a.watch(&q).await.unwrap();
    let mut on_b = b.watch(&q).await.unwrap();
    assert!(b.close(&q, None).await.unwrap());
    notice_of(&mut on_a, Notice::Closed).await;
    notice_of(&mut on_b, Notice::Closed).await;
    let generation = a.attach(&q, &spec()).await.unwrap().generation;
    about_to_wait(&*a, &q).await;
    push(&*b, &q, generation, &spec(), &["new"]).await;
    notice_of(&mut on_a, Notice::Available).await;
    notice_of(&mut on_b, Notice::Available).await;
}

/// P1: a publish reaches every live subscription of the topic, on every store, exactly once and
/// in order; nothing published before a subscription reaches it; other topics hear nothing;
/// a dropped subscription does not hold the others back.
pub async fn store_publish_reaches_every_live_subscription_exactly_once(backend: &dyn Backend) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let news = topic("news");
    a.publish(&news, Bytes::from("before")).await.unwrap();
    let mut subs = vec![
        a.subscribe(&news).await.unwrap(),
        a.subscribe(&news).await.unwrap(),
        b.subscribe(&news).await.unwrap(),
    ];
    let mut other = b.subscribe(&topic("other")).await.unwrap();
    b.publish(&news, Bytes::from("one")).await.unwrap();
    a.publish(&news, Bytes::from("two")).await.unwrap();
    for sub in &mut subs {
        assert_eq!(take(sub, 2, "both messages").await, ["one", "two"]);
    }
    for sub in &mut subs {
        assert!(drain_quiet(sub).await.is_empty(), "each message exactly once");
    }
    assert!(drain_quiet(&mut other).await.is_empty());
    drop(subs.remove(1));
    a.publish(&news, Bytes::from("three")).await.unwrap();
    for sub in &mut subs {
        assert_eq!(next(sub, "three").await, "three");
    }
}

/// B3, P1: a disconnect ends that store's watches and subscriptions (and only its own: the
/// other store's go on); after connecting again, new ones work.
pub async fn store_disconnect_ends_this_stores_streams_only(backend: &dyn Backend) {
    let (a, b) = (connected(backend).await, connected(backend).await);
    let q = queue("disconnect");
    let t = topic("disconnect");
    let mut watch_a = a.watch(&q).await.unwrap();
    let mut sub_a = a.subscribe(&t).await.unwrap();
    let mut watch_b = b.watch(&q).await.unwrap();
    let mut sub_b = b.subscribe(&t).await.unwrap();
    a.disconnect().await.unwrap();
    ends(&mut watch_a, "a's watch to end").await;
    ends(&mut sub_a, "a's subscription to end").await;
    b.publish(&t, Bytes::from("x")).await.unwrap();
    about_to_wait(&*b, &q).await;
    push(&*b, &q, 1, &spec(), &["x"]).await;
    assert_eq!(notice(&mut watch_b, "b's watch goes on").await, Notice::Available);
    assert_eq!(next(&mut sub_b, "b's subscription goes on").await, "x");

    a.connect().await.unwrap();
    online(&*a).await;
    let mut watch_a = a.watch(&q).await.unwrap();
    let mut sub_a = a.subscribe(&t).await.unwrap();
    b.publish(&t, Bytes::from("y")).await.unwrap();
    about_to_wait(&*a, &q).await;
    push(&*b, &q, 1, &spec(), &["y"]).await;
    assert_eq!(notice(&mut watch_a, "a's new watch").await, Notice::Available);
    assert_eq!(next(&mut sub_a, "a's new subscription").await, "y");
}
