//! The Store contract of persisted objects (SPEC P3, [`Store::object`]): versions, the
//! expectation that guards a save, partial saves, delete and expiry.

use super::fixtures::{SEC, connected};
use crate::backend::Backend;
use crate::support::{eventually, unique};
use busmq_core::store::{Expect, ObjectOp, ObjectReply, ObjectSave, StoredObject};
use busmq_core::{Error, ObjectName, Store};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Duration;

fn object(label: &str) -> ObjectName {
    ObjectName::new(unique(label)).expect("a valid object name")
}

fn save(expect: Expect, set: &[(&str, &str)], remove: &[&str], ttl: Duration) -> ObjectOp {
    ObjectOp::Save(ObjectSave {
        expect,
        set: set.iter().map(|(k, v)| (k.to_string(), Bytes::from(v.to_string()))).collect(),
        remove: remove.iter().map(|k| k.to_string()).collect(),
        ttl,
    })
}

async fn run(store: &dyn Store, name: &ObjectName, op: ObjectOp) -> ObjectReply {
    store.object(name, op).await.expect("object operation")
}

/// Saves with `expect`; the new version, failing on anything else.
async fn saved(store: &dyn Store, name: &ObjectName, op: ObjectOp) -> (u64, Option<u64>) {
    match run(store, name, op).await {
        ObjectReply::Saved { version, previous } => (version, previous),
        other => panic!("expected a save, got {other:?}"),
    }
}

async fn load(store: &dyn Store, name: &ObjectName) -> Option<(u64, BTreeMap<String, String>)> {
    match run(store, name, ObjectOp::Load).await {
        ObjectReply::Loaded(found) => found.map(|StoredObject { version, fields }| {
            let fields = fields
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect();
            (version, fields)
        }),
        other => panic!("expected a load, got {other:?}"),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// P3: a first save creates the object, each save gives a strictly larger version and names the
/// one it replaced, and a load reads the version and every field exactly as written.
pub async fn store_object_saves_bump_the_version_and_loads_read_every_field(backend: &dyn Backend) {
    let store = connected(backend).await;
    let name = object("obj-versions");
    assert_eq!(load(&*store, &name).await, None, "nothing before the first save");
    let fields = [("name", "\"a\""), ("n", "1"), ("empty", "")];
    let (v1, prev) = saved(&*store, &name, save(Expect::Absent, &fields, &[], 60 * SEC)).await;
    assert_eq!(prev, None);
    assert_eq!(load(&*store, &name).await, Some((v1, map(&fields))));
    let (v2, prev) =
        saved(&*store, &name, save(Expect::Version(v1), &[("n", "2")], &[], 60 * SEC)).await;
    assert!(v2 > v1, "versions grow: {v1} then {v2}");
    assert_eq!(prev, Some(v1));
    let (v3, _) = saved(&*store, &name, save(Expect::Exists, &[], &[], 60 * SEC)).await;
    assert!(v3 > v2, "a save of nothing is still a new version");
    let (version, stored) = load(&*store, &name).await.expect("the object");
    assert_eq!(version, v3);
    assert_eq!(stored, map(&[("name", "\"a\""), ("n", "2"), ("empty", "")]));
}

/// P3: a save whose expectation does not hold (another version, an object that exists or
/// does not) writes nothing and reports the stored version.
pub async fn store_object_a_save_that_expects_another_version_writes_nothing(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let name = object("obj-conflict");
    let missing = run(&*store, &name, save(Expect::Version(7), &[("a", "1")], &[], 60 * SEC));
    assert_eq!(missing.await, ObjectReply::Conflict { current: None });
    let missing = run(&*store, &name, save(Expect::Exists, &[("a", "1")], &[], 60 * SEC));
    assert_eq!(missing.await, ObjectReply::Conflict { current: None });
    assert_eq!(load(&*store, &name).await, None, "conflicts create nothing");

    let (v1, _) = saved(&*store, &name, save(Expect::Absent, &[("a", "1")], &[], 60 * SEC)).await;
    let again = run(&*store, &name, save(Expect::Absent, &[("a", "2")], &[], 60 * SEC)).await;
    assert_eq!(again, ObjectReply::Conflict { current: Some(v1) });
    let stale =
        run(&*store, &name, save(Expect::Version(v1 + 1), &[("a", "3")], &["a"], 60 * SEC)).await;
    assert_eq!(stale, ObjectReply::Conflict { current: Some(v1) });
    assert_eq!(load(&*store, &name).await, Some((v1, map(&[("a", "1")]))), "nothing written");
}

/// P3: a save writes the fields it sets and removes the ones it names; the other stored fields
/// keep their values.
pub async fn store_object_a_partial_save_keeps_the_other_fields(backend: &dyn Backend) {
    let store = connected(backend).await;
    let name = object("obj-partial");
    let all = [("a", "1"), ("b", "2"), ("c", "3")];
    let (v1, _) = saved(&*store, &name, save(Expect::Absent, &all, &[], 60 * SEC)).await;
    let op = save(Expect::Version(v1), &[("b", "20"), ("d", "4")], &["c"], 60 * SEC);
    let (v2, _) = saved(&*store, &name, op).await;
    let expected = map(&[("a", "1"), ("b", "20"), ("d", "4")]);
    assert_eq!(load(&*store, &name).await, Some((v2, expected)));
}

/// P3: a delete removes the object and reports the version it had; a later save creates it
/// again with a larger version, so a holder of the old version conflicts.
pub async fn store_object_delete_removes_it_and_later_versions_are_larger(backend: &dyn Backend) {
    let store = connected(backend).await;
    let name = object("obj-delete");
    let (v1, _) = saved(&*store, &name, save(Expect::Absent, &[("a", "1")], &[], 60 * SEC)).await;
    assert_eq!(run(&*store, &name, ObjectOp::Delete).await, ObjectReply::Deleted(Some(v1)));
    assert_eq!(load(&*store, &name).await, None);
    assert_eq!(run(&*store, &name, ObjectOp::Delete).await, ObjectReply::Deleted(None));
    assert_eq!(run(&*store, &name, ObjectOp::Touch(60 * SEC)).await, ObjectReply::Touched(false));
    let (v2, prev) =
        saved(&*store, &name, save(Expect::Absent, &[("b", "2")], &[], 60 * SEC)).await;
    assert!(v2 > v1, "a new incarnation has a larger version: {v1} then {v2}");
    assert_eq!(prev, None);
    assert_eq!(load(&*store, &name).await, Some((v2, map(&[("b", "2")]))), "no old field");
    let old = run(&*store, &name, save(Expect::Version(v1), &[("a", "9")], &[], 60 * SEC)).await;
    assert_eq!(old, ObjectReply::Conflict { current: Some(v2) });
}

/// P3: an object expires `ttl` after its last save or touch (a touch pushes the expiry back
/// and writes nothing else); a zero ttl is refused.
pub async fn store_object_expires_ttl_after_the_last_save_or_touch(backend: &dyn Backend) {
    let store = connected(backend).await;
    let name = object("obj-expiry");
    let zero = store.object(&name, save(Expect::Absent, &[("a", "1")], &[], Duration::ZERO));
    assert!(matches!(zero.await, Err(Error::InvalidOption { option: "ttl", .. })));
    let (v1, _) = saved(&*store, &name, save(Expect::Absent, &[("a", "1")], &[], 2 * SEC)).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(run(&*store, &name, ObjectOp::Touch(2 * SEC)).await, ObjectReply::Touched(true));
    }
    assert_eq!(load(&*store, &name).await, Some((v1, map(&[("a", "1")]))), "touched, unchanged");
    eventually("the object to expire", || async { load(&*store, &name).await.is_none() }).await;
    let late = run(&*store, &name, save(Expect::Version(v1), &[("a", "2")], &[], 2 * SEC)).await;
    assert_eq!(late, ObjectReply::Conflict { current: None }, "an expired object is gone");
}
