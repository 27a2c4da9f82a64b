//! The consensus wire messages and their mapping to and from Malachite's types.
//!
//! What validators gossip to each other: proposals carrying the whole block, votes, and the
//! polka and round certificates that liveness needs, encoded with [`crate::ledger::encode`].
//! Decoding arbitrary bytes never panics, and whatever decodes re-encodes to itself.

use malachitebft_core_types as mt;
use malachitebft_signing_ed25519 as ms;
use mt::{NilOrVal, Round, SignedMessage, VoteType};
use serde::{Deserialize, Serialize};

use super::context::{self, BlockHash, Height, Vote};
use super::Ctx;
use crate::ledger::{Block, Signature64, VoteKind, VoteRecord};
use crate::member::MemberId;

/// A signed proposal as it travels on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalMessage {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Proof-of-lock round, if the block is re-proposed.
    pub pol_round: Option<u32>,
    /// The block.
    pub block: Block,
    /// The proposer.
    pub proposer: MemberId,
    /// Proposer's signature over [`context::proposal_digest`].
    pub signature: Signature64,
}

/// A polka certificate on the wire: prevotes for one block in one round from more than two
/// thirds of the stake. It lets a node that counted an equivocator's other vote still learn
/// of the polka (a lock), which Tendermint's liveness needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolkaMessage {
    /// Height.
    pub height: u64,
    /// Round of the prevotes.
    pub round: u32,
    /// The block prevoted for.
    pub block_hash: [u8; 32],
    /// Prevote signatures.
    pub signatures: Vec<(MemberId, Signature64)>,
}

/// A round certificate on the wire: justifies skipping to (or past) a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundMessage {
    /// Height.
    pub height: u64,
    /// Round of the votes.
    pub round: u32,
    /// `true`: 2f+1 precommits (precommit-any); `false`: f+1 votes of any kind (skip).
    pub precommit: bool,
    /// The votes: (voter, kind, value, signature).
    pub votes: Vec<(MemberId, VoteKind, Option<[u8; 32]>, Signature64)>,
}

/// A consensus message on the wire (encode with [`crate::ledger::encode`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// A proposal.
    Proposal(ProposalMessage),
    /// A prevote or precommit.
    Vote(VoteRecord),
    /// A polka certificate (liveness).
    Polka(PolkaMessage),
    /// A round certificate (liveness).
    Round(RoundMessage),
}

impl ConsensusMessage {
    /// Height the message is about.
    pub fn height(&self) -> u64 {
        match self {
            ConsensusMessage::Proposal(p) => p.height,
            ConsensusMessage::Vote(v) => v.height,
            ConsensusMessage::Polka(p) => p.height,
            ConsensusMessage::Round(r) => r.height,
        }
    }
}

pub(super) fn signed_vote(v: &VoteRecord) -> Option<mt::SignedVote<Ctx>> {
    let vote = Vote {
        height: Height(v.height),
        round: Round::new(v.round),
        value: v
            .value
            .map_or(NilOrVal::Nil, |h| NilOrVal::Val(BlockHash(h))),
        vote_type: match v.kind {
            VoteKind::Prevote => VoteType::Prevote,
            VoteKind::Precommit => VoteType::Precommit,
        },
        validator: v.validator,
    };
    if v.round > u32::MAX / 2 {
        return None;
    }
    Some(SignedMessage::new(
        vote,
        ms::Signature::from_bytes(v.signature.0),
    ))
}

pub(super) fn vote_record(sv: &mt::SignedVote<Ctx>) -> Option<VoteRecord> {
    Some(VoteRecord {
        height: sv.message.height.0,
        round: sv.message.round.as_u32()?,
        kind: context::vote_kind(sv.message.vote_type),
        value: match &sv.message.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(h) => Some(h.0),
        },
        validator: sv.message.validator,
        signature: Signature64(sv.signature.to_bytes()),
    })
}

pub(super) fn proposal_message(sp: &mt::SignedProposal<Ctx>) -> Option<ProposalMessage> {
    Some(ProposalMessage {
        height: sp.message.height.0,
        round: sp.message.round.as_u32()?,
        pol_round: sp.message.pol_round.as_u32(),
        block: sp.message.value.block().clone(),
        proposer: sp.message.proposer,
        signature: Signature64(sp.signature.to_bytes()),
    })
}

pub(super) fn polka_to_wire(c: &mt::PolkaCertificate<Ctx>) -> Option<PolkaMessage> {
    Some(PolkaMessage {
        height: c.height.0,
        round: c.round.as_u32()?,
        block_hash: c.value_id.0,
        signatures: c
            .polka_signatures
            .iter()
            .map(|s| (s.address, Signature64(s.signature.to_bytes())))
            .collect(),
    })
}

pub(super) fn polka_from_wire(p: &PolkaMessage) -> mt::PolkaCertificate<Ctx> {
    mt::PolkaCertificate {
        height: Height(p.height),
        round: Round::new(p.round),
        value_id: BlockHash(p.block_hash),
        polka_signatures: p
            .signatures
            .iter()
            .map(|(m, s)| mt::PolkaSignature::new(*m, ms::Signature::from_bytes(s.0)))
            .collect(),
    }
}

pub(super) fn round_to_wire(c: &mt::RoundCertificate<Ctx>) -> Option<RoundMessage> {
    Some(RoundMessage {
        height: c.height.0,
        round: c.round.as_u32()?,
        precommit: c.cert_type == mt::RoundCertificateType::Precommit,
        votes: c
            .round_signatures
            .iter()
            .map(|s| {
                (
                    s.address,
                    context::vote_kind(s.vote_type),
                    match &s.value_id {
                        NilOrVal::Nil => None,
                        NilOrVal::Val(h) => Some(h.0),
                    },
                    Signature64(s.signature.to_bytes()),
                )
            })
            .collect(),
    })
}

pub(super) fn round_from_wire(r: &RoundMessage) -> mt::RoundCertificate<Ctx> {
    mt::RoundCertificate {
        height: Height(r.height),
        round: Round::new(r.round),
        cert_type: if r.precommit {
            mt::RoundCertificateType::Precommit
        } else {
            mt::RoundCertificateType::Skip
        },
        round_signatures: r
            .votes
            .iter()
            .map(|(m, kind, value, s)| {
                mt::RoundSignature::new(
                    match kind {
                        VoteKind::Prevote => VoteType::Prevote,
                        VoteKind::Precommit => VoteType::Precommit,
                    },
                    value.map_or(NilOrVal::Nil, |h| NilOrVal::Val(BlockHash(h))),
                    *m,
                    ms::Signature::from_bytes(s.0),
                )
            })
            .collect(),
    }
}
