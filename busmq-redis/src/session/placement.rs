//! Which instance holds a queue or a topic when the store spans several plain instances.
//!
//! The rule (also in the crate documentation):
//!
//! * Every instance has a stable identity: `host:port/db` (lowercase host) or
//!   `unix:<path>/db`, independent of credentials, TLS and the order in which URLs are given.
//! * A name belongs to the instance with the highest weight `mix(fnv1a64(identity ++ 0x00 ++
//!   name))` among the configured instances (rendezvous hashing). Adding an instance moves only
//!   the names it wins, about `1/n` of them.
//! * Each instance records, in the set `<ns>:placement`, every membership (sorted list of
//!   identities) that a client connected to it with. When a membership other than the current
//!   one was ever recorded, a queue may still live where an older membership put it: lookups
//!   then ask only the winner of each older membership (usually one or two instances) whether
//!   the queue exists, cache the answer, and create new queues only on the current winner.
//!   Without history (the common case) there is no lookup at all.
//! * A queue whose instance is down is not created elsewhere: its operations fail with
//!   `Offline` until the instance returns (no split brain).
//! * Topics are ephemeral and always go to the current winner.

use busmq_core::support::lock;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

const CACHE_LIMIT: usize = 100_000;

/// The weight of `name` on the instance `identity`.
pub(crate) fn weight(identity: &str, name: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in identity.bytes().chain(std::iter::once(0)).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    // FNV alone mixes the last bytes poorly; a splitmix64 finalizer spreads them.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The identity among `members` that wins `name`.
pub(crate) fn winner<'a>(
    members: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> Option<&'a str> {
    members.into_iter().max_by(|a, b| (weight(a, name), *a).cmp(&(weight(b, name), *b)))
}

/// A membership as stored in `<ns>:placement`: sorted identities, one per line.
pub(crate) fn membership_text(identities: &[String]) -> String {
    let mut sorted: Vec<&str> = identities.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.join("\n")
}

/// Placement over the configured instances, with the learned history and a lookup cache.
#[derive(Debug)]
pub(crate) struct Placement {
    ids: Vec<String>,
    membership: String,
    history: RwLock<Vec<Vec<String>>>,
    cache: Mutex<HashMap<Box<str>, usize>>,
}

impl Placement {
    pub(crate) fn new(ids: Vec<String>) -> Placement {
        let membership = membership_text(&ids);
        Placement {
            ids,
            membership,
            history: RwLock::new(Vec::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// This client's membership, as recorded on every instance.
    pub(crate) fn membership(&self) -> &str {
        &self.membership
    }

    /// The identity of instance `index`.
    #[cfg(test)]
    pub(crate) fn identity(&self, index: usize) -> &str {
        &self.ids[index]
    }

    fn index_of(&self, identity: &str) -> Option<usize> {
        self.ids.iter().position(|id| id == identity)
    }

    /// The instance that owns `name` under the current membership.
    pub(crate) fn owner(&self, name: &str) -> usize {
        let id = winner(self.ids.iter().map(String::as_str), name).unwrap_or(&self.ids[0]);
        self.index_of(id).unwrap_or(0)
    }

    /// Adds memberships read from an instance to the history.
    pub(crate) fn learn(&self, memberships: impl IntoIterator<Item = String>) {
        let mut history = self.history.write().unwrap_or_else(|e| e.into_inner());
        let known: HashSet<String> = history.iter().map(|m| m.join("\n")).collect();
        for text in memberships {
            if text == self.membership || known.contains(&text) || text.is_empty() {
                continue;
            }
            let mut members: Vec<String> = text.split('\n').map(str::to_string).collect();
            members.sort_unstable();
            members.dedup();
            history.push(members);
        }
    }

    /// Other instances that may hold `name` because an older membership put it there. Owners
    /// under older memberships that this client does not know cannot be asked, and are skipped.
    pub(crate) fn candidates(&self, name: &str) -> Vec<usize> {
        let history = self.history.read().unwrap_or_else(|e| e.into_inner());
        if history.is_empty() {
            return Vec::new();
        }
        let owner = self.owner(name);
        let mut out = Vec::new();
        for members in history.iter() {
            let Some(id) = winner(members.iter().map(String::as_str), name) else {
                continue;
            };
            if let Some(i) = self.index_of(id) {
                if i != owner && !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    pub(crate) fn cached(&self, name: &str) -> Option<usize> {
        lock(&self.cache).get(name).copied()
    }

    pub(crate) fn remember(&self, name: &str, index: usize) {
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(name.into(), index);
    }

    pub(crate) fn forget(&self, name: &str) {
        lock(&self.cache).remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn placement_does_not_depend_on_url_order() {
        let a = Placement::new(ids(&["h:1/0", "h:2/0", "h:3/0"]));
        let b = Placement::new(ids(&["h:3/0", "h:1/0", "h:2/0"]));
        assert_eq!(a.membership(), b.membership());
        for i in 0..500 {
            let name = format!("queue-{i}");
            assert_eq!(a.identity(a.owner(&name)), b.identity(b.owner(&name)));
        }
    }

    #[test]
    fn names_spread_and_adding_an_instance_moves_only_its_share() {
        let three = Placement::new(ids(&["h:1/0", "h:2/0", "h:3/0"]));
        let four = Placement::new(ids(&["h:1/0", "h:2/0", "h:3/0", "h:4/0"]));
        let mut counts = [0usize; 3];
        let mut moved = 0;
        for i in 0..3000 {
            let name = format!("q{i}");
            let before = three.identity(three.owner(&name)).to_string();
            counts[three.owner(&name)] += 1;
            let after = four.identity(four.owner(&name));
            if before != after {
                assert_eq!(after, "h:4/0", "a name moves only to the new instance");
                moved += 1;
            }
        }
        assert!(counts.iter().all(|c| *c > 800), "{counts:?}");
        assert!((500..1000).contains(&moved), "about a quarter moves: {moved}");
    }

    #[test]
    fn history_names_the_older_owner_only_when_it_differs() {
        let p = Placement::new(ids(&["h:1/0", "h:2/0", "h:3/0"]));
        assert!(p.candidates("x").is_empty(), "no history, no lookup");
        p.learn([p.membership().to_string()]);
        assert!(p.candidates("x").is_empty(), "the current membership is not history");
        p.learn(["h:1/0\nh:2/0".to_string()]);
        for i in 0..200 {
            let name = format!("n{i}");
            let old = winner(["h:1/0", "h:2/0"], &name).unwrap();
            let now = p.identity(p.owner(&name));
            let cands: Vec<&str> = p.candidates(&name).iter().map(|i| p.identity(*i)).collect();
            if old == now {
                assert!(cands.is_empty());
            } else {
                assert_eq!(cands, vec![old]);
            }
        }
        p.learn(["h:1/0\nh:9/0".to_string()]);
        for i in 0..200 {
            let name = format!("n{i}");
            assert!(p.candidates(&name).iter().all(|c| p.identity(*c) != "h:9/0"));
        }
    }
}
