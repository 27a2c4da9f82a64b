//! What a flooder sends on the chain's request-response protocol (`/seedfed/rpc/2`): bytes that
//! are no request, block requests that ask for everything (from genesis, as many as `u32::MAX`:
//! the node caps them and serves them off its consensus task through a bounded queue), block
//! requests past any height, and epoch-protocol direct messages that are garbage.
//!
//! Guarantees: a payload is a pure function of its kind and sequence number; every one but the
//! block requests differs from every other.

use rand_core::{OsRng, RngCore};
use seedfed_node::chain::wire::ChainRequest;
use seedfed_protocol::ledger;

/// The kinds of flooded requests, in the order a flooder cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Random bytes.
    Garbage,
    /// `Blocks { from: 0, max: u32::MAX }`: the most expensive honest-looking request.
    AllBlocks,
    /// `Blocks { from: u64::MAX, .. }`.
    FarBlocks,
    /// `Direct(random bytes)` for the epoch agent.
    GarbageDirect,
}

impl RequestKind {
    /// Every kind, in cycle order.
    pub const ALL: [RequestKind; 4] = [
        RequestKind::Garbage,
        RequestKind::AllBlocks,
        RequestKind::FarBlocks,
        RequestKind::GarbageDirect,
    ];
}

fn garbage(seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len.max(8)];
    OsRng.fill_bytes(&mut v);
    v[..8].copy_from_slice(&seq.to_le_bytes());
    v
}

/// The bytes of flooded request `seq` of `kind`.
pub fn payload(kind: RequestKind, seq: u64) -> Vec<u8> {
    match kind {
        RequestKind::Garbage => garbage(seq, 64),
        RequestKind::AllBlocks => ledger::encode(&ChainRequest::Blocks {
            from: 0,
            max: u32::MAX,
        }),
        RequestKind::FarBlocks => ledger::encode(&ChainRequest::Blocks {
            from: u64::MAX,
            max: 64,
        }),
        RequestKind::GarbageDirect => ledger::encode(&ChainRequest::Direct(garbage(seq, 256))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_garbage_kind_fails_to_decode() {
        for kind in RequestKind::ALL {
            let decoded = ledger::decode::<ChainRequest>(&payload(kind, 3));
            match kind {
                // 64 random bytes could decode only by a tiny chance (the sequence number
                // leads: variant 3 does not exist).
                RequestKind::Garbage => assert!(decoded.is_err()),
                _ => assert!(decoded.is_ok(), "{kind:?}"),
            }
        }
    }
}
