//! What a flooder publishes on the chain's gossip topics: malformed bytes, and messages that
//! decode and look right but that every honest node must drop, with or without a penalty:
//!
//! - consensus messages: undecodable bytes; a vote by the flooder itself (not a validator);
//!   a vote in a real validator's name (the signature is garbage); a vote from the flooder far
//!   ahead of the chain (`u64::MAX`: no overflow);
//! - transactions: undecodable bytes; an empty batch; a batch in validators' names with
//!   garbage signatures; a batch the flooder signed properly but as a non-member (it passes
//!   the gossip check and must be refused by every mempool, within the newcomer quota).
//!
//! Guarantees: every payload but the empty batch is different from every other (a sequence
//! number is in it), so gossip's duplicate suppression does not hide the flood; a payload is a pure function of
//! its kind, the sequence number and the [`Context`].

use rand_core::{OsRng, RngCore};
use seedfed_node::chain::wire::{consensus_gossip, CONSENSUS_TOPIC, TX_TOPIC};
use seedfed_protocol::consensus::ConsensusMessage;
use seedfed_protocol::ledger::{self, Signature64, SignedTx, VoteKind, VoteRecord};
use seedfed_protocol::member::MemberId;

/// The kinds of flooded gossip, in the order a flooder cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipKind {
    /// Random bytes on the consensus topic.
    MalformedConsensus,
    /// A well-formed vote by the flooder, which is no validator.
    SelfVote,
    /// A vote naming a real validator, published by the flooder, with a garbage signature.
    ForgedVote,
    /// A vote by the flooder at height `u64::MAX`.
    FarFutureVote,
    /// Random bytes on the transaction topic.
    MalformedTxs,
    /// A batch of no transactions.
    EmptyTxs,
    /// Transfers in validators' names with garbage signatures.
    BadSignatureTxs,
    /// Transfers the flooder signed properly, though it is no member.
    NonMemberTxs,
}

impl GossipKind {
    /// Every kind, in cycle order.
    pub const ALL: [GossipKind; 8] = [
        GossipKind::MalformedConsensus,
        GossipKind::SelfVote,
        GossipKind::ForgedVote,
        GossipKind::FarFutureVote,
        GossipKind::MalformedTxs,
        GossipKind::EmptyTxs,
        GossipKind::BadSignatureTxs,
        GossipKind::NonMemberTxs,
    ];
}

/// What payloads are built from.
pub struct Context<'a> {
    /// The chain id.
    pub chain_id: &'a str,
    /// The height the chain is deciding now (as last read from a node).
    pub height: u64,
    /// The validators (at least one).
    pub validators: &'a [MemberId],
    /// The flooder's own key.
    pub key: &'a ed25519_dalek::SigningKey,
}

/// Random bytes whose first 8 are `seq`.
fn garbage(seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len.max(8)];
    OsRng.fill_bytes(&mut v);
    v[..8].copy_from_slice(&seq.to_le_bytes());
    v
}

fn signature(seq: u64) -> Signature64 {
    let mut s = [0u8; 64];
    OsRng.fill_bytes(&mut s);
    s[..8].copy_from_slice(&seq.to_le_bytes());
    Signature64(s)
}

fn vote(height: u64, validator: MemberId, seq: u64) -> Vec<u8> {
    let mut value = [0u8; 32];
    value[..8].copy_from_slice(&seq.to_le_bytes());
    consensus_gossip(&ConsensusMessage::Vote(VoteRecord {
        height,
        round: 0,
        kind: VoteKind::Prevote,
        value: Some(value),
        validator,
        signature: signature(seq),
    }))
}

/// The topic (short name, as `NetworkHandle::publish` takes it) and payload of flooded
/// message `seq` of `kind`.
pub fn payload(kind: GossipKind, seq: u64, cx: &Context<'_>) -> (&'static str, Vec<u8>) {
    let me = MemberId(cx.key.verifying_key().to_bytes());
    let validator = cx.validators[(seq as usize) % cx.validators.len().max(1)];
    match kind {
        GossipKind::MalformedConsensus => (CONSENSUS_TOPIC, garbage(seq, 200)),
        GossipKind::SelfVote => (CONSENSUS_TOPIC, vote(cx.height, me, seq)),
        GossipKind::ForgedVote => (CONSENSUS_TOPIC, vote(cx.height, validator, seq)),
        GossipKind::FarFutureVote => (CONSENSUS_TOPIC, vote(u64::MAX, me, seq)),
        GossipKind::MalformedTxs => (TX_TOPIC, garbage(seq, 300)),
        // Always the same bytes: the tx topic's message id is the content, so repeats are
        // duplicates that gossip drops before any check (also part of the flood).
        GossipKind::EmptyTxs => (TX_TOPIC, ledger::encode(&Vec::<SignedTx>::new())),
        GossipKind::BadSignatureTxs => {
            let txs = super::forged_transfers(validator, me, seq, signature(seq));
            (TX_TOPIC, ledger::encode(&txs))
        }
        GossipKind::NonMemberTxs => {
            let txs = super::non_member_transfers(cx.key, cx.chain_id, validator, seq);
            (TX_TOPIC, ledger::encode(&txs))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use seedfed_node::chain::wire::{check_gossip, DropReason};
    use seedfed_node::chain::GossipView;

    use super::*;
    use crate::flood::identity::Identity;

    /// What the node's own gossip check says of each kind: everything is dropped except the
    /// properly signed non-member transactions, which only a mempool can refuse; the forged
    /// and malformed ones cost their sender a penalty, the non-validator's own votes are
    /// dropped unforwarded without one (a peer with another validator set, or far behind,
    /// may forward such a vote in good faith).
    #[test]
    fn every_flooded_kind_is_dropped_by_the_gossip_check_or_left_to_the_mempool() {
        let validator = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let validators = [MemberId(validator.verifying_key().to_bytes())];
        let view = Arc::new(GossipView::new(
            10,
            BTreeMap::from([(validators[0], 100u64)]),
        ));
        let flooder = Identity::fresh("c", 4).unwrap();
        let cx = Context {
            chain_id: "c",
            height: 10,
            validators: &validators,
            key: &flooder.signing,
        };
        for kind in GossipKind::ALL {
            let (topic, data) = payload(kind, 7, &cx);
            let verdict = check_gossip(&view, "c", topic, &data);
            match kind {
                GossipKind::NonMemberTxs => assert_eq!(verdict, Ok(()), "{kind:?}"),
                GossipKind::SelfVote | GossipKind::FarFutureVote => assert!(
                    matches!(verdict, Err(DropReason::Ignore(_))),
                    "{kind:?}: {verdict:?}"
                ),
                _ => assert!(
                    matches!(verdict, Err(DropReason::Reject(_))),
                    "{kind:?}: {verdict:?}"
                ),
            }
            // Each payload is new, but for the empty batch.
            if kind != GossipKind::EmptyTxs {
                assert_ne!(payload(kind, 8, &cx).1, data, "{kind:?}");
            }
        }
    }
}
