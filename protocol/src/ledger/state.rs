//! Ledger state and the transition function.
//!
//! [`LedgerState`] is everything the federation agrees on; its [`hash`](LedgerState::hash) is
//! the domain-separated BLAKE2b of its canonical encoding and goes into every block.
//! [`Ledger`] pairs the state with the hash of the last applied block (the chain tip), which
//! cannot be inside the hashed state because the block hash covers the state hash.
//!
//! Atomicity: [`LedgerState::apply_tx`] checks everything before it writes anything, and
//! [`Ledger::apply_block`] works on a copy that replaces the state only if the whole block,
//! including its state hash, is valid.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::epochs::{
    CheckpointDue, CheckpointFault, CheckpointSigning, DkgResult, DkgRound, EpochParams,
    SignedCheckpoint,
};
use super::tx::{peer_id_bytes, vote_digest, Evidence, SignedTx, TxBody, VoteKind};
use super::{
    chain_digest, encode, Block, CommitInfo, Genesis, GenesisError, KeyParams, LedgerError,
    STATE_DOMAIN,
};
use crate::admission::{Puzzle, MAX_DIFFICULTY};
use crate::assignment::{branch_owners, Weighted};
use crate::hash::hash32;
use crate::lms::{LmsSignature, VerifyError};
use crate::master::Master;
use crate::member::MemberId;
use crate::tprf::Partial;

/// Largest total stake (so that `3 * total` fits a `u64` in the consensus thresholds).
pub const MAX_TOTAL_STAKE: u64 = u64::MAX / 4;

/// Most transactions one block may carry.
pub const MAX_TXS_PER_BLOCK: usize = 4096;

/// Where a member stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Admitted; a validator while its stake is non-zero.
    Active,
    /// Left voluntarily.
    Exited,
    /// Removed on evidence.
    Evicted,
}

/// An admitted member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// libp2p peer id bytes.
    pub peer_id: Vec<u8>,
    /// X25519 share-encryption key.
    pub x25519: [u8; 32],
    /// Stake held.
    pub stake: u64,
    /// Next transaction nonce accepted from this member.
    pub nonce: u64,
    /// Status.
    pub status: MemberStatus,
}

/// A published sector (portion) of the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorRecord {
    /// The sector owner who generated it.
    pub owner: MemberId,
    /// Its Merkle root.
    pub root: [u8; 32],
    /// Current holders of its leaf shares (sorted).
    pub holders: Vec<MemberId>,
}

/// A committed signing request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequestRecord {
    /// Who asked.
    pub requester: MemberId,
    /// Digest to sign.
    pub digest: [u8; 32],
    /// Height at which the leaf was allocated.
    pub height: u64,
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

/// The replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    /// Chain id.
    pub chain_id: String,
    /// Admission PoW difficulty.
    pub pow_difficulty: u8,
    /// Key parameters.
    pub key: KeyParams,
    /// Inactivity bound for eviction.
    pub eviction_missed_heights: u64,
    /// Height of the last applied block (0 = genesis).
    pub height: u64,
    /// `prev_hash` of the last applied block (the genesis hash at height 0).
    pub parent_hash: [u8; 32],
    /// Members by identity.
    pub members: BTreeMap<MemberId, Member>,
    /// The validator set (member, stake) that decided the last applied block; the block after
    /// it carries that set's commit signatures.
    pub last_validators: BTreeMap<MemberId, u64>,
    /// Consecutive commits missed, per validator.
    pub missed: BTreeMap<MemberId, u64>,
    /// Current epoch.
    pub epoch: u64,
    /// The current epoch's beacon.
    pub beacon: [u8; 32],
    /// Validator set snapshot (member, stake) taken at the epoch start: the DKG participants.
    pub epoch_validators: BTreeMap<MemberId, u64>,
    /// Block windows of the epoch cycle.
    pub epochs: EpochParams,
    /// Height at which the current epoch started (0 for epoch 0).
    pub epoch_started_at: u64,
    /// The current epoch's DKG.
    pub dkg: DkgRound,
    /// Completed DKGs by the epoch they ran in (older ones pruned once no longer needed).
    pub dkg_results: BTreeMap<u64, DkgResult>,
    /// The first `t` valid beacon partials for epoch + 1, in ledger order.
    pub beacon_partials: Vec<Partial>,
    /// Epoch of the DKG whose Ed25519 key signs checkpoints now (`None` before the first DKG).
    pub checkpoint_key: Option<u64>,
    /// Next checkpoint sequence number.
    pub checkpoint_seq: u64,
    /// Checkpoints waiting to be signed, by sequence number (signed in order).
    pub checkpoints_due: BTreeMap<u64, CheckpointDue>,
    /// Signing progress of the first due checkpoint.
    pub checkpoint_signing: Option<CheckpointSigning>,
    /// The last [`KEEP_CHECKPOINTS`](super::epochs::KEEP_CHECKPOINTS) signed checkpoints.
    pub checkpoints: Vec<SignedCheckpoint>,
    /// The last bad checkpoint shares, attributed.
    pub checkpoint_faults: Vec<CheckpointFault>,
    /// Epoch of the current branch assignment, if any.
    pub assignment_epoch: Option<u64>,
    /// Owner of each sector.
    pub branch_owners: BTreeMap<u32, MemberId>,
    /// Published sectors.
    pub sectors: BTreeMap<u32, SectorRecord>,
    /// The master root once final.
    pub master_root: Option<[u8; 32]>,
    /// The next leaf to allocate; never decreases.
    pub next_leaf: u64,
    /// Signing requests by allocated leaf.
    pub sign_requests: BTreeMap<u64, SignRequestRecord>,
    /// Published signatures by leaf.
    pub signatures: BTreeMap<u64, Vec<u8>>,
    /// Evicted members and the height of eviction.
    pub evictions: BTreeMap<MemberId, u64>,
    /// Repairs, in order.
    pub repairs: Vec<RepairRecord>,
}

impl LedgerState {
    /// The state at genesis.
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, GenesisError> {
        let k = &genesis.key;
        if k.sector_bits > 20 {
            return Err(GenesisError::BadKeyParams("sector bits must be <= 20"));
        }
        k.layout(&chain_digest(&genesis.chain_id))?;
        if k.leaf_threshold == 0 || k.leaf_threshold > k.leaf_holders {
            return Err(GenesisError::BadKeyParams("need 1 <= k <= r"));
        }
        if genesis.pow_difficulty > MAX_DIFFICULTY {
            return Err(GenesisError::BadDifficulty(genesis.pow_difficulty));
        }
        let mut members = BTreeMap::new();
        let mut total: u64 = 0;
        for v in &genesis.validators {
            total = total
                .checked_add(v.stake)
                .ok_or(GenesisError::StakeOverflow)?;
            let m = Member {
                peer_id: peer_id_bytes(&v.id),
                x25519: v.x25519,
                stake: v.stake,
                nonce: 0,
                status: MemberStatus::Active,
            };
            if members.insert(v.id, m).is_some() {
                return Err(GenesisError::DuplicateValidator(v.id));
            }
        }
        if total == 0 {
            return Err(GenesisError::NoValidators);
        }
        // Malachite's threshold checks multiply stake by 3; transfers conserve the total.
        if total > MAX_TOTAL_STAKE {
            return Err(GenesisError::StakeOverflow);
        }
        let mut s = LedgerState {
            chain_id: genesis.chain_id.clone(),
            pow_difficulty: genesis.pow_difficulty,
            key: genesis.key.clone(),
            eviction_missed_heights: genesis.eviction_missed_heights,
            height: 0,
            parent_hash: genesis.hash(),
            members,
            last_validators: BTreeMap::new(),
            missed: BTreeMap::new(),
            epoch: 0,
            beacon: [0; 32],
            epoch_validators: BTreeMap::new(),
            epochs: genesis.epochs.clone(),
            epoch_started_at: 0,
            dkg: DkgRound::open(0, 0, BTreeMap::new()),
            dkg_results: BTreeMap::new(),
            beacon_partials: Vec::new(),
            checkpoint_key: None,
            checkpoint_seq: 0,
            checkpoints_due: BTreeMap::new(),
            checkpoint_signing: None,
            checkpoints: Vec::new(),
            checkpoint_faults: Vec::new(),
            assignment_epoch: None,
            branch_owners: BTreeMap::new(),
            sectors: BTreeMap::new(),
            master_root: None,
            next_leaf: 0,
            sign_requests: BTreeMap::new(),
            signatures: BTreeMap::new(),
            evictions: BTreeMap::new(),
            repairs: Vec::new(),
        };
        s.epoch_validators = s.validators();
        s.dkg = DkgRound::open(0, 0, s.roster());
        Ok(s)
    }

    /// The 32-byte state hash.
    pub fn hash(&self) -> [u8; 32] {
        hash32(STATE_DOMAIN, &[], &[0; 16], &[&encode(self)])
    }

    /// Active members with non-zero stake, and their stake: the validator set for the next
    /// height.
    pub fn validators(&self) -> BTreeMap<MemberId, u64> {
        self.members
            .iter()
            .filter(|(_, m)| m.status == MemberStatus::Active && m.stake > 0)
            .map(|(id, m)| (*id, m.stake))
            .collect()
    }

    /// Whether `id` is an active validator.
    pub fn is_validator(&self, id: &MemberId) -> bool {
        self.members
            .get(id)
            .is_some_and(|m| m.status == MemberStatus::Active && m.stake > 0)
    }

    fn total_active_stake_without(&self, id: &MemberId) -> u64 {
        self.validators()
            .iter()
            .filter(|(m, _)| *m != id)
            .map(|(_, s)| *s)
            .fold(0u64, |a, b| a.saturating_add(b))
    }

    fn require_validator(&self, id: &MemberId) -> Result<(), LedgerError> {
        if !self.members.contains_key(id) {
            return Err(LedgerError::UnknownMember(*id));
        }
        if !self.is_validator(id) {
            return Err(LedgerError::NotValidator(*id));
        }
        Ok(())
    }

    /// Checks and applies one signed transaction at the current height. On error nothing
    /// changes.
    pub fn apply_tx(&mut self, stx: &SignedTx) -> Result<(), LedgerError> {
        stx.verify(&self.chain_id)?;
        let tx = &stx.tx;
        let author = tx.author;
        let expected = self.members.get(&author).map_or(0, |m| m.nonce);
        if tx.nonce != expected {
            return Err(LedgerError::BadNonce {
                author,
                got: tx.nonce,
                expected,
            });
        }
        if let TxBody::Admit {
            peer_id,
            x25519,
            pow,
        } = &tx.body
        {
            // Admission is the only transaction from a non-member.
            if self.members.contains_key(&author) {
                return Err(LedgerError::AlreadyMember(author));
            }
            if *peer_id != peer_id_bytes(&author) {
                return Err(LedgerError::PeerIdMismatch(author));
            }
            let puzzle = Puzzle {
                chain_id: self.chain_id.clone(),
                peer_id: peer_id.clone(),
                x25519: *x25519,
            };
            puzzle.verify(pow, self.pow_difficulty)?;
            self.members.insert(
                author,
                Member {
                    peer_id: peer_id.clone(),
                    x25519: *x25519,
                    stake: 0,
                    nonce: 1,
                    status: MemberStatus::Active,
                },
            );
            return Ok(());
        }
        let Some(member) = self.members.get(&author) else {
            return Err(LedgerError::UnknownMember(author));
        };
        if member.status != MemberStatus::Active {
            return Err(LedgerError::NotValidator(author));
        }
        self.apply_body(author, &tx.body)?;
        if let Some(m) = self.members.get_mut(&author) {
            m.nonce += 1;
        }
        Ok(())
    }

    fn apply_body(&mut self, author: MemberId, body: &TxBody) -> Result<(), LedgerError> {
        match body {
            TxBody::Admit { .. } => unreachable!("handled by apply_tx"),
            TxBody::Transfer { to, amount } => self.transfer(author, *to, *amount),
            TxBody::Exit => {
                if self.is_validator(&author) && self.total_active_stake_without(&author) == 0 {
                    return Err(LedgerError::LastValidator);
                }
                if let Some(m) = self.members.get_mut(&author) {
                    m.status = MemberStatus::Exited;
                }
                Ok(())
            }
            TxBody::Evict { member, evidence } => self.evict(author, *member, evidence),
            TxBody::DkgCommitment { epoch, payload } => {
                self.apply_dkg_commitment(author, *epoch, payload)
            }
            TxBody::DkgComplaint {
                epoch,
                accused,
                payload,
            } => self.apply_dkg_complaint(author, *epoch, *accused, payload),
            TxBody::DkgAnswer {
                epoch,
                suite,
                envelope,
            } => self.apply_dkg_answer(author, *epoch, *suite, envelope),
            TxBody::DkgFinalize { epoch } => self.apply_dkg_finalize(author, *epoch),
            TxBody::BeaconPartial { epoch, partial } => {
                self.apply_beacon_partial(author, *epoch, partial)
            }
            TxBody::EpochStart { epoch, beacon } => {
                self.require_validator(&author)?;
                self.apply_epoch_start(*epoch, beacon)
            }
            TxBody::CheckpointCommit {
                checkpoint,
                attempt,
                commitments,
            } => self.apply_checkpoint_commit(author, *checkpoint, *attempt, commitments),
            TxBody::CheckpointShare {
                checkpoint,
                attempt,
                share,
            } => self.apply_checkpoint_share(author, *checkpoint, *attempt, share),
            TxBody::BranchAssignment { epoch, owners } => {
                self.require_validator(&author)?;
                if *epoch != self.epoch {
                    return Err(LedgerError::WrongEpoch {
                        got: *epoch,
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
                    if !self.sectors.contains_key(&sector) {
                        self.branch_owners.insert(sector, owner);
                    }
                }
                self.assignment_epoch = Some(*epoch);
                Ok(())
            }
            TxBody::SectorRoot {
                sector,
                root,
                holders,
            } => {
                if *sector >= self.key.sectors() {
                    return Err(LedgerError::SectorOutOfRange(*sector));
                }
                if self.assignment_epoch.is_none() {
                    return Err(LedgerError::NoAssignment);
                }
                if self.sectors.contains_key(sector) {
                    return Err(LedgerError::SectorPublished(*sector));
                }
                if self.branch_owners.get(sector) != Some(&author) {
                    return Err(LedgerError::NotSectorOwner(author));
                }
                self.check_holders(holders)?;
                self.sectors.insert(
                    *sector,
                    SectorRecord {
                        owner: author,
                        root: *root,
                        holders: holders.clone(),
                    },
                );
                Ok(())
            }
            TxBody::MasterRoot { root } => {
                self.require_validator(&author)?;
                if self.master_root.is_some() {
                    return Err(LedgerError::MasterFinal);
                }
                let missing = self.key.sectors() - self.sectors.len() as u32;
                if missing > 0 {
                    return Err(LedgerError::SectorsMissing { missing });
                }
                validate_master_root(&self.key, &self.chain_id, &self.sectors, root)?;
                self.master_root = Some(*root);
                self.enqueue_checkpoint(None);
                Ok(())
            }
            TxBody::SignRequest { digest } => {
                if self.master_root.is_none() {
                    return Err(LedgerError::MasterNotFinal);
                }
                let leaf = self.next_leaf;
                if leaf >= self.key.leaves() {
                    return Err(LedgerError::KeyExhausted(self.key.leaves()));
                }
                self.next_leaf = leaf + 1;
                self.sign_requests.insert(
                    leaf,
                    SignRequestRecord {
                        requester: author,
                        digest: *digest,
                        height: self.height,
                    },
                );
                Ok(())
            }
            TxBody::SignaturePublish { leaf, signature } => {
                if !self.sign_requests.contains_key(leaf) {
                    return Err(LedgerError::LeafNotAllocated(*leaf));
                }
                if self.signatures.contains_key(leaf) {
                    return Err(LedgerError::LeafSigned(*leaf));
                }
                if signature.is_empty() || signature.len() > super::MAX_PAYLOAD_BYTES {
                    return Err(LedgerError::BadPayload(format!(
                        "signature of {} bytes",
                        signature.len()
                    )));
                }
                self.verify_published_signature(*leaf, signature)?;
                self.signatures.insert(*leaf, signature.clone());
                Ok(())
            }
            TxBody::Repair {
                sector,
                lost,
                replacement,
            } => {
                self.require_validator(&author)?;
                let Some(rec) = self.sectors.get(sector) else {
                    return Err(LedgerError::BadRepair("sector not published"));
                };
                if !rec.holders.contains(lost) {
                    return Err(LedgerError::BadRepair("lost member is not a holder"));
                }
                if rec.holders.contains(replacement) {
                    return Err(LedgerError::BadRepair("replacement already a holder"));
                }
                if !self.is_validator(replacement) {
                    return Err(LedgerError::BadRepair("replacement is not a validator"));
                }
                let mut holders: Vec<MemberId> =
                    rec.holders.iter().copied().filter(|h| h != lost).collect();
                holders.push(*replacement);
                holders.sort();
                if let Some(rec) = self.sectors.get_mut(sector) {
                    rec.holders = holders;
                }
                self.repairs.push(super::state::RepairRecord {
                    height: self.height,
                    sector: *sector,
                    lost: *lost,
                    replacement: *replacement,
                });
                Ok(())
            }
        }
    }

    fn transfer(&mut self, from: MemberId, to: MemberId, amount: u64) -> Result<(), LedgerError> {
        if amount == 0 {
            return Err(LedgerError::InvalidTransfer("zero amount"));
        }
        if from == to {
            return Err(LedgerError::InvalidTransfer("transfer to self"));
        }
        let Some(dest) = self.members.get(&to) else {
            return Err(LedgerError::UnknownMember(to));
        };
        if dest.status != MemberStatus::Active {
            return Err(LedgerError::NotValidator(to));
        }
        let has = self.members.get(&from).map_or(0, |m| m.stake);
        if has < amount {
            return Err(LedgerError::InsufficientStake { has, needs: amount });
        }
        let new_dest = dest
            .stake
            .checked_add(amount)
            .ok_or(LedgerError::InvalidTransfer("overflow"))?;
        if let Some(m) = self.members.get_mut(&from) {
            m.stake = has - amount;
        }
        if let Some(m) = self.members.get_mut(&to) {
            m.stake = new_dest;
        }
        Ok(())
    }

    fn evict(
        &mut self,
        author: MemberId,
        member: MemberId,
        evidence: &Evidence,
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        self.require_validator(&member)?;
        match evidence {
            Evidence::Inactivity { missed_heights } => {
                let counted = self.missed.get(&member).copied().unwrap_or(0);
                if *missed_heights < self.eviction_missed_heights || *missed_heights > counted {
                    return Err(LedgerError::BadEvidence(
                        "missed-height count below the bound or above the ledger's count",
                    ));
                }
            }
            Evidence::Equivocation { a, b } => {
                if a.validator != member || b.validator != member {
                    return Err(LedgerError::BadEvidence("votes are not by the accused"));
                }
                if a.height != b.height || a.round != b.round || a.kind != b.kind {
                    return Err(LedgerError::BadEvidence("votes are for different steps"));
                }
                if a.value == b.value {
                    return Err(LedgerError::BadEvidence("votes do not conflict"));
                }
                if !a.verify(&self.chain_id) || !b.verify(&self.chain_id) {
                    return Err(LedgerError::BadEvidence("vote signature invalid"));
                }
            }
        }
        if self.total_active_stake_without(&member) == 0 {
            return Err(LedgerError::LastValidator);
        }
        if let Some(m) = self.members.get_mut(&member) {
            m.status = MemberStatus::Evicted;
        }
        self.evictions.insert(member, self.height);
        self.missed.remove(&member);
        Ok(())
    }

    /// Checks a `SignaturePublish`: the one-level HSS-encoded LMS signature is for leaf `leaf`
    /// and verifies on the request's digest under the master public key (the ledger's layout
    /// with the final master root).
    fn verify_published_signature(&self, leaf: u64, signature: &[u8]) -> Result<(), LedgerError> {
        let bad = |e: VerifyError| LedgerError::BadLmsSignature(e.to_string());
        let root = self.master_root.ok_or(LedgerError::MasterNotFinal)?;
        let request = self
            .sign_requests
            .get(&leaf)
            .ok_or(LedgerError::LeafNotAllocated(leaf))?;
        let layout = self
            .key
            .layout(&chain_digest(&self.chain_id))
            .map_err(|e| LedgerError::Layout(e.to_string()))?;
        let sig = LmsSignature::decode_hss(signature).map_err(|e| bad(e.into()))?;
        if u64::from(sig.q) != leaf {
            return Err(LedgerError::BadLmsSignature(format!(
                "signature is for leaf {}, not {leaf}",
                sig.q
            )));
        }
        layout
            .public_key(root)
            .verify(&request.digest, &sig)
            .map_err(bad)
    }

    fn check_holders(&self, holders: &[MemberId]) -> Result<(), LedgerError> {
        if holders.len() < usize::from(self.key.leaf_holders) {
            return Err(LedgerError::BadHolders("fewer than r holders"));
        }
        if holders.windows(2).any(|w| w[0] >= w[1]) {
            return Err(LedgerError::BadHolders("not sorted and unique"));
        }
        if holders.iter().any(|h| !self.is_validator(h)) {
            return Err(LedgerError::BadHolders("holder is not a validator"));
        }
        Ok(())
    }

    /// The owner of every sector for the current epoch's beacon and validator snapshot.
    pub fn compute_branch_owners(&self) -> Result<Vec<MemberId>, LedgerError> {
        let members: Vec<Weighted> = self
            .epoch_validators
            .iter()
            .filter(|(m, _)| self.is_validator(m))
            .map(|(m, s)| Weighted {
                member: *m,
                stake: *s,
            })
            .collect();
        Ok(branch_owners(&self.beacon, self.key.sectors(), &members)?)
    }

    /// Applies the block-level bookkeeping for `block` (height, parent, last commit and
    /// inactivity counters), then its transactions. Does not check the state hash.
    fn apply_block_body(&mut self, block: &Block) -> Result<(), LedgerError> {
        if block.height != self.height + 1 {
            return Err(LedgerError::BadHeight {
                got: block.height,
                expected: self.height + 1,
            });
        }
        if block.txs.len() > MAX_TXS_PER_BLOCK {
            return Err(LedgerError::TooManyTxs(block.txs.len()));
        }
        if !self.is_validator(&block.proposer) {
            return Err(LedgerError::BadProposer(block.proposer));
        }
        let deciding_set = self.validators();
        if block.height > 1 {
            self.check_last_commit(&block.last_commit, &block.prev_hash)?;
            let signers: BTreeSet<MemberId> = block
                .last_commit
                .signatures
                .iter()
                .map(|(m, _)| *m)
                .collect();
            let deciders: Vec<MemberId> = self.last_validators.keys().copied().collect();
            for v in &deciders {
                if !self.is_validator(v) {
                    // Exited or evicted since: nothing left to count.
                    self.missed.remove(v);
                } else if signers.contains(v) {
                    self.missed.remove(v);
                } else {
                    *self.missed.entry(*v).or_insert(0) += 1;
                }
            }
        } else if !block.last_commit.signatures.is_empty() {
            return Err(LedgerError::BadLastCommit(
                "height 1 has no previous commit",
            ));
        }
        self.height = block.height;
        self.parent_hash = block.prev_hash;
        for (index, tx) in block.txs.iter().enumerate() {
            self.apply_tx(tx).map_err(|e| LedgerError::InvalidTx {
                index,
                source: Box::new(e),
            })?;
        }
        self.last_validators = deciding_set;
        Ok(())
    }

    /// Checks that `commit` holds valid precommits for `value` at the previous height from
    /// more than two thirds of the stake that decided it.
    fn check_last_commit(&self, commit: &CommitInfo, value: &[u8; 32]) -> Result<(), LedgerError> {
        if commit.signatures.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(LedgerError::BadLastCommit("signers not sorted and unique"));
        }
        let mut power: u128 = 0;
        for (m, sig) in &commit.signatures {
            let Some(stake) = self.last_validators.get(m) else {
                return Err(LedgerError::BadLastCommit(
                    "signer not in the validator set",
                ));
            };
            let digest = vote_digest(
                &self.chain_id,
                self.height,
                commit.round,
                VoteKind::Precommit,
                Some(value),
                m,
            );
            if !super::tx::verify_vote_signature(m, &digest, sig) {
                return Err(LedgerError::BadLastCommit("invalid precommit signature"));
            }
            power += u128::from(*stake);
        }
        let total: u128 = self.last_validators.values().map(|s| u128::from(*s)).sum();
        if power * 3 <= total * 2 {
            return Err(LedgerError::BadLastCommit(
                "less than two thirds of the stake",
            ));
        }
        Ok(())
    }
}

/// Master-tree check: `root` must be the root of the master tree over the published sector
/// roots (`master::Master::from_sector_roots` with the ledger's layout, see
/// [`KeyParams::layout`]).
pub fn validate_master_root(
    key: &KeyParams,
    chain_id: &str,
    sectors: &BTreeMap<u32, SectorRecord>,
    root: &[u8; 32],
) -> Result<(), LedgerError> {
    let layout = key
        .layout(&chain_digest(chain_id))
        .map_err(|e| LedgerError::Layout(e.to_string()))?;
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

/// The ledger as a node holds it: the state plus the hash of the last applied block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The replicated state.
    pub state: LedgerState,
    /// Hash of the last applied block (the genesis hash at height 0).
    pub tip: [u8; 32],
}

impl Ledger {
    /// The ledger at genesis.
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, GenesisError> {
        Ok(Ledger {
            state: LedgerState::from_genesis(genesis)?,
            tip: genesis.hash(),
        })
    }

    /// Height of the last applied block.
    pub fn height(&self) -> u64 {
        self.state.height
    }

    /// Checks `block` against the current tip and returns the state it leads to, without
    /// changing `self`. This is what a validator runs before voting for a proposal.
    pub fn validate_block(&self, block: &Block) -> Result<LedgerState, LedgerError> {
        if block.prev_hash != self.tip {
            return Err(LedgerError::BadPrevHash);
        }
        let mut next = self.state.clone();
        next.apply_block_body(block)?;
        if next.hash() != block.state_hash {
            return Err(LedgerError::StateHashMismatch);
        }
        Ok(next)
    }

    /// Applies a block: all or nothing.
    pub fn apply_block(&mut self, block: &Block) -> Result<(), LedgerError> {
        let next = self.validate_block(block)?;
        self.state = next;
        self.tip = block.hash();
        Ok(())
    }

    /// Builds the next block as `proposer`: applies `candidates` in order, keeps those that
    /// apply and drops the rest (returned with their reasons), and fills in the state hash.
    pub fn build_block(
        &self,
        proposer: MemberId,
        last_commit: CommitInfo,
        candidates: Vec<SignedTx>,
    ) -> Result<(Block, Vec<(SignedTx, LedgerError)>), LedgerError> {
        let mut block = Block {
            height: self.state.height + 1,
            prev_hash: self.tip,
            proposer,
            last_commit,
            txs: Vec::new(),
            state_hash: [0; 32],
        };
        let mut next = self.state.clone();
        next.apply_block_body(&block)?;
        let mut rejected = Vec::new();
        for tx in candidates {
            if block.txs.len() >= MAX_TXS_PER_BLOCK {
                rejected.push((tx, LedgerError::TooManyTxs(MAX_TXS_PER_BLOCK + 1)));
                continue;
            }
            // apply_tx checks before it writes, so a failed transaction leaves `next` as is.
            match next.apply_tx(&tx) {
                Ok(()) => block.txs.push(tx),
                Err(e) => rejected.push((tx, e)),
            }
        }
        block.state_hash = next.hash();
        Ok((block, rejected))
    }
}
