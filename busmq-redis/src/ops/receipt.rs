//! What the receipt of a reliable delivery holds: the pending batch (the receipt's token, one
//! shared string per batch) and, in its index, the entry's place in that batch together with a
//! check of the delivery it was issued for. The check makes a settlement that names another id
//! or delivery number with this receipt stale, as the Store contract asks, without the client
//! keeping any table and without settle.lua reading the entry (an ack stays one bit there).

use busmq_core::store::{Receipt, Settle};
use std::sync::Arc;

/// The check of a delivery: 32 bits of a mix of its id and delivery number.
fn check(id: u64, delivery: u32) -> u64 {
    let mut z = id ^ u64::from(delivery).rotate_left(40) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & 0xFFFF_FFFF
}

/// The receipt of entry `index` of `batch`, delivered as delivery `delivery` of message `id`.
/// (A batch holds at most `u32::MAX` entries: a take asks for at most that many.)
pub(crate) fn issue(batch: &Arc<str>, index: u64, id: u64, delivery: u32) -> Receipt {
    Receipt::new(Arc::clone(batch), (index << 32) | check(id, delivery))
}

/// The batch and the index in it that `settle` names, when its receipt was issued for its id
/// and delivery number.
pub(crate) fn redeem(settle: &Settle) -> Option<(&str, u64)> {
    let batch = settle.receipt.token()?;
    let sealed = settle.receipt.index();
    ((sealed & 0xFFFF_FFFF) == check(settle.id, settle.delivery)).then_some((batch, sealed >> 32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use busmq_core::store::{Entry, Settlement};

    #[test]
    fn a_receipt_is_redeemed_only_with_the_delivery_it_was_issued_for() {
        let batch: Arc<str> = "ab.7.1".into();
        let entry = Entry {
            receipt: issue(&batch, 4095, 1_700_000_000_000_123, 2),
            ..Entry::new(1_700_000_000_000_123, 2, "x")
        };
        let settle = Settle::of(&entry, Settlement::Ack);
        assert_eq!(redeem(&settle), Some(("ab.7.1", 4095)));
        assert_eq!(redeem(&Settle { delivery: 3, ..settle.clone() }), None);
        assert_eq!(redeem(&Settle { id: entry.id + 1, ..settle.clone() }), None);
        assert_eq!(redeem(&Settle { receipt: Receipt::none(), ..settle }), None);
    }
}
