//! Dead-letter cases for operators (SPEC P7): dead letters are listed with their reason and
//! delivery count without removing them, and moved back to their queue (all, or by id) with a
//! fresh delivery count.

use crate::backend::Backend;
use crate::support::{bus, next, unique, within};
use busmq_core::{Bus, ConsumeOptions, Queue, ReliableOptions};

/// Rejects every message of `q` (pushed as `bodies`) into its default dead-letter queue.
async fn dead_letter_all(bus: &Bus, q: &Queue, bodies: &[&str]) -> Vec<u64> {
    let ids = q.push_all(bodies.iter().copied()).await.unwrap();
    let mut consumer = q
        .consume_with::<String>(ConsumeOptions::new().reliable(ReliableOptions::default()))
        .await
        .unwrap();
    for body in bodies {
        let d = next(&mut consumer, "a message to reject").await.unwrap();
        assert_eq!(d.body(), body);
        d.reject(format!("bad {body}")).await.unwrap();
    }
    q.stop().await.unwrap();
    let dlq = bus.dead_letters(q.name()).unwrap();
    within("the dead letters to arrive", async {
        while dlq.count().await.unwrap() < bodies.len() as u64 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    ids
}

/// P7: listing shows each dead letter with its source queue and id, the reason and the
/// delivery count, in order, and removes nothing; paging continues after the last id.
pub async fn dead_letters_are_listed_with_reason_and_delivery_count(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("list-dead")).unwrap();
    q.attach().await.unwrap();
    let ids = dead_letter_all(&b, &q, &["a", "b", "c"]).await;
    let dlq = b.dead_letters(q.name()).unwrap();
    assert_eq!(dlq.name(), format!("{}.dlq", q.name()));
    let listed = dlq.list(10).await.unwrap();
    let seen: Vec<(String, u64, u32, String)> = listed
        .iter()
        .map(|m| (m.source.clone(), m.source_id, m.deliveries, m.reason.clone()))
        .collect();
    let want: Vec<(String, u64, u32, String)> = ids
        .iter()
        .zip(["a", "b", "c"])
        .map(|(id, body)| (q.name().to_string(), *id, 1, format!("rejected: bad {body}")))
        .collect();
    assert_eq!(seen, want);
    assert_eq!(&listed[1].payload[..], br#""b""#, "the payload as stored (JSON)");
    let page = dlq.list_after(Some(listed[0].id), 1).await.unwrap();
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), [listed[1].id]);
    assert_eq!(dlq.count().await.unwrap(), 3, "listing removes nothing");
}

/// P7: redriving everything moves each dead letter back to the tail of its queue as a new
/// message (delivered afresh, first delivery), and empties the dead-letter queue.
pub async fn redrive_all_moves_dead_letters_back_with_a_fresh_delivery_count(
    backend: &dyn Backend,
) {
    let b = bus(backend).await;
    let q = b.queue(unique("redrive-all")).unwrap();
    q.attach().await.unwrap();
    dead_letter_all(&b, &q, &["x", "y"]).await;
    let dlq = b.dead_letters(q.name()).unwrap();
    let done = dlq.redrive_all().await.unwrap();
    assert_eq!((done.moved, done.missing.len()), (2, 0));
    assert_eq!(dlq.count().await.unwrap(), 0);
    assert_eq!(q.count().await.unwrap(), 2);
    let mut consumer = q
        .consume_with::<String>(ConsumeOptions::new().reliable(ReliableOptions::default()))
        .await
        .unwrap();
    for body in ["x", "y"] {
        let d = next(&mut consumer, "a redriven message").await.unwrap();
        assert_eq!((d.body().as_str(), d.deliveries()), (body, 1));
        assert!(d.dead_letter().is_none(), "an ordinary message again");
        d.ack().await.unwrap();
    }
}

/// P7: redriving by id moves only those; the others stay in the dead-letter queue in their
/// order, and ids that are not there are reported.
pub async fn redrive_by_id_moves_only_those_and_reports_missing_ids(backend: &dyn Backend) {
    let b = bus(backend).await;
    let q = b.queue(unique("redrive-some")).unwrap();
    q.attach().await.unwrap();
    dead_letter_all(&b, &q, &["1", "2", "3", "4"]).await;
    let dlq = b.dead_letters(q.name()).unwrap();
    let listed = dlq.list(10).await.unwrap();
    let pick = [listed[1].id, listed[3].id, 42];
    let done = dlq.redrive(&pick).await.unwrap();
    assert_eq!((done.moved, done.missing.as_slice()), (2, &[42][..]));
    let left: Vec<u64> = dlq.list(10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(left, [listed[0].id, listed[2].id], "the others stay, in order");
    let mut consumer = q.consume::<String>().await.unwrap();
    let back: Vec<String> = vec![
        next(&mut consumer, "redriven 2").await.unwrap().into_body(),
        next(&mut consumer, "redriven 4").await.unwrap().into_body(),
    ];
    assert_eq!(back, ["2", "4"]);
}
