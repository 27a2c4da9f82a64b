//! A provably bad dealing on the ledger: a holder's `DealComplaint` against the owner of a
//! sector that is not yet published, judged by the ledger with its own holder basis and key
//! parameters, and the conviction it brings (`docs/protocol.md` step 4).
//!
//! Guarantees: a complaint convicts only if it proves that the sector's current owner signed,
//! for the current key context and holder basis, a batch to the complaining holder that is bad
//! (`dealing::judge_complaint`); anything else is rejected and changes nothing. A conviction
//! is recorded with its evidence, evicts the owner (as `Evict` does: proven misbehaviour, like
//! a double vote), and hands its unpublished sectors to the next rendezvous choice; branch
//! owners are then always computed without convicted members, so recomputation agrees.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::LedgerState;
use crate::dealing::{chunk_bits, judge_complaint, DealComplaint, DealError, SectorId};
use crate::ledger::codec::{decode, encode};
use crate::ledger::error::LedgerError;
use crate::ledger::genesis::chain_digest;
use crate::ledger::tx::MAX_PAYLOAD_BYTES;
use crate::member::MemberId;
use crate::mismatch::LeafMismatch;
use crate::reconstruct::blame::BlameEvidence;

/// A member convicted on the ledger with its evidence: a sector owner of a bad dealing of a
/// key, or a leaf holder of a bad contribution to a signing (`sign_blame`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealConviction {
    /// The key's index.
    pub key: u32,
    /// The sector it dealt badly (it lost it, with every other unpublished sector it owned), or
    /// the sector of the leaf it contributed to.
    pub sector: u32,
    /// The epoch and height of the conviction.
    pub epoch: u64,
    /// Height.
    pub height: u64,
    /// What the evidence proved.
    pub reason: String,
    /// The evidence.
    pub evidence: ConvictionEvidence,
}

/// What convicted a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConvictionEvidence {
    /// A holder's complaint: the encoded `dealing::DealComplaint`, which anyone can judge
    /// again with the holder's X25519 key and the holder basis of the conviction's epoch.
    Complaint {
        /// The holder whose complaint proved it.
        holder: MemberId,
        /// The encoded complaint.
        complaint: Vec<u8>,
    },
    /// A failed audit (step 6): the seed the holders' checked shares rebuilt for `leaf` and
    /// the owner's path do not give the sector root the owner published.
    Audit {
        /// The audited leaf.
        leaf: u64,
        /// The sector root the owner published (the sector is discarded).
        root: [u8; 32],
        /// The rebuilt seed (public: the leaf is retired).
        seed: [u8; 32],
        /// The owner's authentication path.
        path: Vec<[u8; 32]>,
    },
    /// A signing blame (`reconstruct::blame`): anyone can judge it again with the leaf's sign
    /// request, its sector record and the members' X25519 keys.
    Signing {
        /// The leaf being signed.
        leaf: u64,
        /// The evidence (boxed: it is much larger than the other variants).
        evidence: Box<BlameEvidence>,
    },
    /// A leaf's seed that does not generate the sector's leaf, found at signing time
    /// (`mismatch::judge`): anyone can judge it again with the sector record.
    Mismatch {
        /// The evidence (the seed is public: the leaf is retired).
        evidence: Box<LeafMismatch>,
    },
}

impl LedgerState {
    /// `DealComplaint`: a holder proves that `sector`'s owner dealt it a bad batch; the owner
    /// is convicted, evicted and loses its unpublished sectors.
    pub(super) fn apply_deal_complaint(
        &mut self,
        author: MemberId,
        sector: u32,
        bytes: &[u8],
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        if bytes.is_empty() || bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(LedgerError::BadPayload(format!(
                "deal complaint of {} bytes",
                bytes.len()
            )));
        }
        let complaint: DealComplaint = decode(bytes)
            .map_err(|_| LedgerError::BadPayload("deal complaint does not decode".into()))?;
        if sector >= self.key.sectors() {
            return Err(LedgerError::SectorOutOfRange(sector));
        }
        if self.newest.assignment_epoch != Some(self.epoch) {
            return Err(LedgerError::NoAssignment);
        }
        if self.newest.sectors.contains_key(&sector) {
            return Err(LedgerError::SectorPublished(sector));
        }
        let owner = *self
            .newest
            .branch_owners
            .get(&sector)
            .ok_or(LedgerError::NoAssignment)?;
        let reject = LedgerError::BadDealComplaint;
        if complaint.holder != author {
            return Err(reject("the author is not the batch's holder"));
        }
        let basis = self.holder_basis();
        let chain = chain_digest(&self.chain_id);
        let expected = SectorId {
            chain,
            key: self.newest.index,
            sector,
            owner,
            basis: basis.digest(),
        };
        if complaint.id != expected {
            return Err(reject(
                "batch for another chain, key, sector, owner or holder basis",
            ));
        }
        let x25519 = self
            .members
            .get(&author)
            .map(|m| m.x25519)
            .ok_or(LedgerError::UnknownMember(author))?;
        let layout = self.key_layout(self.newest.index)?;
        let leaves = layout
            .sector_leaves(sector)
            .map_err(|e| LedgerError::Layout(e.to_string()))?;
        let (start, end) = (u64::from(leaves.start), u64::from(leaves.end));
        let bits = chunk_bits(layout.sector_height());
        let chunk_len = 1u64 << bits;
        let first = complaint.first_leaf;
        if first < start || first >= end || !(first - start).is_multiple_of(chunk_len) {
            return Err(reject("not a chunk of the sector"));
        }
        let chunk = first..first + chunk_len;
        let mine: BTreeSet<u64> = chunk
            .clone()
            .zip(basis.holders_of(chunk, self.key.leaf_holders)?)
            .filter(|(_, holders)| holders.contains(&author))
            .map(|(leaf, _)| leaf)
            .collect();
        let k = usize::from(self.key.leaf_threshold);
        let reason = judge_complaint(&complaint, &x25519, &mine, bits, k).map_err(|e| match e {
            DealError::ComplaintRejected(why) => reject(why),
            _ => reject("complaint cannot be judged"),
        })?;
        self.convict_dealer(
            owner,
            sector,
            reason,
            ConvictionEvidence::Complaint {
                holder: author,
                complaint: encode(&complaint),
            },
        )
    }

    /// Records the conviction of `owner`, discards its published sectors that have not passed
    /// their audit (it can no longer post their paths), hands those and its unpublished
    /// sectors to the next rendezvous choice, and evicts it. Checks everything before it
    /// writes.
    pub(super) fn convict_dealer(
        &mut self,
        owner: MemberId,
        sector: u32,
        reason: &str,
        evidence: ConvictionEvidence,
    ) -> Result<(), LedgerError> {
        if self.total_active_stake_without(&owner) == 0 {
            return Err(LedgerError::LastValidator);
        }
        let mut excluded = self.keygen_excluded();
        excluded.insert(owner);
        let owners = self.branch_owners_without(&excluded)?;
        let convicted = BTreeSet::from([owner]);
        self.discard_unaudited(&convicted);
        self.hand_over(&convicted, &owners);
        self.newest.keygen_convictions.insert(
            owner,
            DealConviction {
                key: self.newest.index,
                sector,
                epoch: self.epoch,
                height: self.height,
                reason: reason.to_string(),
                evidence,
            },
        );
        self.evict_member(owner);
        Ok(())
    }
}
