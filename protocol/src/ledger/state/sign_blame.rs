//! Provable blame of signing quorums on the ledger (`docs/protocol.md`, Signing): a
//! `SignBlame` carries a recipient's evidence of a bad contribution or a disputing member's
//! reveal of a pair's point (`reconstruct::blame`); the ledger rebuilds the attempt's session
//! from its own records, judges the evidence, and convicts and evicts whoever it proves faulty.
//!
//! Guarantees: the session is rebuilt from the ledger alone — session id from the leaf's sign
//! request, recipient = the requester with its registered X25519 key (in key issuance mode the
//! client, under the X25519 key its request named: its blame comes through the relay), and the
//! evidence's
//! quorum, which must be `k` distinct members that hold the leaf and acknowledged its sector
//! (`Session::check_leaf`), with their registered keys; the commitment must be under the
//! sector's commitments root. The evidence may be from any attempt of the leaf (an earlier
//! quorum is still a quorum of the leaf), since a signed wrong contribution proves misbehaviour
//! whenever it was sent. The judgement convicts only on a member's own signature over a
//! contribution an honest member never signs, so an honest member is never convicted; a
//! rejected blame changes nothing. A convicted member is evicted (like an equivocating
//! validator: its signing key proved it misbehaves), so every later quorum — `agent::sign`
//! takes validators only and skips convicted members — is a new attempt with a new context.

use crate::dealing::root_from_path;
use crate::hash::{hash32, Domain};
use crate::ledger::codec::encode;
use crate::ledger::error::LedgerError;
use crate::ledger::genesis::chain_digest;
use crate::ledger::tx::MAX_PAYLOAD_BYTES;
use crate::member::MemberId;
use crate::reconstruct::blame::{judge_contribution, judge_dispute, BlameError, BlameEvidence};
use crate::reconstruct::{Participant, Session};

use super::keys::split_leaf;
use super::{ConvictionEvidence, DealConviction, LedgerState};

const SESSION: Domain = Domain::new("seedfed-signsess");

/// The session id of the signing of `leaf` (of key 0) for `digest` toward `recipient`:
/// every attempt of the leaf shares it (the quorum, in the context, tells attempts apart).
pub fn sign_session_id(
    chain: &[u8; 32],
    leaf: u64,
    digest: &[u8; 32],
    recipient: &MemberId,
) -> [u8; 32] {
    hash32(
        SESSION,
        &[],
        &[0; 16],
        &[
            chain,
            &0u32.to_le_bytes(),
            &leaf.to_le_bytes(),
            digest,
            recipient.as_bytes(),
        ],
    )
}

impl LedgerState {
    /// `SignBlame`: judges the evidence about `leaf`'s reconstruction and convicts whoever it
    /// proves faulty (see the module docs).
    pub(super) fn apply_sign_blame(
        &mut self,
        author: MemberId,
        leaf: u64,
        evidence: &BlameEvidence,
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        let (convicted, reason, sector) = self.judge_sign_blame(leaf, evidence)?;
        self.convict_signers(&convicted, sector, leaf, reason, evidence)
    }

    /// Judges a `SignBlame` about `leaf` as the ledger would apply it (by a validator): the
    /// members it convicts (not convicted before), why, and the leaf's sector; or why it is
    /// refused. Changes nothing: a relay checks a client's blame with it before it submits.
    pub fn judge_sign_blame(
        &self,
        leaf: u64,
        evidence: &BlameEvidence,
    ) -> Result<(Vec<MemberId>, &'static str, u32), LedgerError> {
        let reject = LedgerError::BadSignBlame;
        let size = encode(evidence).len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(LedgerError::BadPayload(format!(
                "sign blame of {size} bytes"
            )));
        }
        let request = self
            .sign_requests
            .get(&leaf)
            .ok_or(LedgerError::LeafNotAllocated(leaf))?;
        let chain = chain_digest(&self.chain_id);
        let (key, q) = split_leaf(leaf);
        let layout = self.key_layout(key)?;
        let sector = u32::try_from(q)
            .ok()
            .and_then(|q| layout.sector_of(q))
            .ok_or(reject("leaf outside the key"))?;
        let record = self
            .key_state(key)
            .and_then(|k| k.sectors.get(&sector))
            .ok_or(reject("the leaf's sector is not published"))?;
        let participant = |m: &MemberId| {
            self.members
                .get(m)
                .map(|x| Participant {
                    member: *m,
                    x25519: x.x25519,
                })
                .ok_or(LedgerError::UnknownMember(*m))
        };
        // As `agent::sign::sign_ctx`: in key issuance mode the client, under the key it named.
        let recipient = match request.issue_to {
            Some(x25519) => Participant {
                member: request.client,
                x25519,
            },
            None => participant(&request.requester)?,
        };
        let quorum = evidence
            .quorum()
            .iter()
            .map(participant)
            .collect::<Result<Vec<_>, _>>()?;
        if quorum.iter().any(|p| !record.acked.contains(&p.member)) {
            return Err(reject("a quorum member did not acknowledge the sector"));
        }
        let holders = record.basis.leaf_holders(q, self.key.leaf_holders)?;
        let session_id = sign_session_id(&chain, leaf, &request.digest, &recipient.member);
        let session = Session::new(session_id, 0, leaf, recipient, quorum)
            .map_err(|_| reject("invalid quorum"))?;
        session
            .check_leaf(&holders, usize::from(self.key.leaf_threshold))
            .map_err(|_| reject("not a quorum of the leaf"))?;
        let judged = |r: BlameError| match r {
            BlameError::Rejected(why) => reject(why),
        };
        let (accused, reason) = match evidence {
            BlameEvidence::BadContribution {
                contribution,
                reveal,
                commitment,
                path,
                ..
            } => {
                if root_from_path(q, commitment, path) != record.commitments_root {
                    return Err(reject("commitment not under the sector's commitments root"));
                }
                let commitment = commitment
                    .decode()
                    .map_err(|_| reject("commitment does not decode"))?;
                let reason =
                    judge_contribution(&session, &commitment, contribution, reveal.as_ref())
                        .map_err(judged)?;
                (vec![contribution.sender], reason)
            }
            BlameEvidence::MaskDispute {
                mine,
                theirs,
                reveal,
                ..
            } => (
                judge_dispute(&session, mine, theirs, reveal).map_err(judged)?,
                "claimed a pairwise mask commitment the revealed pair point contradicts",
            ),
        };
        let convicted: Vec<MemberId> = accused
            .into_iter()
            .filter(|m| !self.sign_convictions.contains_key(m))
            .collect();
        if convicted.is_empty() {
            return Err(reject("already convicted"));
        }
        Ok((convicted, reason, sector))
    }

    /// Records the conviction of `members` for a signing of `leaf` and evicts them; refused if
    /// no validator would remain. Checks before it writes.
    fn convict_signers(
        &mut self,
        members: &[MemberId],
        sector: u32,
        leaf: u64,
        reason: &str,
        evidence: &BlameEvidence,
    ) -> Result<(), LedgerError> {
        let remaining = self
            .validators()
            .iter()
            .filter(|(m, _)| !members.contains(m))
            .fold(0u64, |a, (_, s)| a.saturating_add(*s));
        if remaining == 0 {
            return Err(LedgerError::LastValidator);
        }
        for m in members {
            self.sign_convictions.insert(
                *m,
                DealConviction {
                    key: split_leaf(leaf).0,
                    sector,
                    epoch: self.epoch,
                    height: self.height,
                    reason: reason.to_string(),
                    evidence: ConvictionEvidence::Signing {
                        leaf,
                        evidence: Box::new(evidence.clone()),
                    },
                },
            );
            if self.is_validator(m) {
                self.evict_member(*m);
            }
        }
        Ok(())
    }
}
