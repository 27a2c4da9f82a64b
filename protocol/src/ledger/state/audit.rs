//! The audit of a published sector on the ledger (`docs/protocol.md` step 6): a threshold-PRF
//! draw of `audit_leaves` leaves, their holders' shares in clear, the owner's authentication
//! paths, and the verdict.
//!
//! Guarantees: the draw is the threshold PRF, under the root key of the sector's key
//! generation, of the sector's published roots (`audit::draw_input`), combined from the first
//! `t` DLEQ-verified partials: the owner cannot steer it after publishing. A revealed share
//! counts only if its commitment is under the sector's commitments root and the share fits it.
//! A leaf passes only if the seed `k` such shares rebuild, with the owner's path, gives the
//! sector root; a leaf that does not pass convicts the owner (evicted, sector discarded, its
//! branches to the next rendezvous choice). Audited leaves are retired: never allocated. The
//! master root waits for every sector's audit.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::convictions::ConvictionEvidence;
use super::sector_window::KeygenMiss;
use super::LedgerState;
use crate::audit::{self, RevealedShare};
use crate::dealing::SectorId;
use crate::ledger::error::LedgerError;
use crate::ledger::genesis::chain_digest;
use crate::member::MemberId;
use crate::shamir::{self, EncodedCommitment, Share};
use crate::tprf::{self, Partial};

/// The audit of one published sector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorAudit {
    /// The epoch whose ristretto255 DKG key draws the audit (the key generation's root key).
    pub key_epoch: u64,
    /// Height the sector root landed at.
    pub opened_at: u64,
    /// DLEQ-verified partials for the draw, until `t` are in.
    pub partials: Vec<Partial>,
    /// Height of the draw (the owner's paths are due within `sector_window` blocks of it).
    pub drawn_at: Option<u64>,
    /// The drawn leaves (empty until the draw), each with its progress.
    pub leaves: BTreeMap<u64, LeafAudit>,
}

/// One audited leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafAudit {
    /// The leaf's commitment (from the first checked reveal; bound to the commitments root).
    pub commitment: Option<EncodedCommitment>,
    /// Checked shares in clear, by holder.
    pub shares: BTreeMap<MemberId, [u8; 32]>,
    /// The owner's authentication path inside the sector.
    pub path: Option<Vec<[u8; 32]>>,
    /// The rebuilt seed generates the leaf the sector root commits to.
    pub passed: bool,
}

impl SectorAudit {
    /// Whether the draw happened and every drawn leaf passed.
    pub fn passed(&self) -> bool {
        !self.leaves.is_empty() && self.leaves.values().all(|l| l.passed)
    }
}

impl LedgerState {
    /// Opens the audit of `sector`, just published (no audit when `audit_leaves` is 0).
    pub(super) fn open_audit(&mut self, sector: u32) {
        if self.key.audit_leaves == 0 {
            return;
        }
        self.newest.audits.insert(
            sector,
            SectorAudit {
                key_epoch: self.epoch.saturating_sub(1),
                opened_at: self.height,
                partials: Vec::new(),
                drawn_at: None,
                leaves: BTreeMap::new(),
            },
        );
    }

    /// Whether every published sector passed its audit (vacuous when audits are off).
    pub fn audits_passed(&self) -> bool {
        self.key.audit_leaves == 0 || self.newest.sectors.keys().all(|s| self.audit_passed(*s))
    }

    fn audit_passed(&self, sector: u32) -> bool {
        self.newest
            .audits
            .get(&sector)
            .is_some_and(SectorAudit::passed)
    }

    /// The draw input of `sector`'s audit and the root key's public package.
    fn audit_draw(
        &self,
        sector: u32,
    ) -> Result<([u8; 32], frost_ristretto255::keys::PublicKeyPackage, usize), LedgerError> {
        let record = self
            .newest
            .sectors
            .get(&sector)
            .ok_or(LedgerError::BadAudit("sector not published"))?;
        let audit = self
            .newest
            .audits
            .get(&sector)
            .ok_or(LedgerError::BadAudit("no audit open for the sector"))?;
        let result = self
            .dkg_results
            .get(&audit.key_epoch)
            .ok_or(LedgerError::DkgIncomplete(audit.key_epoch))?;
        let id = SectorId {
            chain: chain_digest(&self.chain_id),
            key: self.newest.index,
            sector,
            owner: record.owner,
            basis: record.basis.digest(),
        };
        let input = audit::draw_input(&id, &record.root, &record.commitments_root);
        Ok((input, result.ristretto255()?, usize::from(result.threshold)))
    }

    /// The audit draw's input for `sector` (what validators evaluate), if its audit is open.
    pub fn audit_draw_input(&self, sector: u32) -> Option<[u8; 32]> {
        self.audit_draw(sector).ok().map(|(input, _, _)| input)
    }

    /// `AuditPartial`: records a root-key holder's partial for `sector`'s draw; the `t`-th
    /// draws the leaves.
    pub(super) fn apply_audit_partial(
        &mut self,
        author: MemberId,
        sector: u32,
        partial: &Partial,
    ) -> Result<(), LedgerError> {
        if partial.member != author {
            return Err(LedgerError::BadPartial(
                "partial is not the author's".into(),
            ));
        }
        let (input, public, t) = self.audit_draw(sector)?;
        let key_epoch = self.newest.audits.get(&sector).map_or(0, |a| a.key_epoch);
        let qualified = self
            .dkg_results
            .get(&key_epoch)
            .is_some_and(|r| r.qualified.contains(&author));
        if !qualified {
            return Err(LedgerError::NotValidator(author));
        }
        let audit = self
            .newest
            .audits
            .get(&sector)
            .ok_or(LedgerError::BadAudit("no audit open for the sector"))?;
        if !audit.leaves.is_empty() {
            return Err(LedgerError::BadAudit("the audit is already drawn"));
        }
        if audit.partials.iter().any(|p| p.member == author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        tprf::verify_partial(&public, &input, partial)
            .map_err(|e| LedgerError::BadPartial(e.to_string()))?;
        let mut partials = audit.partials.clone();
        partials.push(*partial);
        let mut leaves = BTreeMap::new();
        let mut drawn_at = None;
        if partials.len() >= t {
            drawn_at = Some(self.height);
            let randomness = tprf::combine(&public, &input, &partials[..t])
                .map_err(|e| LedgerError::BadPartial(e.to_string()))?;
            let range = self.sector_range(sector)?;
            let drawn = audit::draw(&randomness, range, usize::from(self.key.audit_leaves))
                .map_err(|e| LedgerError::Layout(e.to_string()))?;
            leaves = drawn
                .into_iter()
                .map(|l| (l, LeafAudit::default()))
                .collect();
        }
        if let Some(audit) = self.newest.audits.get_mut(&sector) {
            audit.partials = partials;
            audit.drawn_at = drawn_at;
            audit.leaves = leaves;
        }
        Ok(())
    }

    /// `AuditReveal`: a holder of an audited leaf posts its share in clear with the leaf's
    /// commitment; checked against the sector's commitments root.
    pub(super) fn apply_audit_reveal(
        &mut self,
        author: MemberId,
        sector: u32,
        leaf: u64,
        share: &[u8; 32],
        commitment: &EncodedCommitment,
        path: &[[u8; 32]],
    ) -> Result<(), LedgerError> {
        let record = self
            .newest
            .sectors
            .get(&sector)
            .ok_or(LedgerError::BadAudit("sector not published"))?;
        let la = self.open_leaf(sector, leaf)?.clone();
        if la.shares.contains_key(&author) {
            return Err(LedgerError::BadAudit("share already revealed"));
        }
        if !record
            .basis
            .leaf_holders(leaf, self.key.leaf_holders)?
            .contains(&author)
        {
            return Err(LedgerError::BadAudit("the author does not hold the leaf"));
        }
        let revealed = RevealedShare {
            leaf,
            share: Share::new(author, share)
                .map_err(|_| LedgerError::BadAudit("share is not a canonical scalar"))?,
            commitment: commitment.clone(),
            path: path.to_vec(),
        };
        let k = usize::from(self.key.leaf_threshold);
        if path.len() != self.sector_height()? {
            return Err(LedgerError::BadAudit("commitment path of the wrong length"));
        }
        audit::check_share(&record.commitments_root, &revealed, k).map_err(|e| match e {
            audit::AuditError::CommitmentNotBound(_) => {
                LedgerError::BadAudit("commitment not under the commitments root")
            }
            audit::AuditError::BadShare { .. } => {
                LedgerError::BadAudit("share fails the leaf's commitment")
            }
            _ => LedgerError::BadAudit("commitment does not decode"),
        })?;
        let mut next = la.clone();
        next.commitment.get_or_insert_with(|| commitment.clone());
        next.shares.insert(author, *share);
        self.settle_leaf(sector, leaf, next)
    }

    /// `AuditPath`: the sector's owner posts an audited leaf's authentication path.
    pub(super) fn apply_audit_path(
        &mut self,
        author: MemberId,
        sector: u32,
        leaf: u64,
        path: &[[u8; 32]],
    ) -> Result<(), LedgerError> {
        let owner = self
            .newest
            .sectors
            .get(&sector)
            .map(|r| r.owner)
            .ok_or(LedgerError::BadAudit("sector not published"))?;
        if owner != author {
            return Err(LedgerError::NotSectorOwner(author));
        }
        let mut next = self.open_leaf(sector, leaf)?.clone();
        if next.path.is_some() {
            return Err(LedgerError::BadAudit("path already posted"));
        }
        if path.len() != self.sector_height()? {
            return Err(LedgerError::BadAudit(
                "authentication path of the wrong length",
            ));
        }
        next.path = Some(path.to_vec());
        self.settle_leaf(sector, leaf, next)
    }

    /// A drawn leaf of `sector` that has not passed yet.
    fn open_leaf(&self, sector: u32, leaf: u64) -> Result<&LeafAudit, LedgerError> {
        let la = self
            .newest
            .audits
            .get(&sector)
            .ok_or(LedgerError::BadAudit("no audit open for the sector"))?
            .leaves
            .get(&leaf)
            .ok_or(LedgerError::BadAudit("leaf not drawn for audit"))?;
        if la.passed {
            return Err(LedgerError::BadAudit("leaf already passed"));
        }
        Ok(la)
    }

    /// Records `next` as `leaf`'s progress; with `k` shares and the owner's path in, rebuilds
    /// the seed and checks it against the sector root first: the leaf passes, or the owner is
    /// convicted (and the audit goes with the sector). Writes nothing on error.
    fn settle_leaf(
        &mut self,
        sector: u32,
        leaf: u64,
        mut next: LeafAudit,
    ) -> Result<(), LedgerError> {
        if let Some(path) = next.path.clone() {
            if let Some(seed) = self.rebuild(&next)? {
                let record = self
                    .newest
                    .sectors
                    .get(&sector)
                    .ok_or(LedgerError::BadAudit("sector not published"))?;
                let layout = self.key_layout(self.newest.index)?;
                let q =
                    u32::try_from(leaf).map_err(|_| LedgerError::BadAudit("leaf out of range"))?;
                if !audit::leaf_matches(
                    layout.ots_type,
                    &layout.id,
                    layout.height(),
                    q,
                    &seed,
                    &path,
                    &record.root,
                ) {
                    let (owner, root) = (record.owner, record.root);
                    return self.convict_dealer(
                        owner,
                        sector,
                        "an audited leaf's seed does not generate the sector's leaf",
                        ConvictionEvidence::Audit {
                            leaf,
                            root,
                            seed: *seed.to_bytes(),
                            path,
                        },
                    );
                }
                next.passed = true;
            }
        }
        if let Some(la) = self
            .newest
            .audits
            .get_mut(&sector)
            .and_then(|a| a.leaves.get_mut(&leaf))
        {
            *la = next;
        }
        Ok(())
    }

    /// The seed `k` checked shares of a leaf rebuild, once `k` are in.
    fn rebuild(&self, la: &LeafAudit) -> Result<Option<shamir::LeafSecret>, LedgerError> {
        let k = usize::from(self.key.leaf_threshold);
        if la.shares.len() < k {
            return Ok(None);
        }
        let shares = la
            .shares
            .iter()
            .take(k)
            .map(|(m, v)| Share::new(*m, v))
            .collect::<Result<Vec<Share>, _>>()
            .map_err(|_| LedgerError::BadAudit("a recorded share does not decode"))?;
        let seed = shamir::reconstruct(&shares, k)
            .map_err(|_| LedgerError::BadAudit("the recorded shares do not rebuild a seed"))?;
        Ok(Some(seed))
    }

    /// The audit deadline, at the start of a block (before its transactions, like the sector
    /// window): an owner that has not posted the path of every drawn leaf of its sector
    /// within `sector_window` blocks of the draw withholds them (an honest owner posts them
    /// the block after the draw, from the tree it kept). It is recorded as having missed
    /// (`keygen_misses`, not evicted: it may be down), its sectors that have not passed their
    /// audit are discarded, and they go with its unpublished ones to the next rendezvous
    /// choice. Holders that do not reveal, or validators that do not draw, cost the owner
    /// nothing: the audit waits for them.
    pub(crate) fn begin_block_audits(&mut self) {
        let window = self.key.sector_window;
        let mut late: BTreeSet<MemberId> = BTreeSet::new();
        for (s, a) in &self.newest.audits {
            let Some(drawn_at) = a.drawn_at else {
                continue;
            };
            let withheld = a.leaves.values().any(|l| l.path.is_none());
            if withheld && self.height > drawn_at.saturating_add(window) {
                if let Some(r) = self.newest.sectors.get(s) {
                    late.insert(r.owner);
                }
            }
        }
        if late.is_empty() {
            return;
        }
        let mut excluded = self.keygen_excluded();
        excluded.extend(late.iter().copied());
        let Ok(owners) = self.branch_owners_without(&excluded) else {
            // Nobody else may take the sectors: the audits wait.
            return;
        };
        for (s, owner) in self.discard_unaudited(&late) {
            self.newest
                .keygen_misses
                .entry(owner)
                .or_insert(KeygenMiss {
                    key: self.newest.index,
                    sector: s,
                    epoch: self.epoch,
                    height: self.height,
                });
        }
        self.hand_over(&late, &owners);
    }

    /// Height `h − p` of a sector's tree.
    pub(super) fn sector_height(&self) -> Result<usize, LedgerError> {
        Ok(usize::from(self.key.tree_height - self.key.sector_bits))
    }

    /// The global leaves of `sector`.
    pub(super) fn sector_range(&self, sector: u32) -> Result<std::ops::Range<u64>, LedgerError> {
        let layout = self.key_layout(self.newest.index)?;
        let leaves = layout
            .sector_leaves(sector)
            .map_err(|e| LedgerError::Layout(e.to_string()))?;
        Ok(u64::from(leaves.start)..u64::from(leaves.end))
    }
}
