//! The replicated ledger state and its transition function on transactions.
//!
//! Guarantees: [`LedgerState`] is everything the federation agrees on, kept in ordered maps
//! only; its [`hash`](LedgerState::hash) is the domain-separated BLAKE2b of its canonical
//! encoding. [`LedgerState::apply_tx`] checks everything before it writes anything, so a
//! rejected transaction leaves the state untouched.
//!
//! `apply_tx` checks the signature and nonce, then dispatches each [`TxBody`] variant to one
//! handler in the child module of its concern: [`members`] (admission, stake, exit, eviction),
//! [`key`] (branch assignment, sectors, master root, sign requests, signatures, repair),
//! [`keys`] (the keys by index, their rotation and which one allocates),
//! [`clients`] (authorized signing clients), [`changes`] (the approval by stake of client and
//! difficulty changes),
//! [`convictions`] (deal complaints against sector owners), [`sign_blame`] (bad contributions
//! and mask disputes of signing quorums), [`sector_window`] (owners that
//! do not land their sector in time; run at the start of every block, not by a transaction),
//! [`dkg`] (the epoch's DKG), [`epoch`] (beacon partials, epoch start) and [`checkpoints`]
//! (the checkpoint queue and its FROST rounds). A new concern (threshold signing, repair
//! rounds) gets its own child module and its dispatch arms here.

mod audit;
mod changes;
mod checkpoints;
mod clients;
mod convictions;
mod dkg;
mod epoch;
mod hashed_map;
mod key;
mod keys;
mod leaf_mismatch;
mod members;
mod sector_window;
mod sign_blame;
mod signatures;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::checkpoint_signing::{
    CheckpointDue, CheckpointFault, CheckpointSigning, SignedCheckpoint,
};
use super::codec::encode;
use super::dkg_round::{DkgResult, DkgRound};
use super::error::LedgerError;
use super::genesis::{
    chain_digest, EpochParams, Genesis, GenesisError, KeyParams, MAX_TOTAL_STAKE,
};
use super::sig_cache::SigCache;
use super::tx::{peer_id_bytes, SignedTx, TxBody};
use crate::admission::MAX_DIFFICULTY;
use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::tprf::Partial;

pub use audit::{LeafAudit, SectorAudit};
pub use changes::MAX_OPEN_CHANGES;
pub use clients::ClientRecord;
pub use convictions::{ConvictionEvidence, DealConviction};
pub use dkg::{validate_dkg_complaint_payload, validate_dkg_round1_payload};
pub use epoch::validate_epoch_beacon;
pub use hashed_map::HashedMap;
pub use key::{validate_master_root, HolderBasis, RepairRecord, SectorRecord, SignRequestRecord};
pub use keys::{leaf_id, split_leaf, KeyState};
pub use members::{
    Member, MemberStatus, Members, ADMISSION_EXPIRY_EPOCHS, MAX_ADMISSIONS_PER_EPOCH,
};
pub use sector_window::{KeygenMiss, SectorWindow};
pub use sign_blame::sign_session_id;
pub use signatures::Signatures;

const STATE_DOMAIN: Domain = Domain::new("seedfed-ledgerst");

/// The replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    /// Chain id.
    pub chain_id: String,
    /// Admission PoW difficulty now: what an `Admit` must meet (the genesis value until a
    /// `PowDifficulty` change applies).
    pub pow_difficulty: u8,
    /// The genesis difficulty: the floor below which no change may set
    /// [`pow_difficulty`](Self::pow_difficulty).
    pub min_pow_difficulty: u8,
    /// Key parameters.
    pub key: KeyParams,
    /// Inactivity bound for eviction.
    pub eviction_missed_heights: u64,
    /// Height of the last applied block (0 = genesis).
    pub height: u64,
    /// `prev_hash` of the last applied block (the genesis hash at height 0).
    pub parent_hash: [u8; 32],
    /// Members by identity (hashed by what changes: `hashed_map`).
    pub members: Members,
    /// `Admit` transactions applied in the current epoch (`members`).
    pub admitted_this_epoch: u32,
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
    /// The last [`KEEP_CHECKPOINTS`](super::checkpoint_signing::KEEP_CHECKPOINTS) signed
    /// checkpoints.
    pub checkpoints: Vec<SignedCheckpoint>,
    /// The last bad checkpoint shares, attributed.
    pub checkpoint_faults: Vec<CheckpointFault>,
    /// The newest key: being generated, or final and in use (`keys`).
    pub newest: KeyState,
    /// Older keys, by index, kept for the leaves they still allocate and for the signing of
    /// leaves they allocated (`keys`).
    pub older_keys: BTreeMap<u32, KeyState>,
    /// Authorized signing clients (`ledger::client`).
    pub clients: BTreeMap<MemberId, ClientRecord>,
    /// Changes (of the clients, of the difficulty) approved by some validators, not yet by
    /// more than 2/3 of the stake (`changes`).
    pub changes: BTreeMap<Change, BTreeSet<MemberId>>,
    /// Signing requests by allocated leaf (hashed by what changes: `hashed_map`).
    pub sign_requests: HashedMap<u64, SignRequestRecord>,
    /// Published signatures by leaf (the state hash covers their running digest).
    pub signatures: Signatures,
    /// Leaf holders convicted of a bad contribution to a signing (or of a lie about a pairwise
    /// mask), with the evidence; they are evicted, and no signing quorum includes them.
    pub sign_convictions: BTreeMap<MemberId, DealConviction>,
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
        k.layout(&chain_digest(&genesis.chain_id), 0)?;
        if k.leaf_threshold == 0 || k.leaf_threshold > k.leaf_holders {
            return Err(GenesisError::BadKeyParams("need 1 <= k <= r"));
        }
        if k.ack_threshold < k.leaf_threshold || k.ack_threshold > k.leaf_holders {
            return Err(GenesisError::BadKeyParams("need k <= ack threshold <= r"));
        }
        if u64::from(k.audit_leaves) >= k.leaves() >> k.sector_bits {
            return Err(GenesisError::BadKeyParams(
                "audit leaves must be fewer than a sector's leaves",
            ));
        }
        if k.rotate_percent > 100 {
            return Err(GenesisError::BadKeyParams(
                "rotate percent must be at most 100",
            ));
        }
        if k.sector_window == 0 {
            return Err(GenesisError::BadKeyParams("sector window must be > 0"));
        }
        if genesis.pow_difficulty > MAX_DIFFICULTY {
            return Err(GenesisError::BadDifficulty(genesis.pow_difficulty));
        }
        let mut members = BTreeMap::new();
        let mut total: u64 = 0;
        for v in &genesis.validators {
            if !crate::seal::x25519_key_is_valid(&v.x25519) {
                return Err(GenesisError::BadX25519(v.id));
            }
            total = total
                .checked_add(v.stake)
                .ok_or(GenesisError::StakeOverflow)?;
            let m = Member {
                peer_id: peer_id_bytes(&v.id),
                x25519: v.x25519,
                stake: v.stake,
                nonce: 0,
                status: MemberStatus::Active,
                admitted_epoch: 0,
            };
            if members.insert(v.id, m).is_some() {
                return Err(GenesisError::DuplicateValidator(v.id));
            }
        }
        if total == 0 {
            return Err(GenesisError::NoValidators);
        }
        let mut clients = BTreeMap::new();
        for c in &genesis.clients {
            let fresh = clients.insert(c.key, ClientRecord::new(c.quota)).is_none();
            if !fresh || ed25519_dalek::VerifyingKey::from_bytes(c.key.as_bytes()).is_err() {
                return Err(GenesisError::BadClient(c.key));
            }
        }
        // Malachite's threshold checks multiply stake by 3; transfers conserve the total.
        if total > MAX_TOTAL_STAKE {
            return Err(GenesisError::StakeOverflow);
        }
        let mut s = LedgerState {
            chain_id: genesis.chain_id.clone(),
            pow_difficulty: genesis.pow_difficulty,
            min_pow_difficulty: genesis.pow_difficulty,
            key: genesis.key.clone(),
            eviction_missed_heights: genesis.eviction_missed_heights,
            height: 0,
            parent_hash: genesis.hash(),
            members: members.into(),
            admitted_this_epoch: 0,
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
            newest: KeyState::new(0),
            older_keys: BTreeMap::new(),
            clients,
            changes: BTreeMap::new(),
            sign_requests: HashedMap::new(),
            signatures: Signatures::default(),
            sign_convictions: BTreeMap::new(),
            evictions: BTreeMap::new(),
            repairs: Vec::new(),
        };
        s.epoch_validators = s.validators();
        s.dkg = DkgRound::open(0, 0, s.roster());
        Ok(s)
    }

    /// The bookkeeping at the start of a block, its height set, before its transactions:
    /// the audit deadline, then the sector windows. Deterministic and infallible, so building
    /// a block and replaying it agree; public so a caller checking transactions ahead of a
    /// block sees the state they will meet.
    pub fn begin_block(&mut self) {
        self.begin_block_audits();
        self.begin_block_sector_windows();
    }

    /// The 32-byte state hash: every field in declaration order as `encode` writes it, except
    /// that the published signatures count by their running digest
    /// ([`Signatures::digest`]) and the members and sign requests by their multiset digests
    /// ([`HashedMap::digest`]), so hashing costs what the rest of the state holds and what
    /// changed in those. The same whether or not the state was [settled](Self::settle).
    pub fn hash(&self) -> [u8; 32] {
        // Exhaustive: a new field does not compile here until it is hashed.
        let LedgerState {
            chain_id,
            pow_difficulty,
            min_pow_difficulty,
            key,
            eviction_missed_heights,
            height,
            parent_hash,
            members,
            admitted_this_epoch,
            last_validators,
            missed,
            epoch,
            beacon,
            epoch_validators,
            epochs,
            epoch_started_at,
            dkg,
            dkg_results,
            beacon_partials,
            checkpoint_key,
            checkpoint_seq,
            checkpoints_due,
            checkpoint_signing,
            checkpoints,
            checkpoint_faults,
            newest,
            older_keys,
            clients,
            changes,
            sign_requests,
            signatures,
            sign_convictions,
            evictions,
            repairs,
        } = self;
        // Tuples of at most 16 (serde's bound); postcard writes nested tuples back to back.
        let first = (
            chain_id,
            pow_difficulty,
            min_pow_difficulty,
            key,
            eviction_missed_heights,
            height,
            parent_hash,
            members.digest(),
            admitted_this_epoch,
            last_validators,
            missed,
            epoch,
            beacon,
            epoch_validators,
            epochs,
            epoch_started_at,
        );
        let second = (
            dkg,
            dkg_results,
            beacon_partials,
            checkpoint_key,
            checkpoint_seq,
            checkpoints_due,
            checkpoint_signing,
            checkpoints,
            checkpoint_faults,
            newest,
            older_keys,
            clients,
            changes,
            sign_requests.digest(),
            signatures.digest(),
            sign_convictions,
        );
        let third = (evictions, repairs);
        hash32(
            STATE_DOMAIN,
            &[],
            &[0; 16],
            &[&encode(&(first, second, third))],
        )
    }

    /// Folds what changed in the hashed sections into their sums, so that [`LedgerState::hash`]
    /// and the next block's changes do not fold them again (done to every block's state).
    pub fn settle(&mut self) {
        self.members.settle();
        self.sign_requests.settle();
    }

    /// Checks and applies one signed transaction at the current height. On error nothing
    /// changes.
    pub fn apply_tx(&mut self, stx: &SignedTx) -> Result<(), LedgerError> {
        self.apply_tx_with(stx, None)
    }

    /// [`LedgerState::apply_tx`], with the transaction's signature, and the checks of its
    /// payload that depend only on its bytes (a relayed client request's signature, a
    /// published LMS signature), answered from `sigs` when they passed before (and remembered
    /// there once they pass).
    pub fn apply_tx_with(
        &mut self,
        stx: &SignedTx,
        mut sigs: Option<&mut SigCache>,
    ) -> Result<(), LedgerError> {
        match sigs.as_deref_mut() {
            Some(cache) => cache.verify(stx, &self.chain_id)?,
            None => stx.verify(&self.chain_id)?,
        }
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
            x25519_proof,
        } = &tx.body
        {
            // Admission is the only transaction from a non-member; it sets the nonce itself.
            return self.apply_admit(author, peer_id, x25519, pow, x25519_proof);
        }
        let Some(member) = self.members.get(&author) else {
            return Err(LedgerError::UnknownMember(author));
        };
        if member.status != MemberStatus::Active {
            return Err(LedgerError::NotValidator(author));
        }
        self.apply_body(author, &tx.body, sigs)?;
        if let Some(m) = self.members.get_mut(&author) {
            m.nonce += 1;
        }
        Ok(())
    }

    /// Dispatches a member's transaction to its handler.
    fn apply_body(
        &mut self,
        author: MemberId,
        body: &TxBody,
        sigs: Option<&mut SigCache>,
    ) -> Result<(), LedgerError> {
        match body {
            TxBody::Admit { .. } => unreachable!("handled by apply_tx"),
            // members
            TxBody::Transfer { to, amount } => self.apply_transfer(author, *to, *amount),
            TxBody::Exit => self.apply_exit(author),
            TxBody::Evict { member, evidence } => self.apply_evict(author, *member, evidence),
            // dkg
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
            // epoch
            TxBody::BeaconPartial { epoch, partial } => {
                self.apply_beacon_partial(author, *epoch, partial)
            }
            TxBody::EpochStart { epoch, beacon } => self.apply_epoch_start(author, *epoch, beacon),
            // checkpoints
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
            // key
            TxBody::BranchAssignment { epoch, owners } => {
                self.apply_branch_assignment(author, *epoch, owners)
            }
            TxBody::SectorRoot {
                sector,
                root,
                commitments_root,
                acks,
            } => self.apply_sector_root(author, *sector, root, commitments_root, acks),
            TxBody::DealComplaint { sector, complaint } => {
                self.apply_deal_complaint(author, *sector, complaint)
            }
            TxBody::AuditPartial { sector, partial } => {
                self.apply_audit_partial(author, *sector, partial)
            }
            TxBody::AuditReveal {
                sector,
                leaf,
                share,
                commitment,
                path,
            } => self.apply_audit_reveal(author, *sector, *leaf, share, commitment, path),
            TxBody::AuditPath { sector, leaf, path } => {
                self.apply_audit_path(author, *sector, *leaf, path)
            }
            TxBody::MasterRoot { root } => self.apply_master_root(author, root),
            TxBody::SignRequest { request } => self.apply_sign_request(author, request, sigs),
            // changes
            TxBody::ClientChange { change } => {
                self.apply_change(author, &Change::Client(change.clone()))
            }
            TxBody::PowDifficulty { difficulty } => {
                self.apply_change(author, &Change::PowDifficulty(*difficulty))
            }
            TxBody::SignaturePublish { leaf, signature } => {
                self.apply_signature_publish(*leaf, signature, sigs)
            }
            TxBody::SignBlame { leaf, evidence } => self.apply_sign_blame(author, *leaf, evidence),
            TxBody::Repair { .. } => self.apply_repair(),
            TxBody::DkgAck { epoch, attempt } => self.apply_dkg_ack(author, *epoch, *attempt),
            TxBody::Filler => Ok(()),
            TxBody::LeafMismatch { evidence } => self.apply_leaf_mismatch(author, evidence),
        }
    }
}
