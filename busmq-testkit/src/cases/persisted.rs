//! Persisted objects through the bus (SPEC P3; node busmq §4.5 and its tests 25-26): typed
//! saves and loads, saves of changed fields only, optimistic concurrency, delete, ttl with
//! keep-alive, and watchers.

use crate::backend::Backend;
use crate::support::{bus, drain_quiet, eventually, next, unique};
use busmq_core::store::{Expect, ObjectOp, ObjectReply, ObjectSave};
use busmq_core::{Change, Error, Loaded, ObjectName, PersistOptions};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Profile {
    name: String,
    count: u32,
    active: bool,
    ratio: f64,
    tags: Vec<String>,
    address: Address,
    nickname: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Address {
    city: String,
    zip: u32,
}

fn profile() -> Profile {
    Profile {
        name: "ada".into(),
        count: 1,
        active: true,
        ratio: 0.5,
        tags: vec!["a".into(), "b".into()],
        address: Address { city: "paris".into(), zip: 75001 },
        nickname: None,
    }
}

/// P3 (node test 25): a saved object loads into a fresh handle with every type preserved
/// (strings, numbers, booleans, sequences, nested structs, options); a second save after a
/// change is what the next load sees.
pub async fn persisted_saves_and_loads_with_types_preserved(backend: &dyn Backend) {
    let name = unique("persist-types");
    let b = bus(backend).await;
    let handle = b.persisted::<Profile>(&name).unwrap();
    assert_eq!(handle.load().await.unwrap(), None, "nothing saved yet");
    let mut value = profile();
    let v1 = handle.save(&value).await.unwrap();
    value.count = 2;
    value.nickname = Some("countess".into());
    let v2 = handle.save(&value).await.unwrap();
    assert!(v2 > v1);

    let other = bus(backend).await;
    let fresh = other.persisted::<Profile>(&name).unwrap();
    assert_eq!(fresh.load().await.unwrap(), Some(Loaded { version: v2, value: value.clone() }));
    let untyped = other.persisted::<serde_json::Value>(&name).unwrap();
    let raw = untyped.load().await.unwrap().unwrap().value;
    assert_eq!(raw["count"], json!(2), "numbers stay numbers");
    assert_eq!(raw["active"], json!(true), "booleans stay booleans");
    assert_eq!(raw["address"], json!({"city": "paris", "zip": 75001}));

    let e = b.persisted::<String>(&name).unwrap().save(&"text".to_string()).await.unwrap_err();
    assert!(matches!(e, Error::Encode { .. }), "only maps and structs are objects: {e:?}");
}

/// P3 (node test 26): many objects saved and loaded, each keeps its own value.
pub async fn persisted_many_saves_and_loads(backend: &dyn Backend) {
    let prefix = unique("persist-many");
    let b = bus(backend).await;
    let handles: Vec<_> = (0..100)
        .map(|i| b.persisted::<serde_json::Value>(format!("{prefix}-{i}")).unwrap())
        .collect();
    let saves = handles
        .iter()
        .enumerate()
        .map(|(i, h)| async move { h.save(&json!({"i": i, "s": format!("v{i}")})).await });
    for saved in futures::future::join_all(saves).await {
        saved.unwrap();
    }
    let other = bus(backend).await;
    for i in 0..100 {
        let h = other.persisted::<serde_json::Value>(format!("{prefix}-{i}")).unwrap();
        let loaded = h.load().await.unwrap().expect("saved");
        assert_eq!(loaded.value, json!({"i": i, "s": format!("v{i}")}));
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Doc {
    a: u32,
    b: u32,
    c: u32,
}

/// P3: a save writes only the fields its handle changed. A holder that lost a race gets a
/// conflict; forcing its save then writes its own change only, so the field the other holder
/// changed (and this one did not) keeps the other holder's value.
pub async fn persisted_save_writes_only_changed_fields(backend: &dyn Backend) {
    let name = unique("persist-dirty");
    let (b1, b2) = (bus(backend).await, bus(backend).await);
    let first = b1.persisted::<Doc>(&name).unwrap();
    let second = b2.persisted::<Doc>(&name).unwrap();
    let v1 = first.save(&Doc { a: 1, b: 1, c: 1 }).await.unwrap();
    let seen = second.load().await.unwrap().unwrap();
    assert_eq!(seen.version, v1);
    let v2 = second.save(&Doc { b: 2, ..seen.value }).await.unwrap();

    let mine = Doc { a: 2, b: 1, c: 1 };
    let e = first.save(&mine).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { current_version: Some(v), .. } if v == v2), "{e:?}");
    let v3 = first.save_force(&mine).await.unwrap();
    assert!(v3 > v2);
    let stored = b2.persisted::<Doc>(&name).unwrap().load().await.unwrap().unwrap();
    assert_eq!(stored, Loaded { version: v3, value: Doc { a: 2, b: 2, c: 1 } });
}

/// P3: two holders load the same version and both save: exactly one wins; the other gets a
/// conflict naming the winner's version, and nothing of its write is stored.
pub async fn persisted_concurrent_saves_conflict(backend: &dyn Backend) {
    let name = unique("persist-race");
    let (b1, b2, b3) = (bus(backend).await, bus(backend).await, bus(backend).await);
    b1.persisted::<Doc>(&name).unwrap().save(&Doc { a: 0, b: 0, c: 0 }).await.unwrap();
    let left = b2.persisted::<Doc>(&name).unwrap();
    let right = b3.persisted::<Doc>(&name).unwrap();
    let base = left.load().await.unwrap().unwrap();
    assert_eq!(right.load().await.unwrap().unwrap().version, base.version);
    let (to_left, to_right) = (Doc { a: 10, ..base.value.clone() }, Doc { c: 30, ..base.value });
    let (l, r) = futures::join!(left.save(&to_left), right.save(&to_right));
    let (won, lost, expected) = match (l, r) {
        (Ok(v), Err(e)) => (v, e, Doc { a: 10, b: 0, c: 0 }),
        (Err(e), Ok(v)) => (v, e, Doc { a: 0, b: 0, c: 30 }),
        other => panic!("exactly one save must win: {other:?}"),
    };
    assert!(
        matches!(lost, Error::Conflict { current_version: Some(v), .. } if v == won),
        "the loser learns the winner's version: {lost:?}"
    );
    assert_eq!(lost.kind(), "conflict");
    let stored = b1.persisted::<Doc>(&name).unwrap().load().await.unwrap().unwrap();
    assert_eq!(stored, Loaded { version: won, value: expected });
}

/// P3: delete removes the object for every holder; a holder of the deleted version conflicts,
/// and a handle that saw the delete creates the object anew.
pub async fn persisted_delete_removes_the_object(backend: &dyn Backend) {
    let name = unique("persist-delete");
    let (b1, b2) = (bus(backend).await, bus(backend).await);
    let owner = b1.persisted::<Doc>(&name).unwrap();
    let other = b2.persisted::<Doc>(&name).unwrap();
    owner.save(&Doc { a: 1, b: 1, c: 1 }).await.unwrap();
    assert!(other.load().await.unwrap().is_some());
    assert!(owner.delete().await.unwrap());
    assert!(!owner.delete().await.unwrap(), "nothing left to delete");
    assert_eq!(b2.persisted::<Doc>(&name).unwrap().load().await.unwrap(), None);
    let e = other.save(&Doc { a: 2, b: 2, c: 2 }).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { current_version: None, .. }), "{e:?}");
    let again = owner.save(&Doc { a: 3, b: 3, c: 3 }).await.unwrap();
    let loaded = other.load().await.unwrap().unwrap();
    assert_eq!(loaded, Loaded { version: again, value: Doc { a: 3, b: 3, c: 3 } });
}

/// P3: an object expires `ttl` after its last save; `keep_alive` keeps it well past the ttl
/// until its guard is dropped.
pub async fn persisted_expires_after_ttl_and_keep_alive_keeps_it(backend: &dyn Backend) {
    let name = unique("persist-ttl");
    let b = bus(backend).await;
    let ttl = Duration::from_secs(1);
    let handle = b.persisted_with::<Doc>(&name, PersistOptions::new().ttl(ttl)).unwrap();
    assert_eq!(handle.ttl(), ttl);
    let version = handle.save(&Doc { a: 1, b: 2, c: 3 }).await.unwrap();
    let alive = handle.keep_alive();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let reader = b.persisted::<Doc>(&name).unwrap();
    let loaded = reader.load().await.unwrap().expect("kept alive past its ttl");
    assert_eq!(loaded.version, version, "touches write nothing");
    drop(alive);
    eventually("the object to expire", || async { reader.load().await.unwrap().is_none() }).await;
    assert!(!handle.touch().await.unwrap(), "an expired object cannot be touched back");
    let zero = b.persisted_with::<Doc>(&name, PersistOptions::new().ttl(Duration::ZERO));
    assert!(matches!(zero, Err(Error::InvalidOption { option: "ttl", .. })));
}

/// P3: a watcher sees each change another holder makes, once and in order, with its version
/// and value (saves, then a delete), and none of the saves of its own handle.
pub async fn persisted_watchers_see_changes_once(backend: &dyn Backend) {
    let name = unique("persist-watch");
    let (b1, b2) = (bus(backend).await, bus(backend).await);
    let mine = b1.persisted::<Doc>(&name).unwrap();
    mine.save(&Doc { a: 0, b: 0, c: 0 }).await.unwrap();
    let mut changes = mine.watch().await.unwrap();
    mine.save(&Doc { a: 1, b: 0, c: 0 }).await.unwrap();

    let theirs = b2.persisted::<Doc>(&name).unwrap();
    let mut value = theirs.load().await.unwrap().unwrap().value;
    let mut versions = Vec::new();
    for i in 1..=3 {
        value.b = i;
        versions.push((theirs.save(&value).await.unwrap(), value.clone()));
    }
    for (version, value) in versions.iter().cloned() {
        let change = next(&mut changes, "a change of the other holder").await.unwrap();
        assert_eq!(change, Change::Saved(Loaded { version, value }));
    }
    assert!(theirs.delete().await.unwrap());
    let change = next(&mut changes, "the delete").await.unwrap();
    assert_eq!(change, Change::Deleted { version: versions[2].0 });
    mine.save_force(&Doc { a: 9, b: 9, c: 9 }).await.unwrap();
    let extra = drain_quiet(&mut changes).await;
    assert!(extra.is_empty(), "each change once, own saves never: {extra:?}");
}

/// P3: a watcher that missed a change (here one written straight to the store, which announces
/// nothing, as when a notice is lost while offline) notices the gap at the next notice, reads
/// the object again and reports a resync with the current state, then follows changes again.
pub async fn persisted_watch_resyncs_after_a_missed_change(backend: &dyn Backend) {
    let name = unique("persist-resync");
    let (b1, b2) = (bus(backend).await, bus(backend).await);
    let watcher = b1.persisted::<Doc>(&name).unwrap();
    let writer = b2.persisted::<Doc>(&name).unwrap();
    let v1 = writer.save(&Doc { a: 1, b: 1, c: 1 }).await.unwrap();
    let mut changes = watcher.watch().await.unwrap();

    let store = backend.store().await;
    store.connect().await.unwrap();
    let object = ObjectName::new(&name).unwrap();
    let silent = ObjectSave {
        expect: Expect::Version(v1),
        set: vec![("c".to_string(), Bytes::from("5"))],
        remove: vec![],
        ttl: Duration::from_secs(60),
    };
    let v2 = match store.object(&object, ObjectOp::Save(silent)).await.unwrap() {
        ObjectReply::Saved { version, .. } => version,
        other => panic!("expected a save, got {other:?}"),
    };
    let e = writer.save(&Doc { a: 2, b: 1, c: 1 }).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { current_version: Some(v), .. } if v == v2), "{e:?}");
    let v3 = writer.save_force(&Doc { a: 2, b: 1, c: 1 }).await.unwrap();

    let change = next(&mut changes, "the resync").await.unwrap();
    let current = Loaded { version: v3, value: Doc { a: 2, b: 1, c: 5 } };
    assert_eq!(change, Change::Resync(Some(current)));
    let latest = writer.load().await.unwrap().unwrap();
    let v4 = writer.save(&Doc { b: 7, ..latest.value }).await.unwrap();
    let change = next(&mut changes, "the next change").await.unwrap();
    assert_eq!(change, Change::Saved(Loaded { version: v4, value: Doc { a: 2, b: 7, c: 5 } }));
    assert!(drain_quiet(&mut changes).await.is_empty());
}
