//! The cardinality guard of the `queue` label: a bus gives at most N distinct queue names as
//! label values and `_other` beyond them, because every label value is a time series kept by
//! the exporter for the life of the process.

use crate::name::QueueName;
use crate::util::lock;
use metrics::SharedString;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// How many distinct queue names a bus uses as `queue` label values by default.
pub const DEFAULT_QUEUE_LABELS: usize = 100;

/// The label value of the queues beyond the limit.
const OTHER: &str = "_other";

/// The queue names a bus has given out as label values.
#[derive(Debug)]
pub(crate) struct QueueLabels {
    /// `None`: no queue label at all.
    limit: Option<usize>,
    seen: Mutex<HashSet<Arc<str>>>,
}

impl QueueLabels {
    pub(crate) fn new(limit: Option<usize>) -> Self {
        QueueLabels { limit, seen: Mutex::new(HashSet::new()) }
    }

    /// The `queue` label value for `name`, or `None` when the label is off. A name keeps its
    /// value once given; names that come after the limit was reached are `_other`.
    pub(crate) fn value(&self, name: &QueueName) -> Option<SharedString> {
        let limit = self.limit?;
        let mut seen = lock(&self.seen);
        if let Some(known) = seen.get(name.as_str()) {
            return Some(SharedString::from_shared(known.clone()));
        }
        if seen.len() >= limit {
            return Some(SharedString::const_str(OTHER));
        }
        let value: Arc<str> = Arc::from(name.as_str());
        seen.insert(value.clone());
        Some(SharedString::from_shared(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> QueueName {
        QueueName::new(name).unwrap()
    }

    #[test]
    fn names_beyond_the_limit_share_one_value_and_known_names_keep_theirs() {
        let labels = QueueLabels::new(Some(2));
        assert_eq!(labels.value(&q("a")).as_deref(), Some("a"));
        assert_eq!(labels.value(&q("b")).as_deref(), Some("b"));
        assert_eq!(labels.value(&q("c")).as_deref(), Some("_other"));
        assert_eq!(labels.value(&q("a")).as_deref(), Some("a"), "a known name stays");
        assert_eq!(labels.value(&q("d")).as_deref(), Some("_other"));
    }

    #[test]
    fn the_label_can_be_off() {
        assert_eq!(QueueLabels::new(None).value(&q("a")), None);
    }
}
