//! `LeafMismatch` on the ledger (`docs/protocol.md`, Signing): a recipient's evidence that an
//! allocated leaf's rebuilt seed, the secret of its commitment, does not generate the leaf key
//! the owner's sector root commits to (`mismatch::judge`).
//!
//! Guarantees: judged from the ledger's own sector record, so only the owner's own roots (its
//! sector root and commitments root) convict it. On a conviction the leaf is retired (its seed is now public)
//! and its request gets the next free leaf, at this height, so it is signed again and never
//! with the bad leaf; the owner is convicted (`sign_convictions`, so no quorum takes it) and
//! evicted, and its sectors of that key are withdrawn from allocation (its paths are needed to
//! sign them): every unsigned request in them gets a new leaf too, and the leaf it leaves is
//! never allocated again. Refused, changing nothing, if it would leave no validator. A request
//! with no free leaf left is dropped (its relay tells its client so).

use crate::ledger::codec::encode;
use crate::ledger::error::LedgerError;
use crate::ledger::tx::MAX_PAYLOAD_BYTES;
use crate::member::MemberId;
use crate::mismatch::{self, LeafMismatch};

use super::keys::split_leaf;
use super::{ConvictionEvidence, DealConviction, LedgerState};

/// The reason a leaf retired by a `LeafMismatch` carries on the ledger.
pub const MISMATCH_REASON: &str = "its seed does not generate the sector's leaf";

impl LedgerState {
    /// `LeafMismatch`: judges the evidence against the leaf's sector record and, if it
    /// convicts, retires the leaf, re-allocates its request and convicts the owner (see the
    /// module docs).
    pub(super) fn apply_leaf_mismatch(
        &mut self,
        author: MemberId,
        evidence: &LeafMismatch,
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        let size = encode(evidence).len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(LedgerError::BadPayload(format!(
                "leaf mismatch of {size} bytes"
            )));
        }
        let leaf = evidence.leaf;
        if !self.sign_requests.contains_key(&leaf) {
            return Err(LedgerError::LeafNotAllocated(leaf));
        }
        if self.signatures.contains_key(&leaf) {
            return Err(LedgerError::LeafSigned(leaf));
        }
        let reject = |why: &str| LedgerError::BadLeafMismatch(why.to_string());
        let (key, q) = split_leaf(leaf);
        let layout = self.key_layout(key)?;
        let sector = u32::try_from(q)
            .ok()
            .and_then(|q| layout.sector_of(q))
            .ok_or_else(|| reject("leaf outside the key"))?;
        let record = self
            .key_state(key)
            .and_then(|k| k.sectors.get(&sector))
            .ok_or_else(|| reject("the leaf's sector is not published"))?
            .clone();
        let judged = mismatch::Sector {
            root: &record.root,
            commitments_root: &record.commitments_root,
            layout: &layout,
            path_len: self.sector_height()?,
            k: usize::from(self.key.leaf_threshold),
        };
        mismatch::judge(evidence, q, &judged).map_err(|e| reject(&e.to_string()))?;
        let owner = record.owner;
        if self.is_validator(&owner) && self.total_active_stake_without(&owner) == 0 {
            return Err(LedgerError::LastValidator);
        }
        // Checked: from here on nothing fails.
        if let Some(k) = self.key_state_mut(key) {
            k.retired.insert(q, MISMATCH_REASON.to_string());
            let owned: Vec<u32> = k
                .sectors
                .iter()
                .filter(|(_, r)| r.owner == owner)
                .map(|(s, _)| *s)
                .collect();
            k.withdrawn.extend(owned);
        }
        let (epoch, height) = (self.epoch, self.height);
        self.sign_convictions
            .entry(owner)
            .or_insert_with(|| DealConviction {
                key,
                sector,
                epoch,
                height,
                reason: MISMATCH_REASON.to_string(),
                evidence: ConvictionEvidence::Mismatch {
                    evidence: Box::new(evidence.clone()),
                },
            });
        if self.is_validator(&owner) {
            self.evict_member(owner);
        }
        // The request, and every other unsigned one in the withdrawn sectors, gets a new leaf.
        let withdrawn = self
            .key_state(key)
            .map(|k| k.withdrawn.clone())
            .unwrap_or_default();
        let stranded: Vec<u64> = self
            .sign_requests
            .keys()
            .copied()
            .filter(|l| {
                let (k, q) = split_leaf(*l);
                k == key
                    && !self.signatures.contains_key(l)
                    && u32::try_from(q)
                        .ok()
                        .and_then(|q| layout.sector_of(q))
                        .is_some_and(|s| withdrawn.contains(&s))
            })
            .collect();
        for l in stranded {
            let Some(request) = self.sign_requests.remove(&l) else {
                continue;
            };
            if let Ok(next) = self.next_allocation() {
                let moved = self.allocate_leaf(next);
                self.sign_requests.insert(
                    moved,
                    super::key::SignRequestRecord {
                        height: self.height,
                        ..request
                    },
                );
            }
        }
        Ok(())
    }
}
