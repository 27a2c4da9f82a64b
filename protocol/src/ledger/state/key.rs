//! The federation's signing key on the ledger: branch assignment, sector (portion) roots, the
//! master root, signing requests and published signatures, and holder repair.
//!
//! Guarantees: the branch assignment is the one recomputed from the epoch beacon and stake;
//! portion roots and the master root are immutable once published, and the master root is the
//! root over the published sector roots; every leaf is allocated at most once, ever, and a
//! published signature verifies under the master public key on the request's digest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::keys::split_leaf;
use super::LedgerState;
use crate::assignment::{branch_owners, leaf_holders, Weighted};
use crate::dealing::{verify_ack, DealAck, SectorId};
use crate::hash::{hash32, Domain};
use crate::ledger::client::SignedRequest;
use crate::ledger::codec::encode;
use crate::ledger::error::LedgerError;
use crate::ledger::genesis::{chain_digest, KeyParams};
use crate::ledger::sig_cache::SigCache;
use crate::ledger::tx::MAX_PAYLOAD_BYTES;
use crate::lms::{LmsPublicKey, LmsSignature, VerifyError};
use crate::master::Master;
use crate::member::MemberId;
use crate::sector::TreeLayout;

const BASIS: Domain = Domain::new("seedfed-kgbasis");

/// A published sector (portion) of the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorRecord {
    /// The sector owner who generated it.
    pub owner: MemberId,
    /// Its Merkle root.
    pub root: [u8; 32],
    /// The root of its leaves' Feldman commitments, which every acknowledging holder saw.
    pub commitments_root: [u8; 32],
    /// What its leaves' holders were chosen from: the epoch beacon and the validators with
    /// their stake when the sector root landed.
    pub basis: HolderBasis,
    /// Holders that acknowledged their shares (sorted); others are marked for repair.
    pub acked: Vec<MemberId>,
}

impl SectorRecord {
    /// The dealing id of this record: sector `sector` of key `key` on chain `chain`.
    pub fn id(&self, chain: [u8; 32], key: u32, sector: u32) -> SectorId {
        SectorId {
            chain,
            key,
            sector,
            owner: self.owner,
            basis: self.basis.digest(),
        }
    }
}

/// The inputs of leaf-holder selection (stake-weighted rendezvous hashing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderBasis {
    /// The beacon that keys the rendezvous hash.
    pub beacon: [u8; 32],
    /// The candidates and their stake, in member order.
    pub members: Vec<(MemberId, u64)>,
}

impl HolderBasis {
    /// The digest of the basis, bound into every batch and acknowledgement of a dealing
    /// (`dealing::SectorId::basis`).
    pub fn digest(&self) -> [u8; 32] {
        hash32(BASIS, &[], &[0; 16], &[&encode(self)])
    }

    /// The `r` holders of global leaf `leaf`.
    pub fn leaf_holders(&self, leaf: u64, r: u16) -> Result<Vec<MemberId>, LedgerError> {
        Ok(leaf_holders(
            &self.beacon,
            leaf,
            &self.weighted(),
            usize::from(r),
        )?)
    }

    /// The `r` holders of every global leaf in `leaves`, in order (the weights built once).
    pub fn holders_of(
        &self,
        leaves: std::ops::Range<u64>,
        r: u16,
    ) -> Result<Vec<Vec<MemberId>>, LedgerError> {
        let weighted = self.weighted();
        leaves
            .map(|leaf| Ok(leaf_holders(&self.beacon, leaf, &weighted, usize::from(r))?))
            .collect()
    }

    /// The candidates as rendezvous weights.
    fn weighted(&self) -> Vec<Weighted> {
        self.members
            .iter()
            .map(|(m, s)| Weighted {
                member: *m,
                stake: *s,
            })
            .collect()
    }
}

/// A committed signing request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequestRecord {
    /// The validator that relayed the request (the signing service).
    pub requester: MemberId,
    /// The authorized client that signed the request.
    pub client: MemberId,
    /// The request's epoch and nonce: with the client, they name the request.
    pub request: (u64, u64),
    /// Digest to sign.
    pub digest: [u8; 32],
    /// Height at which the leaf was allocated.
    pub height: u64,
    /// Who rebuilds the one-time key and signs: the relay (`None`), or in key issuance mode
    /// the client, whose contributions are sealed to this X25519 key.
    pub issue_to: Option<[u8; 32]>,
}

/// A recorded repair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairRecord {
    /// Height of the repair.
    pub height: u64,
    /// Sector repaired.
    pub sector: u32,
    /// Holder replaced.
    pub lost: MemberId,
    /// New holder.
    pub replacement: MemberId,
}

impl LedgerState {
    /// `BranchAssignment`: records the owner of every sector for the current epoch, checked by
    /// recomputation; published sectors keep the owner who generated them.
    pub(super) fn apply_branch_assignment(
        &mut self,
        author: MemberId,
        epoch: u64,
        owners: &[MemberId],
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        if epoch != self.epoch {
            return Err(LedgerError::WrongEpoch {
                got: epoch,
                expected: self.epoch,
            });
        }
        let computed = self.compute_branch_owners()?;
        if *owners != computed {
            return Err(LedgerError::AssignmentMismatch);
        }
        for (i, owner) in computed.into_iter().enumerate() {
            let sector = i as u32;
            // Published sectors keep the owner who generated them.
            if !self.newest.sectors.contains_key(&sector) {
                self.newest.branch_owners.insert(sector, owner);
            }
        }
        self.newest.assignment_epoch = Some(epoch);
        Ok(())
    }

    /// `SectorRoot`: the sector's owner publishes its portion root and leaf-share holders.
    pub(super) fn apply_sector_root(
        &mut self,
        author: MemberId,
        sector: u32,
        root: &[u8; 32],
        commitments_root: &[u8; 32],
        acks: &[DealAck],
    ) -> Result<(), LedgerError> {
        if sector >= self.key.sectors() {
            return Err(LedgerError::SectorOutOfRange(sector));
        }
        if self.newest.assignment_epoch.is_none() {
            return Err(LedgerError::NoAssignment);
        }
        if self.newest.sectors.contains_key(&sector) {
            return Err(LedgerError::SectorPublished(sector));
        }
        if self.newest.branch_owners.get(&sector) != Some(&author) {
            return Err(LedgerError::NotSectorOwner(author));
        }
        let basis = self.holder_basis();
        let id = SectorId {
            chain: chain_digest(&self.chain_id),
            key: self.newest.index,
            sector,
            owner: author,
            basis: basis.digest(),
        };
        let mut acked = BTreeSet::new();
        for ack in acks {
            let bad = |reason| LedgerError::BadAck {
                holder: ack.holder,
                reason,
            };
            if !basis.members.iter().any(|(m, _)| *m == ack.holder) {
                return Err(bad("not a validator of this epoch"));
            }
            if !acked.insert(ack.holder) {
                return Err(bad("acknowledged twice"));
            }
            verify_ack(&id, ack, commitments_root, root).map_err(|_| bad("does not verify"))?;
        }
        let range = self.sector_range(sector)?;
        for (leaf, holders) in range
            .clone()
            .zip(basis.holders_of(range, self.key.leaf_holders)?)
        {
            let got = holders.iter().filter(|h| acked.contains(*h)).count();
            if got < usize::from(self.key.ack_threshold) {
                return Err(LedgerError::NotEnoughAcks {
                    leaf,
                    got,
                    need: self.key.ack_threshold,
                });
            }
        }
        self.newest.sector_windows.remove(&sector);
        self.newest.sectors.insert(
            sector,
            SectorRecord {
                owner: author,
                root: *root,
                commitments_root: *commitments_root,
                basis,
                acked: acked.into_iter().collect(),
            },
        );
        self.open_audit(sector);
        Ok(())
    }

    /// The leaf-holder basis in force: the epoch beacon and the validators of the epoch
    /// snapshot with their stake (the same inputs as the branch assignment). Owners deal with
    /// it; a sector root is checked against it, and keeps it.
    pub fn holder_basis(&self) -> HolderBasis {
        HolderBasis {
            beacon: self.beacon,
            members: self
                .epoch_validators
                .iter()
                .filter(|(m, _)| self.is_validator(m))
                .map(|(m, s)| (*m, *s))
                .collect(),
        }
    }

    /// `MasterRoot`: finalises the master root once every sector is published, and queues a
    /// checkpoint.
    pub(super) fn apply_master_root(
        &mut self,
        author: MemberId,
        root: &[u8; 32],
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        if self.newest.master_root.is_some() {
            return Err(LedgerError::MasterFinal);
        }
        let missing = self.key.sectors() - self.newest.sectors.len() as u32;
        if missing > 0 {
            return Err(LedgerError::SectorsMissing { missing });
        }
        if !self.audits_passed() {
            let pending = self
                .newest
                .sectors
                .keys()
                .filter(|s| !self.newest.audits.get(s).is_some_and(|a| a.passed()))
                .count() as u32;
            return Err(LedgerError::AuditsPending { pending });
        }
        let layout = self.key_layout(self.newest.index)?;
        validate_master_root(&self.key, layout, &self.newest.sectors, root)?;
        self.newest.master_root = Some(*root);
        self.enqueue_checkpoint(None);
        Ok(())
    }

    /// `SignRequest`: checks the relayed client request (`clients`) and allocates the next
    /// unused, unretired leaf of the allocating key to it (`keys`).
    pub(super) fn apply_sign_request(
        &mut self,
        author: MemberId,
        signed: &SignedRequest,
        sigs: Option<&mut SigCache>,
    ) -> Result<(), LedgerError> {
        let next = self.next_allocation()?;
        self.check_client_request_with(&author, signed, sigs)?;
        let leaf = self.allocate_leaf(next);
        self.use_client_request(signed);
        let req = &signed.request;
        self.sign_requests.insert(
            leaf,
            SignRequestRecord {
                requester: author,
                client: req.client,
                request: (req.epoch, req.nonce),
                digest: req.digest,
                height: self.height,
                issue_to: req.issue_to,
            },
        );
        Ok(())
    }

    /// `SignaturePublish`: records the LMS signature of an allocated leaf, once.
    pub(super) fn apply_signature_publish(
        &mut self,
        leaf: u64,
        signature: &[u8],
        sigs: Option<&mut SigCache>,
    ) -> Result<(), LedgerError> {
        if !self.sign_requests.contains_key(&leaf) {
            return Err(LedgerError::LeafNotAllocated(leaf));
        }
        if self.signatures.contains_key(&leaf) {
            return Err(LedgerError::LeafSigned(leaf));
        }
        if signature.is_empty() || signature.len() > MAX_PAYLOAD_BYTES {
            return Err(LedgerError::BadPayload(format!(
                "signature of {} bytes",
                signature.len()
            )));
        }
        self.verify_published_signature(leaf, signature, sigs)?;
        self.signatures.insert(leaf, signature.to_vec());
        Ok(())
    }

    /// `Repair`: refused. The old rule let any validator name the replacement holder, so
    /// colluders could rotate themselves into every holder set; repair comes back with the
    /// holders chosen by the ledger (`docs/protocol.md`).
    pub(super) fn apply_repair(&mut self) -> Result<(), LedgerError> {
        Err(LedgerError::RepairDisabled)
    }

    /// Checks a `SignaturePublish`: the one-level HSS-encoded LMS signature is for leaf id
    /// `leaf` and verifies on the request's digest under the master public key of the leaf's
    /// key. Answered from `sigs` when the same signature passed on the same leaf, digest and
    /// key before.
    fn verify_published_signature(
        &self,
        leaf: u64,
        signature: &[u8],
        sigs: Option<&mut SigCache>,
    ) -> Result<(), LedgerError> {
        let bad = |e: VerifyError| LedgerError::BadLmsSignature(e.to_string());
        let request = self
            .sign_requests
            .get(&leaf)
            .ok_or(LedgerError::LeafNotAllocated(leaf))?;
        let (key, q) = split_leaf(leaf);
        let public = self.key_public(key).ok_or(LedgerError::MasterNotFinal)?;
        let check = || {
            let sig = LmsSignature::decode_hss(signature).map_err(|e| bad(e.into()))?;
            if u64::from(sig.q) != q {
                return Err(LedgerError::BadLmsSignature(format!(
                    "signature is for leaf {}, not {q} of key {key}",
                    sig.q
                )));
            }
            public.verify(&request.digest, &sig).map_err(bad)
        };
        match sigs {
            None => check(),
            Some(cache) => cache.check_once(
                "published LMS signature",
                &[
                    &public.encode(),
                    &leaf.to_le_bytes(),
                    &request.digest,
                    signature,
                ],
                check,
            ),
        }
    }

    /// The master LMS public key checkpoints name: the newest key whose master root is final
    /// (`None` before the first one is).
    pub fn master_public_key(&self) -> Option<LmsPublicKey> {
        self.key_public(self.newest_final_key()?.index)
    }

    /// The owner of every sector for the current epoch's beacon and validator snapshot,
    /// leaving out the members convicted of a bad dealing of the key being generated
    /// ([`KeyState::keygen_convictions`](super::KeyState::keygen_convictions)) and those that
    /// missed a sector window ([`KeyState::keygen_misses`](super::KeyState::keygen_misses)).
    pub fn compute_branch_owners(&self) -> Result<Vec<MemberId>, LedgerError> {
        self.branch_owners_without(&self.keygen_excluded())
    }

    /// Gives every unpublished sector owned by a member of `from` to its owner in `owners`
    /// (a rendezvous choice without them, [`Self::branch_owners_without`]).
    pub(super) fn hand_over(&mut self, from: &BTreeSet<MemberId>, owners: &[MemberId]) {
        for (s, o) in self.newest.branch_owners.iter_mut() {
            if from.contains(o) && !self.newest.sectors.contains_key(s) {
                if let Some(next) = owners.get(*s as usize) {
                    *o = *next;
                }
            }
        }
    }

    /// Discards the published sectors of members of `of` that have not passed their audit
    /// (none when audits are off): such an owner will post no more paths. Returns them with
    /// their owners.
    pub(super) fn discard_unaudited(&mut self, of: &BTreeSet<MemberId>) -> Vec<(u32, MemberId)> {
        if self.key.audit_leaves == 0 {
            return Vec::new();
        }
        let discarded: Vec<(u32, MemberId)> = self
            .newest
            .sectors
            .iter()
            .filter(|(s, r)| {
                of.contains(&r.owner) && !self.newest.audits.get(s).is_some_and(|a| a.passed())
            })
            .map(|(s, r)| (*s, r.owner))
            .collect();
        for (s, _) in &discarded {
            self.newest.sectors.remove(s);
            self.newest.audits.remove(s);
        }
        discarded
    }

    /// The owner of every sector by rendezvous over the epoch's validators except `excluded`.
    /// Rendezvous hashing moves only the excluded members' sectors.
    pub(super) fn branch_owners_without(
        &self,
        excluded: &BTreeSet<MemberId>,
    ) -> Result<Vec<MemberId>, LedgerError> {
        let members: Vec<Weighted> = self
            .epoch_validators
            .iter()
            .filter(|(m, _)| self.is_validator(m) && !excluded.contains(m))
            .map(|(m, s)| Weighted {
                member: *m,
                stake: *s,
            })
            .collect();
        Ok(branch_owners(&self.beacon, self.key.sectors(), &members)?)
    }
}

/// Master-tree check: `root` must be the root of the master tree over the published sector
/// roots (`master::Master::from_sector_roots` with the key's layout, see
/// [`KeyParams::layout`]).
pub fn validate_master_root(
    key: &KeyParams,
    layout: TreeLayout,
    sectors: &BTreeMap<u32, SectorRecord>,
    root: &[u8; 32],
) -> Result<(), LedgerError> {
    let roots: Vec<[u8; 32]> = (0..key.sectors())
        .map(|i| sectors.get(&i).map(|r| r.root))
        .collect::<Option<_>>()
        .ok_or(LedgerError::SectorsMissing { missing: 1 })?;
    let master = Master::from_sector_roots(layout, &roots)
        .map_err(|e| LedgerError::Layout(e.to_string()))?;
    if master.root() != *root {
        return Err(LedgerError::BadMasterRoot);
    }
    Ok(())
}
