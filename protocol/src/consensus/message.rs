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
    /// The signers the message names: the voter, the proposer, or every signer of a
    /// certificate (in its order, repeats kept).
    pub fn signers(&self) -> Vec<MemberId> {
        match self {
            ConsensusMessage::Proposal(p) => vec![p.proposer],
            ConsensusMessage::Vote(v) => vec![v.validator],
            ConsensusMessage::Polka(p) => p.signatures.iter().map(|(m, _)| *m).collect(),
            ConsensusMessage::Round(r) => r.votes.iter().map(|(m, ..)| *m).collect(),
        }
    }

    /// Checks every signature the message carries on `chain_id`, with the consensus rules:
    /// a vote's, a proposal's (over its block's hash), and each of a certificate's, which
    /// must name no signer twice (a round certificate of precommits holds precommits only).
    /// It is a function of the message alone: whether the signers are validators, and hold
    /// enough stake, is for the caller and the consensus core to judge. `Err` says which
    /// check failed.
    pub fn check_signatures(&self, chain_id: &str) -> Result<(), &'static str> {
        self.check_signatures_with(chain_id, &mut crate::ledger::verify_vote_signature)
    }

    /// [`ConsensusMessage::check_signatures`], with each signature (signer, the digest it
    /// covers, signature) checked by `verify`, which must answer exactly as
    /// [`crate::ledger::verify_vote_signature`] does: a node passes one that remembers the
    /// signatures it verified, so a vote seen alone and again in certificates (up to `n` of
    /// them, each re-sent while a round stalls) is verified once.
    pub fn check_signatures_with(
        &self,
        chain_id: &str,
        verify: &mut dyn FnMut(&MemberId, &[u8; 32], &Signature64) -> bool,
    ) -> Result<(), &'static str> {
        let mut vote_ok = |height, round, kind, value: Option<&[u8; 32]>, m: &MemberId, s| {
            let digest = crate::ledger::vote_digest(chain_id, height, round, kind, value, m);
            verify(m, &digest, s)
        };
        let distinct = |signers: Vec<MemberId>| {
            let n = signers.len();
            signers
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == n
        };
        match self {
            ConsensusMessage::Vote(v) => verify(&v.validator, &v.digest(chain_id), &v.signature)
                .then_some(())
                .ok_or("vote signature"),
            ConsensusMessage::Proposal(p) => {
                let digest = context::proposal_digest(
                    chain_id,
                    p.height,
                    i64::from(p.round),
                    &p.block.hash(),
                    p.pol_round.map_or(-1, i64::from),
                    &p.proposer,
                );
                verify(&p.proposer, &digest, &p.signature)
                    .then_some(())
                    .ok_or("proposal signature")
            }
            ConsensusMessage::Polka(c) => {
                if !distinct(self.signers()) {
                    return Err("a polka signer named twice");
                }
                c.signatures
                    .iter()
                    .all(|(m, s)| {
                        vote_ok(
                            c.height,
                            c.round,
                            VoteKind::Prevote,
                            Some(&c.block_hash),
                            m,
                            s,
                        )
                    })
                    .then_some(())
                    .ok_or("polka signature")
            }
            ConsensusMessage::Round(c) => {
                if !distinct(self.signers()) {
                    return Err("a round certificate signer named twice");
                }
                if c.precommit && c.votes.iter().any(|(_, k, ..)| *k != VoteKind::Precommit) {
                    return Err("a prevote in a precommit round certificate");
                }
                c.votes
                    .iter()
                    .all(|(m, kind, value, s)| {
                        vote_ok(c.height, c.round, *kind, value.as_ref(), m, s)
                    })
                    .then_some(())
                    .ok_or("round certificate signature")
            }
        }
    }

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

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::ledger::{vote_digest, CommitInfo};

    const CHAIN: &str = "msg-chain";

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i + 1; 32])
    }

    fn id(k: &SigningKey) -> MemberId {
        MemberId(k.verifying_key().to_bytes())
    }

    fn sign(k: &SigningKey, digest: &[u8; 32]) -> Signature64 {
        Signature64(k.sign(digest).to_bytes())
    }

    fn vote(k: &SigningKey, kind: VoteKind, value: Option<[u8; 32]>) -> VoteRecord {
        let validator = id(k);
        let digest = vote_digest(CHAIN, 5, 1, kind, value.as_ref(), &validator);
        VoteRecord {
            height: 5,
            round: 1,
            kind,
            value,
            validator,
            signature: sign(k, &digest),
        }
    }

    fn proposal(k: &SigningKey, pol_round: Option<u32>) -> ProposalMessage {
        let block = Block {
            height: 5,
            prev_hash: [3; 32],
            proposer: id(k),
            last_commit: CommitInfo::default(),
            txs: Vec::new(),
            state_hash: [4; 32],
        };
        let digest = context::proposal_digest(
            CHAIN,
            5,
            1,
            &block.hash(),
            pol_round.map_or(-1, i64::from),
            &id(k),
        );
        ProposalMessage {
            height: 5,
            round: 1,
            pol_round,
            block,
            proposer: id(k),
            signature: sign(k, &digest),
        }
    }

    /// Each kind passes as signed, and fails once any signed field, the chain or a signature
    /// changes; certificates also fail with a signer named twice or a vote of the wrong kind.
    #[test]
    fn signatures_are_checked_for_every_kind_and_any_change_fails() {
        let v = vote(&key(0), VoteKind::Prevote, Some([9; 32]));
        let ok = |m: &ConsensusMessage| m.check_signatures(CHAIN);
        assert_eq!(ok(&ConsensusMessage::Vote(v.clone())), Ok(()));
        assert!(ConsensusMessage::Vote(v.clone())
            .check_signatures("other")
            .is_err());
        let mut moved = v.clone();
        moved.round = 2;
        assert_eq!(ok(&ConsensusMessage::Vote(moved)), Err("vote signature"));

        for pol in [None, Some(0)] {
            let p = proposal(&key(1), pol);
            assert_eq!(ok(&ConsensusMessage::Proposal(p.clone())), Ok(()));
            let mut other_block = p.clone();
            other_block.block.state_hash = [5; 32];
            assert_eq!(
                ok(&ConsensusMessage::Proposal(other_block)),
                Err("proposal signature")
            );
            let mut other_pol = p.clone();
            other_pol.pol_round = pol.map_or(Some(0), |_| None);
            assert!(ok(&ConsensusMessage::Proposal(other_pol)).is_err());
        }

        let value = [9; 32];
        let prevotes: Vec<VoteRecord> = (0..3)
            .map(|i| vote(&key(i), VoteKind::Prevote, Some(value)))
            .collect();
        let polka = PolkaMessage {
            height: 5,
            round: 1,
            block_hash: value,
            signatures: prevotes
                .iter()
                .map(|v| (v.validator, v.signature))
                .collect(),
        };
        assert_eq!(ok(&ConsensusMessage::Polka(polka.clone())), Ok(()));
        let mut twice = polka.clone();
        twice.signatures.push(twice.signatures[0]);
        assert!(ok(&ConsensusMessage::Polka(twice)).is_err());
        let mut forged = polka.clone();
        forged.signatures[2].1 = Signature64([7; 64]);
        assert_eq!(ok(&ConsensusMessage::Polka(forged)), Err("polka signature"));
        let mut elsewhere = polka;
        elsewhere.block_hash = [8; 32];
        assert!(ok(&ConsensusMessage::Polka(elsewhere)).is_err());

        let precommits: Vec<VoteRecord> = (0..3)
            .map(|i| vote(&key(i), VoteKind::Precommit, (i != 1).then_some(value)))
            .collect();
        let round = RoundMessage {
            height: 5,
            round: 1,
            precommit: true,
            votes: precommits
                .iter()
                .map(|v| (v.validator, v.kind, v.value, v.signature))
                .collect(),
        };
        assert_eq!(ok(&ConsensusMessage::Round(round.clone())), Ok(()));
        let mut mixed = round.clone();
        mixed.votes[0] = {
            let p = &prevotes[0];
            (p.validator, p.kind, p.value, p.signature)
        };
        assert!(ok(&ConsensusMessage::Round(mixed.clone())).is_err());
        mixed.precommit = false;
        assert_eq!(ok(&ConsensusMessage::Round(mixed)), Ok(()));
        let mut twice = round.clone();
        twice.votes.push(twice.votes[1]);
        assert!(ok(&ConsensusMessage::Round(twice)).is_err());
        let mut forged = round;
        forged.votes[1].2 = Some(value);
        assert_eq!(
            ok(&ConsensusMessage::Round(forged)),
            Err("round certificate signature")
        );
    }
}
