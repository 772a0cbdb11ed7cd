//! What both a handle and a watch read of the store: a loaded object, the one load of its
//! stored fields, and the error for a reply of the wrong kind.

use crate::context::BusInner;
use crate::error::{Error, Result};
use crate::name::ObjectName;
use crate::persisted::fields::Fields;
use crate::store::{ObjectOp, ObjectReply};

/// A loaded object: its value and the version it was saved as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<T> {
    /// The version of the save that wrote this state. Versions of one name only grow, also
    /// across deletes and expiry; they are not consecutive.
    pub version: u64,
    /// The value.
    pub value: T,
}

/// The stored version and fields of `name`, if it exists.
pub(crate) async fn fetch(bus: &BusInner, name: &ObjectName) -> Result<Option<(u64, Fields)>> {
    match bus.store.object(name, ObjectOp::Load).await? {
        ObjectReply::Loaded(found) => {
            Ok(found.map(|o| (o.version, o.fields.into_iter().collect())))
        }
        other => Err(unexpected("load", other)),
    }
}

/// A reply that does not belong to the operation (a store that breaks the contract).
pub(crate) fn unexpected(operation: &'static str, reply: ObjectReply) -> Error {
    Error::Store {
        backend: "core",
        operation,
        message: format!("the store answered a persisted object {operation} with {reply:?}"),
        retryable: false,
        source: None,
    }
}
