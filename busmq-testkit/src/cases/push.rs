//! Push cases: ids, pushes before attach and after detach, maxsize, batches (SPEC Q6-Q9).

use crate::backend::Backend;
use crate::support::{bus, eventually, take, unique};
use busmq_core::{AttachOptions, Error, When};
use futures::{StreamExt, TryStreamExt};
use std::time::Duration;

fn strictly_increasing(ids: &[u64]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

/// Q6: push returns the id; ids are strictly increasing per queue.
pub async fn push_returns_strictly_increasing_ids(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("ids")).unwrap();
    q.attach().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(q.push(&i).await.unwrap());
    }
    ids.extend(q.push_all(20..30).await.unwrap());
    assert_eq!(ids.len(), 30);
    assert!(strictly_increasing(&ids), "{ids:?}");
}

/// Q6 (fix): ids never go backwards, even after the queue was closed and created again.
pub async fn ids_never_go_backwards_after_close_and_recreate(backend: &dyn Backend) {
    let name = unique("ids-close");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach().await.unwrap();
    let before = q.push_all(0..3).await.unwrap();
    q.close().await.unwrap();
    let again = b.queue(&name).unwrap();
    assert!(!again.attach().await.unwrap());
    let after = again.push(&"new").await.unwrap();
    assert!(after > before[2], "{after} after {before:?}");
}

/// Q6 (fix): ids never go backwards after the queue expired and was created again.
pub async fn ids_never_go_backwards_after_expiry(backend: &dyn Backend) {
    let name = unique("ids-expire");
    let b = bus(backend).await;
    let q = b.queue(&name).unwrap();
    q.attach_with(AttachOptions::new().ttl(Duration::from_secs(1))).await.unwrap();
    let before = q.push(&"old").await.unwrap();
    q.detach().await.unwrap();
    eventually("the queue to expire", || async { !q.exists().await.unwrap() }).await;
    assert!(!q.attach().await.unwrap());
    let after = q.push(&"new").await.unwrap();
    assert!(after > before, "{after} after {before}");
}

/// Q7 (study 7.2 #10): five pushes and a consume made before attaching are not lost: once both
/// handles attach, the consumer receives the five, in order.
pub async fn push_before_attach_is_sent_once_attached(backend: &dyn Backend) {
    let name = unique("early");
    let (pb, cb) = (bus(backend).await, bus(backend).await);
    let producer = pb.queue(&name).unwrap();
    let pushes: Vec<_> = (0..5).map(|i| producer.push(&format!("m{i}"))).collect();
    let consumer_q = cb.queue(&name).unwrap();
    let mut consumer =
        consumer_q.consume::<String>().await.expect("consume before attach is deferred");
    producer.attach().await.unwrap();
    consumer_q.attach().await.unwrap();
    let ids: Vec<u64> = futures::future::try_join_all(pushes).await.expect("pushes written");
    assert!(strictly_increasing(&ids), "{ids:?}");
    let got: Vec<String> = take(&mut consumer, 5, "five early messages")
        .await
        .into_iter()
        .map(|d| d.unwrap().into_body())
        .collect();
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
}

/// Q7: pushing after detach is the error `Detached`.
pub async fn push_after_detach_is_an_error(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("late")).unwrap();
    q.attach().await.unwrap();
    q.detach().await.unwrap();
    let result = q.push(&1).await;
    assert!(matches!(result, Err(Error::Detached { .. })), "{result:?}");
    assert!(result.unwrap_err().to_string().contains("was detached"));
    assert!(matches!(q.push_all([1, 2]).await, Err(Error::Detached { .. })));
}

/// Q8 (study 7.2 #13): maxsize 10 and 15 pushes: the first 10 get ids, the last 5 fail with
/// `QueueFull` (not a silent null).
pub async fn push_to_full_queue_is_queue_full(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("full")).unwrap();
    q.attach_with(AttachOptions::new().maxsize(10)).await.unwrap();
    let pushes: Vec<_> = (0..15).map(|i| q.push(&i)).collect();
    let results = futures::future::join_all(pushes).await;
    for (i, result) in results.iter().enumerate() {
        if i < 10 {
            assert!(result.is_ok(), "push {i}: {result:?}");
        } else {
            match result {
                Err(Error::QueueFull { maxsize: 10, .. }) => {}
                other => panic!("push {i} should be QueueFull, got {other:?}"),
            }
        }
    }
    assert_eq!(q.count().await.unwrap(), 10);
}

/// Q8: the limit is stored with the queue, so a client asking for another limit obeys the
/// stored one.
pub async fn maxsize_is_stored_with_the_queue(backend: &dyn Backend) {
    let name = unique("maxsize");
    let a = bus(backend).await.queue(&name).unwrap();
    a.attach_with(AttachOptions::new().maxsize(2)).await.unwrap();
    let b = bus(backend).await.queue(&name).unwrap();
    b.attach_with(AttachOptions::new().maxsize(100)).await.unwrap();
    b.push(&1).await.unwrap();
    b.push(&2).await.unwrap();
    assert!(matches!(b.push(&3).await, Err(Error::QueueFull { maxsize: 2, .. })));
}

/// Q9: a batch is atomic (all or nothing) and keeps its order.
pub async fn push_all_is_atomic_and_ordered(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("batch")).unwrap();
    q.attach_with(AttachOptions::new().maxsize(3)).await.unwrap();
    let too_many = q.push_all(["a", "b", "c", "d"]).await;
    assert!(matches!(too_many, Err(Error::QueueFull { .. })), "{too_many:?}");
    assert_eq!(q.count().await.unwrap(), 0, "nothing of the failed batch was written");
    let ids = q.push_all(["a", "b", "c"]).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(strictly_increasing(&ids));
    let mut consumer = q.consume::<String>().await.unwrap();
    let got: Vec<(u64, String)> = take(&mut consumer, 3, "the batch")
        .await
        .into_iter()
        .map(|d| d.unwrap())
        .map(|d| (d.id(), d.into_body()))
        .collect();
    assert_eq!(got, vec![(ids[0], "a".into()), (ids[1], "b".into()), (ids[2], "c".into())]);
}

/// Q6, Q9: many pushes in flight at once are written in the order they were made.
pub async fn concurrent_pushes_keep_call_order(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("inflight")).unwrap();
    q.attach().await.unwrap();
    let pushes: Vec<_> = (0..500u32).map(|i| q.push(&i)).collect();
    let ids = futures::future::try_join_all(pushes).await.unwrap();
    assert!(strictly_increasing(&ids));
    let mut consumer = q.consume::<u32>().await.unwrap();
    let got: Vec<u32> = take(&mut consumer, 500, "all pushes")
        .await
        .into_iter()
        .map(|d| d.unwrap().into_body())
        .collect();
    assert_eq!(got, (0..500).collect::<Vec<_>>());
}

/// Q6, Q9, P8: handles pushing to one queue at once, each with batches in flight, keep their
/// own order, and nothing is lost or written twice, also while a scheduled message comes due
/// among their pushes. (On Redis each handle links its pushes to one another: the other
/// handles' pushes make the store refuse some followers and the due message sends a push down
/// the slow path, and the refused pushes are sent again, which must keep the order too.)
pub async fn handles_pushing_at_once_keep_their_own_order(backend: &dyn Backend) {
    const HANDLES: u32 = 3;
    const BATCHES: u32 = 90;
    const SIZE: u32 = 40;
    let name = unique("handles");
    let mut producers = Vec::new();
    for _ in 0..HANDLES {
        let b = bus(backend).await;
        let q = b.queue(&name).unwrap();
        q.attach().await.unwrap();
        producers.push((b, q));
    }
    producers[0]
        .1
        .schedule(&(HANDLES, 0u32), When::After(Duration::from_millis(30)))
        .await
        .unwrap();
    let runs = producers.iter().enumerate().map(|(h, (_, q))| async move {
        let h = h as u32;
        let batches = futures::stream::iter(0..BATCHES)
            .map(|k| q.push_all((0..SIZE).map(move |i| (h, k * SIZE + i))))
            .buffered(4);
        let ids: Vec<Vec<u64>> = batches.try_collect().await.unwrap();
        let ids: Vec<u64> = ids.concat();
        assert!(strictly_increasing(&ids), "handle {h}'s ids");
    });
    futures::future::join_all(runs).await;
    let total = (HANDLES * BATCHES * SIZE + 1) as usize;
    let mut consumer = producers[0].1.consume::<(u32, u32)>().await.unwrap();
    let got = take(&mut consumer, total, "every handle's messages").await;
    let mut next = vec![0u32; HANDLES as usize + 1];
    for delivery in got {
        let (h, i) = delivery.unwrap().into_body();
        assert_eq!(i, next[h as usize], "handle {h}: message {i} out of order, lost or doubled");
        next[h as usize] += 1;
    }
    assert_eq!(next, [BATCHES * SIZE, BATCHES * SIZE, BATCHES * SIZE, 1]);
}
