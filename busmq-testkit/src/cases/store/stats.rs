//! Store contract: what a queue reports and keeps besides its messages: stat, flush and
//! metadata (SPEC Q5).

use super::fixtures::{SEC, connected, exists, filled, push, queue, reliable, spec, spec_ttl};
use crate::backend::Backend;
use busmq_core::Error;
use busmq_core::store::{Metadata, MetadataOp, QueueSpec};

fn set(pairs: &[(&str, &str)]) -> MetadataOp {
    MetadataOp::Set(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn all(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::All(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn value(v: Option<&str>) -> Metadata {
    Metadata::Value(v.map(String::from))
}

/// Q5: stat reports existence, ready and pending counts, the stored spec, the generation and
/// the newest id, and changes nothing.
pub async fn store_stat_reports_counts_spec_and_generation_without_changing_anything(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("stat");
    let sp = QueueSpec { maxsize: Some(100), ..spec() };
    let generation = filled(&*store, &q, &sp, &["a", "b", "c"]).await;
    store.take(&q, 1, reliable(60 * SEC, 5)).await.unwrap();
    let stat = store.stat(&q).await.unwrap();
    assert!(stat.exists);
    assert_eq!((stat.count, stat.pending), (2, 1));
    assert_eq!((stat.spec, stat.generation), (Some(sp), Some(generation)));
    assert!(stat.last_id.is_some());
    assert_eq!(store.stat(&q).await.unwrap(), stat, "stat changes nothing");
}

/// Q5: flush removes every ready and pending message but keeps the queue, its spec,
/// generation, newest id and metadata; ids keep increasing; flushing a missing queue is a
/// no-op that creates nothing.
pub async fn store_flush_removes_messages_but_keeps_spec_metadata_and_ids(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("flush");
    let sp = spec_ttl(9 * SEC);
    let generation = filled(&*store, &q, &sp, &["a", "b", "c"]).await;
    store.metadata(&q, set(&[("k", "v")])).await.unwrap();
    store.take(&q, 1, reliable(60 * SEC, 5)).await.unwrap();
    let before = store.stat(&q).await.unwrap();
    store.flush(&q).await.unwrap();
    let after = store.stat(&q).await.unwrap();
    assert!(after.exists);
    assert_eq!((after.count, after.pending), (0, 0));
    assert_eq!(
        (after.spec, after.generation, after.last_id),
        (before.spec, before.generation, before.last_id)
    );
    assert_eq!(store.metadata(&q, MetadataOp::Get("k".into())).await.unwrap(), value(Some("v")));
    let next = push(&*store, &q, generation, &sp, &["d"]).await;
    assert!(next > before.last_id.unwrap(), "ids keep increasing after a flush");
    let missing = queue("flush-missing");
    store.flush(&missing).await.unwrap();
    assert!(!exists(&*store, &missing).await);
}

/// Q5: metadata holds strings: reading a missing queue gives nothing, writing to one fails
/// with `NotAttached` and creates nothing; set-many writes several keys at once (an empty value
/// is a value, a later write replaces), get-all lists them sorted by key.
pub async fn store_metadata_reads_and_writes_strings_and_refuses_writes_to_missing_queues(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("meta");
    assert_eq!(store.metadata(&q, MetadataOp::Get("a".into())).await.unwrap(), value(None));
    assert_eq!(store.metadata(&q, MetadataOp::GetAll).await.unwrap(), all(&[]));
    let err = store.metadata(&q, set(&[("x", "1")])).await.unwrap_err();
    assert!(matches!(&err, Error::NotAttached { queue } if queue == q.as_str()), "{err}");
    assert!(!exists(&*store, &q).await, "the refused write created nothing");

    store.attach(&q, &spec()).await.unwrap();
    let written = store.metadata(&q, set(&[("b", "2"), ("a", ""), ("c", "3")])).await.unwrap();
    assert_eq!(written, Metadata::Written);
    store.metadata(&q, set(&[("c", "4 with spaces: and \"quotes\"")])).await.unwrap();
    assert_eq!(
        store.metadata(&q, MetadataOp::GetAll).await.unwrap(),
        all(&[("a", ""), ("b", "2"), ("c", "4 with spaces: and \"quotes\"")])
    );
    let empty = store.metadata(&q, MetadataOp::Get("a".into())).await.unwrap();
    assert_eq!(empty, value(Some("")), "an empty value is a value");
    assert_eq!(store.metadata(&q, MetadataOp::Get("zz".into())).await.unwrap(), value(None));
}

/// Q5: metadata keys are the user's: keys named like the queue's own fields change neither
/// its spec nor its generation nor its counts.
pub async fn store_metadata_keys_never_clash_with_the_queues_own_fields(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("meta-clash");
    let sp = QueueSpec { maxsize: Some(50), ..spec_ttl(20 * SEC) };
    filled(&*store, &q, &sp, &["a"]).await;
    let before = store.stat(&q).await.unwrap();
    let keys = ["gen", "generation", "ttl", "maxsize", "spec", "last", "id", "count", "max_len"];
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "x")).collect();
    store.metadata(&q, set(&pairs)).await.unwrap();
    assert_eq!(store.stat(&q).await.unwrap(), before);
    let mut sorted = pairs.clone();
    sorted.sort();
    assert_eq!(store.metadata(&q, MetadataOp::GetAll).await.unwrap(), all(&sorted));
}
