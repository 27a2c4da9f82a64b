//! The genesis the chain's unit tests build on: the smallest key (height 5 in 2 sectors, leaf
//! shares 1-of-1), no proof of work, and validators whose X25519 key is the base point (valid;
//! these tests seal nothing).

use seedfed_protocol::ledger::{Genesis, GenesisValidator, KeyParams};
use seedfed_protocol::member::MemberId;

/// A genesis of `chain_id` with `validators` (member, stake).
pub(crate) fn genesis(
    chain_id: &str,
    validators: &[(MemberId, u64)],
    eviction_missed_heights: u64,
) -> Genesis {
    Genesis {
        chain_id: chain_id.into(),
        pow_difficulty: 0,
        validators: validators
            .iter()
            .map(|(id, stake)| GenesisValidator {
                id: *id,
                stake: *stake,
                x25519: x25519_dalek::X25519_BASEPOINT_BYTES,
            })
            .collect(),
        key: KeyParams {
            tree_height: 5,
            sector_bits: 1,
            leaf_threshold: 1,
            leaf_holders: 1,
            ack_threshold: 1,
            audit_leaves: 0,
            sector_window: seedfed_protocol::ledger::DEFAULT_SECTOR_WINDOW,
            rotate_percent: 0,
        },
        eviction_missed_heights,
        epochs: Default::default(),
        clients: Vec::new(),
    }
}
