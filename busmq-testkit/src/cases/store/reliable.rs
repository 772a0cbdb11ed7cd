//! Store contract: reliable deliveries: pending entries and their receipts, settlements (ack,
//! release, return, extend), visibility deadlines, stale settlements and dead-letter claims
//! (SPEC Q13).

use super::fixtures::{
    SEC, connected, deliveries, filled, names, numbered, payloads, push, queue, reliable,
    settle_all, spec, try_push,
};
use crate::backend::Backend;
use busmq_core::store::{Settle, Settled, Settlement, TakeMode};
use std::time::Duration;

const LONG: TakeMode =
    TakeMode::Reliable { visibility: Duration::from_secs(60), max_deliveries: 10 };

/// Q13: a reliable take moves entries to pending (first delivery counts 1); an ack with the
/// receipt the take gave removes the entry; a second ack of it is stale.
pub async fn store_reliable_ack_with_its_receipt_removes_the_entry(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("ack");
    filled(&*store, &q, &spec(), &["a", "b"]).await;
    let taken = store.take(&q, 1, LONG).await.unwrap();
    assert_eq!((payloads(&taken.entries), deliveries(&taken.entries)), (vec!["a".into()], vec![1]));
    assert!(taken.dead.is_empty());
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (1, 1));
    let ack = Settle::of(&taken.entries[0], Settlement::Ack);
    assert_eq!(store.settle(&q, std::slice::from_ref(&ack)).await.unwrap(), [Settled::Done]);
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (1, 0));
    assert_eq!(store.settle(&q, &[ack]).await.unwrap(), [Settled::Stale]);
}

/// Q13: the settlements of one call apply in order, one outcome each; a settlement of a
/// delivery that is not pending as such (already acked, another delivery number, an id that
/// was never taken, a queue that does not exist) is stale and changes nothing. Released and
/// returned entries come back first, in id order; a return takes its delivery back.
pub async fn store_reliable_settlements_apply_in_order_and_stale_ones_change_nothing(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("settle");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    try_push(&*store, &q, generation, &spec(), &numbered(0..6)).await.unwrap();
    let t = store.take(&q, 4, LONG).await.unwrap().entries;
    assert_eq!(payloads(&t), names(0..4));
    let of = |i: usize, action| Settle::of(&t[i], action);
    let ops = [
        of(0, Settlement::Ack),
        of(0, Settlement::Ack),
        of(2, Settlement::Release),
        of(1, Settlement::Return),
        of(3, Settlement::Extend(120 * SEC)),
        Settle { delivery: 2, ..of(3, Settlement::Ack) },
        Settle { id: t[3].id + 1000, ..of(3, Settlement::Ack) },
    ];
    use Settled::{Done, Stale};
    assert_eq!(
        store.settle(&q, &ops).await.unwrap(),
        [Done, Stale, Done, Done, Done, Stale, Stale]
    );
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (4, 1));
    let again = store.take(&q, 10, LONG).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m1", "m2", "m4", "m5"]);
    assert_eq!(deliveries(&again), [1, 2, 1, 1]);
    let acks = settle_all(&again, Settlement::Ack);
    assert_eq!(store.settle(&q, &acks).await.unwrap(), [Done; 4]);
    assert_eq!(store.settle(&q, &[]).await.unwrap(), []);
    assert_eq!(store.settle(&queue("missing"), &acks[..2]).await.unwrap(), [Stale, Stale]);
    assert_eq!(store.stat(&q).await.unwrap().pending, 1, "m3 is still held");
}

/// Q13: released entries go back to the head in id order (whatever order they were released
/// in), before the others, and keep their delivery count.
pub async fn store_reliable_release_returns_entries_to_the_head_in_id_order(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("release");
    filled(&*store, &q, &spec(), &["3", "4", "5", "6"]).await;
    let taken = store.take(&q, 2, LONG).await.unwrap().entries;
    let ops =
        [Settle::of(&taken[1], Settlement::Release), Settle::of(&taken[0], Settlement::Release)];
    assert_eq!(store.settle(&q, &ops).await.unwrap(), [Settled::Done, Settled::Done]);
    assert_eq!(store.settle(&q, &ops[..1]).await.unwrap(), [Settled::Stale], "released already");
    let again = store.take(&q, 10, LONG).await.unwrap().entries;
    assert_eq!(payloads(&again), ["3", "4", "5", "6"]);
    assert_eq!(deliveries(&again), [2, 2, 1, 1]);
}

/// Q13: a return (taken but never handed to user code) gives the delivery back: the next take
/// counts it as the first delivery again.
pub async fn store_reliable_return_gives_the_delivery_back(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("return");
    filled(&*store, &q, &spec(), &["a"]).await;
    let taken = store.take(&q, 1, LONG).await.unwrap().entries;
    let ret = Settle::of(&taken[0], Settlement::Return);
    assert_eq!(store.settle(&q, std::slice::from_ref(&ret)).await.unwrap(), [Settled::Done]);
    assert_eq!(store.settle(&q, &[ret]).await.unwrap(), [Settled::Stale]);
    let again = store.take(&q, 1, LONG).await.unwrap().entries;
    assert_eq!((payloads(&again), deliveries(&again)), (vec!["a".into()], vec![1]));
}

/// Q13: an entry whose visibility passed without a settlement comes back before newer
/// messages, in id order, with the next delivery count; nothing comes back before its
/// deadline; a late settlement of the earlier delivery is stale, the new one's is not.
pub async fn store_reliable_expired_visibility_returns_entries_first_in_id_order(
    backend: &dyn Backend,
) {
    let store = connected(backend).await;
    let q = queue("visibility");
    let generation = filled(&*store, &q, &spec(), &["a", "b", "c"]).await;
    let first = store.take(&q, 3, reliable(2 * SEC, 10)).await.unwrap().entries;
    push(&*store, &q, generation, &spec(), &["d"]).await;
    assert_eq!(
        store.settle(&q, &[Settle::of(&first[1], Settlement::Ack)]).await.unwrap(),
        [Settled::Done]
    );
    let early = store.take(&q, 10, LONG).await.unwrap().entries;
    assert_eq!(payloads(&early), ["d"], "nothing comes back before its deadline");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = store.take(&q, 10, LONG).await.unwrap().entries;
    assert_eq!(payloads(&again), ["a", "c"]);
    assert_eq!(deliveries(&again), [2, 2]);
    let late = Settle::of(&first[0], Settlement::Ack);
    assert_eq!(store.settle(&q, &[late]).await.unwrap(), [Settled::Stale]);
    assert_eq!(store.stat(&q).await.unwrap().pending, 3, "the stale ack changed nothing");
    let now = Settle::of(&again[0], Settlement::Ack);
    assert_eq!(store.settle(&q, &[now]).await.unwrap(), [Settled::Done]);
}

/// Q13: a reliable take says how long until the earliest pending delivery of the queue (any
/// taker's) reaches its deadline, so that an idle consumer can take again then; with nothing
/// pending it says nothing, and an at-most-once take never does.
pub async fn store_reliable_a_take_reports_the_earliest_pending_deadline(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("expiry");
    filled(&*store, &q, &spec(), &["a", "b", "c"]).await;
    let short = store.take(&q, 1, reliable(2 * SEC, 10)).await.unwrap();
    let expiry = short.next_expiry.expect("its own delivery is pending");
    assert!(expiry > SEC && expiry <= 2 * SEC, "{expiry:?}");
    let long = store.take(&q, 1, LONG).await.unwrap();
    let expiry = long.next_expiry.expect("two deliveries are pending");
    assert!(expiry > SEC && expiry <= 2 * SEC, "the earlier deadline of the two: {expiry:?}");
    let once = store.take(&q, 1, TakeMode::AtMostOnce).await.unwrap();
    assert_eq!((payloads(&once.entries), once.next_expiry), (vec!["c".into()], None));
    let mut acks = settle_all(&short.entries, Settlement::Ack);
    acks.extend(settle_all(&long.entries, Settlement::Ack));
    assert_eq!(store.settle(&q, &acks).await.unwrap(), [Settled::Done; 2]);
    let none = store.take(&q, 1, LONG).await.unwrap();
    assert_eq!((none.entries.len(), none.next_expiry), (0, None), "nothing pending");
}

/// Q13: the earliest pending deadline a take reports follows extensions: once every delivery
/// still out of a take was extended, that take's own deadline no longer counts (an idle
/// consumer would take for nothing then), and an extension shorter than it counts at once.
pub async fn store_reliable_the_reported_deadline_follows_extensions(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("expiry-extended");
    filled(&*store, &q, &spec(), &["a", "b", "c"]).await;
    let taken = store.take(&q, 2, reliable(2 * SEC, 10)).await.unwrap().entries;
    let ops = [
        Settle::of(&taken[0], Settlement::Ack),
        Settle::of(&taken[1], Settlement::Extend(60 * SEC)),
    ];
    assert_eq!(store.settle(&q, &ops).await.unwrap(), [Settled::Done; 2]);
    let other = store.take(&q, 1, LONG).await.unwrap();
    assert_eq!(payloads(&other.entries), ["c"]);
    let expiry = other.next_expiry.expect("two deliveries are pending");
    assert!(expiry > 50 * SEC, "b was extended and c taken for about 60 s: {expiry:?}");
    let shorter = Settle::of(&taken[1], Settlement::Extend(Duration::from_millis(500)));
    assert_eq!(store.settle(&q, &[shorter]).await.unwrap(), [Settled::Done]);
    let none = store.take(&q, 1, LONG).await.unwrap();
    assert!(none.entries.is_empty());
    let expiry = none.next_expiry.expect("two deliveries are pending");
    assert!(expiry <= Duration::from_millis(500), "b's shorter extension: {expiry:?}");
    let mut acks = settle_all(&other.entries, Settlement::Ack);
    acks.push(Settle::of(&taken[1], Settlement::Ack));
    assert_eq!(store.settle(&q, &acks).await.unwrap(), [Settled::Done; 2]);
    assert_eq!(store.stat(&q).await.unwrap().pending, 0);
}

/// Q13: an extension sets one entry's visibility deadline to `now + by`, later or sooner than
/// its take's; an extended delivery can still be settled with the receipt of its take.
pub async fn store_reliable_extend_moves_one_entrys_deadline_either_way(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("extend");
    let generation = store.attach(&q, &spec()).await.unwrap().generation;
    try_push(&*store, &q, generation, &spec(), &numbered(0..4)).await.unwrap();
    let short = store.take(&q, 2, reliable(2 * SEC, 10)).await.unwrap().entries;
    let long = store.take(&q, 2, LONG).await.unwrap().entries;
    let ops = [
        Settle::of(&short[1], Settlement::Extend(60 * SEC)),
        Settle::of(&long[0], Settlement::Extend(Duration::from_millis(500))),
    ];
    assert_eq!(store.settle(&q, &ops).await.unwrap(), [Settled::Done, Settled::Done]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = store.take(&q, 10, LONG).await.unwrap().entries;
    assert_eq!(payloads(&again), ["m0", "m2"], "only the entries whose deadline passed");
    assert_eq!(deliveries(&again), [2, 2]);
    let mut acks = settle_all(&again, Settlement::Ack);
    acks.push(Settle::of(&short[1], Settlement::Ack));
    acks.push(Settle::of(&long[1], Settlement::Ack));
    assert_eq!(store.settle(&q, &acks).await.unwrap(), [Settled::Done; 4]);
    assert_eq!(store.stat(&q).await.unwrap().pending, 0);
}

/// Q13: a holder that keeps extending keeps its entry away from every other taker well past
/// the take's visibility.
pub async fn store_reliable_repeated_extensions_keep_an_entry_from_other_takers(
    backend: &dyn Backend,
) {
    let (holder, other) = (connected(backend).await, connected(backend).await);
    let q = queue("extend-repeatedly");
    filled(&*holder, &q, &spec(), &["held"]).await;
    let mode = reliable(2 * SEC, 10);
    let taken = holder.take(&q, 1, mode).await.unwrap().entries;
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let extend = Settle::of(&taken[0], Settlement::Extend(2 * SEC));
        assert_eq!(holder.settle(&q, &[extend]).await.unwrap(), [Settled::Done], "round {round}");
        let got = other.take(&q, 5, mode).await.unwrap().entries;
        assert!(got.is_empty(), "round {round}: {got:?}");
    }
    let ack = Settle::of(&taken[0], Settlement::Ack);
    assert_eq!(holder.settle(&q, &[ack]).await.unwrap(), [Settled::Done]);
}

/// Q13: an entry about to be delivered more than `max_deliveries` times is claimed as dead
/// instead (with the incremented count, pending like a delivery) and holds nothing else back;
/// a claimer that dies is replaced: after the claim's visibility it is offered again; acking
/// the claim with its receipt ends it.
pub async fn store_reliable_entries_past_max_deliveries_are_claimed_as_dead(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("dead");
    let generation = filled(&*store, &q, &spec(), &["poison"]).await;
    let looping = reliable(60 * SEC, 2);
    for delivery in 1..=2 {
        let taken = store.take(&q, 1, looping).await.unwrap();
        assert_eq!(
            (payloads(&taken.entries), deliveries(&taken.entries)),
            (vec!["poison".into()], vec![delivery])
        );
        assert!(taken.dead.is_empty());
        let release = Settle::of(&taken.entries[0], Settlement::Release);
        assert_eq!(store.settle(&q, &[release]).await.unwrap(), [Settled::Done]);
    }
    // A short visibility: this claimer "dies" and its claim must come back.
    let claim = store.take(&q, 1, reliable(SEC, 2)).await.unwrap();
    assert!(claim.entries.is_empty());
    assert_eq!((payloads(&claim.dead), deliveries(&claim.dead)), (vec!["poison".into()], vec![3]));
    assert_eq!(store.stat(&q).await.unwrap().pending, 1, "the dead claim is pending");
    push(&*store, &q, generation, &spec(), &["fine"]).await;
    let fine = store.take(&q, 10, looping).await.unwrap();
    assert_eq!((payloads(&fine.entries), fine.dead.len()), (vec!["fine".into()], 0));
    let ack = Settle::of(&fine.entries[0], Settlement::Ack);
    assert_eq!(store.settle(&q, &[ack]).await.unwrap(), [Settled::Done]);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = store.take(&q, 10, looping).await.unwrap();
    assert!(again.entries.is_empty());
    assert_eq!((payloads(&again.dead), deliveries(&again.dead)), (vec!["poison".into()], vec![4]));
    let ack = Settle::of(&again.dead[0], Settlement::Ack);
    assert_eq!(store.settle(&q, &[ack]).await.unwrap(), [Settled::Done]);
    assert_eq!(store.stat(&q).await.unwrap().pending, 0);
}

/// Q13, Q4, Q5: flushing or closing a queue ends its pending deliveries: their settlements are
/// stale afterwards, also in a new incarnation of the name.
pub async fn store_reliable_flush_and_close_make_pending_settlements_stale(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("pending-gone");
    let generation = filled(&*store, &q, &spec(), &["a", "b"]).await;
    let flushed = store.take(&q, 2, LONG).await.unwrap().entries;
    store.flush(&q).await.unwrap();
    assert_eq!(store.stat(&q).await.unwrap().pending, 0);
    let acks = settle_all(&flushed, Settlement::Ack);
    assert_eq!(store.settle(&q, &acks).await.unwrap(), [Settled::Stale, Settled::Stale]);

    push(&*store, &q, generation, &spec(), &["c"]).await;
    let closed = store.take(&q, 1, LONG).await.unwrap().entries;
    store.close(&q, None).await.unwrap();
    store.attach(&q, &spec()).await.unwrap();
    let ack = Settle::of(&closed[0], Settlement::Ack);
    assert_eq!(store.settle(&q, &[ack]).await.unwrap(), [Settled::Stale]);
}

/// P9: a delayed release is an extension of a held entry to `now + delay` (what
/// `Delivery::nack_after` sends): until then the entry counts as pending, not ready, and no
/// take returns it; after it, a take returns it with the next delivery count.
pub async fn store_reliable_a_delayed_release_is_pending_until_its_deadline(backend: &dyn Backend) {
    let store = connected(backend).await;
    let q = queue("delayed-release");
    filled(&*store, &q, &spec(), &["later"]).await;
    let taken = store.take(&q, 1, LONG).await.unwrap().entries;
    let release = Settle::of(&taken[0], Settlement::Extend(Duration::from_millis(300)));
    assert_eq!(store.settle(&q, &[release]).await.unwrap(), [Settled::Done]);
    let stat = store.stat(&q).await.unwrap();
    assert_eq!((stat.count, stat.pending), (0, 1), "waiting out its delay: pending");
    assert!(store.take(&q, 10, LONG).await.unwrap().entries.is_empty(), "not before the delay");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = store.take(&q, 10, LONG).await.unwrap().entries;
    assert_eq!(payloads(&again), ["later"]);
    assert_eq!(deliveries(&again), [2]);
    let ack = Settle::of(&again[0], Settlement::Ack);
    assert_eq!(store.settle(&q, &[ack]).await.unwrap(), [Settled::Done]);
}
