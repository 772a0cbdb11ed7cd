//! Replay cases: reading without removing, from a position, and the mixing rule (SPEC Q14,
//! Q15).

use crate::backend::Backend;
use crate::support::{bus, drain_quiet, take, unique};
use busmq_core::{ConsumeOptions, Error, Position};

fn bodies(deliveries: Vec<busmq_core::Result<busmq_core::Delivery<String>>>) -> Vec<String> {
    deliveries.into_iter().map(|d| d.unwrap().into_body()).collect()
}

/// Q14 (seed "consume without removing", study 7.2 #17): a non-removing consumer reads m0..m3 in
/// order; a removing consumer afterwards still gets m0..m3.
pub async fn consume_without_removing_leaves_messages_for_the_next_consumer(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("keep")).unwrap();
    q.attach().await.unwrap();
    q.push_all(["m0", "m1", "m2", "m3"]).await.unwrap();
    let mut reader = q.consume_with::<String>(ConsumeOptions::new().remove(false)).await.unwrap();
    assert_eq!(bodies(take(&mut reader, 4, "replayed").await), ["m0", "m1", "m2", "m3"]);
    assert!(drain_quiet(&mut reader).await.is_empty());
    q.stop().await.unwrap();
    assert_eq!(q.count().await.unwrap(), 4, "nothing was removed");
    let mut consumer = q.consume::<String>().await.unwrap();
    assert_eq!(bodies(take(&mut consumer, 4, "consumed").await), ["m0", "m1", "m2", "m3"]);
}

/// Q14: replay starts at an index or at a message id.
pub async fn replay_from_index_and_from_id(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("positions")).unwrap();
    q.attach().await.unwrap();
    let ids = q.push_all((0..10).map(|i| format!("m{i}"))).await.unwrap();
    let from = |position| ConsumeOptions::new().replay(position);
    let mut reader = q.consume_with::<String>(from(Position::Index(4))).await.unwrap();
    let got = take(&mut reader, 6, "from index 4").await;
    assert_eq!(got.first().unwrap().as_ref().unwrap().id(), ids[4]);
    assert_eq!(bodies(got), ["m4", "m5", "m6", "m7", "m8", "m9"]);
    q.stop().await.unwrap();
    let mut reader = q.consume_with::<String>(from(Position::FromId(ids[7]))).await.unwrap();
    assert_eq!(bodies(take(&mut reader, 3, "from id").await), ["m7", "m8", "m9"]);
    q.stop().await.unwrap();
    let mut reader = q.consume_with::<String>(from(Position::AfterId(ids[7]))).await.unwrap();
    assert_eq!(bodies(take(&mut reader, 2, "after id").await), ["m8", "m9"]);
    assert!(drain_quiet(&mut reader).await.is_empty());
}

/// Q14: every replaying consumer reads every message from its own position.
pub async fn replay_consumers_read_independently(backend: &dyn Backend) {
    let name = unique("independent");
    let (a, b) = (bus(backend).await, bus(backend).await);
    let qa = a.queue(&name).unwrap();
    qa.attach().await.unwrap();
    qa.push_all((0..20).map(|i| format!("m{i}"))).await.unwrap();
    let qb = b.queue(&name).unwrap();
    qb.attach().await.unwrap();
    let mut ra = qa
        .consume_with::<String>(ConsumeOptions::new().replay(Position::Start).prefetch(3))
        .await
        .unwrap();
    let mut rb =
        qb.consume_with::<String>(ConsumeOptions::new().replay(Position::Index(10))).await.unwrap();
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies(take(&mut ra, 20, "reader a").await), expected);
    assert_eq!(bodies(take(&mut rb, 10, "reader b").await), expected[10..]);
    qa.push(&"m20").await.unwrap();
    assert_eq!(bodies(take(&mut ra, 1, "a: new").await), ["m20"]);
    assert_eq!(bodies(take(&mut rb, 1, "b: new").await), ["m20"]);
    assert_eq!(qa.count().await.unwrap(), 21);
}

/// Q14: replay from the end sees only messages pushed afterwards.
pub async fn replay_from_end_sees_only_new_messages(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("end")).unwrap();
    q.attach().await.unwrap();
    q.push_all(["old1", "old2"]).await.unwrap();
    let mut reader =
        q.consume_with::<String>(ConsumeOptions::new().replay(Position::End)).await.unwrap();
    assert!(drain_quiet(&mut reader).await.is_empty());
    q.push_all(["new1", "new2"]).await.unwrap();
    assert_eq!(bodies(take(&mut reader, 2, "new ones").await), ["new1", "new2"]);
}

/// Q15: a replaying consumer next to a removing one (on another client) is rejected with
/// `MixedConsumers`, both ways; once the other kind stops it is allowed.
pub async fn mixing_removing_and_replaying_consumers_is_rejected(backend: &dyn Backend) {
    let name = unique("mixed");
    let (a, b) = (bus(backend).await, bus(backend).await);
    let qa = a.queue(&name).unwrap();
    qa.attach().await.unwrap();
    let qb = b.queue(&name).unwrap();
    qb.attach().await.unwrap();
    let remover = qa.consume::<String>().await.unwrap();
    let replay = qb.consume_with::<String>(ConsumeOptions::new().remove(false)).await;
    match replay {
        Err(Error::MixedConsumers { existing, requested, .. }) => {
            assert_eq!((existing, requested), ("removing", "replaying"));
        }
        other => panic!("expected MixedConsumers, got {:?}", other.err()),
    }
    qa.stop().await.unwrap();
    drop(remover);
    let reader = qb.consume_with::<String>(ConsumeOptions::new().remove(false)).await.unwrap();
    let remove = qa.consume::<String>().await;
    assert!(
        matches!(remove, Err(Error::MixedConsumers { existing: "replaying", .. })),
        "{:?}",
        remove.err()
    );
    drop(reader);
}
