//! The federation ledger: a deterministic state machine over signed transactions.
//!
//! Guarantees: applying the same genesis and the same sequence of blocks gives byte-identical
//! state, and so the same 32-byte [`state hash`](LedgerState::hash), on every node. State is kept
//! in ordered maps only and encoded with one fixed binary encoding (postcard, see [`encode`]);
//! nothing depends on iteration order of hash maps, clocks or randomness. An invalid
//! transaction is rejected with a [`LedgerError`] and leaves the state untouched; a block that
//! contains an invalid transaction is an invalid proposal as a whole (honest proposers include
//! only transactions that apply, validators vote nil on anything else), and applying it leaves
//! the state untouched too.
//!
//! Submodules: [`tx`] (transactions, their signatures and evidence), [`state`] (the state and
//! the transition function), [`epochs`] (the epoch cycle: DKG windows, qualified set, beacon,
//! checkpoints), and the block type here.
//!
//! Chain ids: the ledger and admission use the human-readable `chain_id` string; everything
//! that needs 32 bytes (DKG session context, beacon input, checkpoints, light clients) uses
//! [`chain_digest`] of it.

pub mod epochs;
pub mod state;
pub mod tx;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hash::{hash32, Domain};
use crate::lmots::LmotsType;
use crate::lms::LmsType;
use crate::member::MemberId;
use crate::sector::TreeLayout;

pub use epochs::{
    beacon_input, dkg_session_id, validate_dkg_complaint_payload, validate_dkg_round1_payload,
    validate_epoch_beacon, validator_set_hash, CheckpointBody, CheckpointDue, CheckpointFault,
    CheckpointSigning, ComplaintKey, ComplaintPayload, DkgExclusion, DkgFailure, DkgResult,
    DkgRound, DkgSuite, EpochParams, Round1Payload, SignedCheckpoint,
};
pub use state::{
    validate_master_root, Ledger, LedgerState, Member, MemberStatus, SectorRecord,
    SignRequestRecord, MAX_TXS_PER_BLOCK,
};
pub use tx::{
    peer_id_bytes, verify_vote_signature, vote_digest, Evidence, Signature64, SignedTx, Tx, TxBody,
    VoteKind, VoteRecord, MAX_PAYLOAD_BYTES,
};

const STATE_DOMAIN: Domain = Domain::new("seedfed-ledgerst");
const BLOCK_DOMAIN: Domain = Domain::new("seedfed-block");
const GENESIS_DOMAIN: Domain = Domain::new("seedfed-genesis");
const CHAIN_DOMAIN: Domain = Domain::new("seedfed-chainid");
const KEY_ID_DOMAIN: Domain = Domain::new("seedfed-lmskeyid");

/// The 32-byte form of a chain id: BLAKE2b-256 of the UTF-8 string, personalised
/// `seedfed-chainid`. Used wherever 32 bytes are needed (DKG sessions, the beacon input,
/// checkpoints, light clients); transaction and vote signatures keep the string itself.
pub fn chain_digest(chain_id: &str) -> [u8; 32] {
    hash32(CHAIN_DOMAIN, &[], &[0; 16], &[chain_id.as_bytes()])
}

/// The canonical binary encoding of ledger values: postcard 1 (varint integers, length-prefixed
/// sequences and strings, maps in key order because every map is a `BTreeMap`). Hashes are
/// always computed over this encoding of the *decoded* value, so a non-canonical byte string
/// on the wire cannot give a second hash for the same value.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value)
        .unwrap_or_else(|_| unreachable!("postcard encoding of in-memory values cannot fail"))
}

/// Decodes a value encoded by [`encode`]; trailing bytes are an error.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

/// A byte string that is not a valid encoding of the expected type.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed ledger encoding: {0}")]
pub struct DecodeError(pub String);

/// Parameters of the federation's signing key, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParams {
    /// Height `h` of the whole LMS tree: the key has `2^h` one-time keys.
    pub tree_height: u8,
    /// `p`: the tree is split into `2^p` sectors (branches), `p <= h`.
    pub sector_bits: u8,
    /// `k`: shares needed to reconstruct a leaf seed.
    pub leaf_threshold: u16,
    /// `r`: holders of each leaf seed's shares.
    pub leaf_holders: u16,
}

impl KeyParams {
    /// Number of one-time keys, `2^h`.
    pub fn leaves(&self) -> u64 {
        1u64 << self.tree_height
    }

    /// Number of sectors, `2^p`.
    pub fn sectors(&self) -> u32 {
        1u32 << self.sector_bits
    }

    /// The LMS layout of the federation's (first) key on chain `chain_digest`: LMS type of
    /// height `h` (SHA-256/N32), LM-OTS `SHA256_N32_W4`, `p` sector levels, and the key
    /// identifier `I` = the first 16 bytes of BLAKE2b(`seedfed-lmskeyid`, chain digest, key
    /// number 0). Sector owners build their portions with this layout and the ledger checks the
    /// master root and published signatures against it.
    pub fn layout(&self, chain_digest: &[u8; 32]) -> Result<TreeLayout, GenesisError> {
        let lms_type = LmsType::from_height(u32::from(self.tree_height)).ok_or(
            GenesisError::BadKeyParams("tree height must be 5, 10, 15, 20 or 25"),
        )?;
        let digest = hash32(
            KEY_ID_DOMAIN,
            &[],
            &[0; 16],
            &[chain_digest, &0u64.to_le_bytes()],
        );
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        TreeLayout::new(lms_type, LmotsType::W4, id, u32::from(self.sector_bits))
            .map_err(|_| GenesisError::BadKeyParams("sector bits must be below the tree height"))
    }
}

/// One validator in the genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Ed25519 identity.
    pub id: MemberId,
    /// Initial stake (voting power).
    pub stake: u64,
    /// X25519 key for end-to-end share encryption.
    pub x25519: [u8; 32],
}

/// The genesis document: everything the first block builds on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Chain (federation) identifier; part of every signature and proof of work.
    pub chain_id: String,
    /// Leading zero bits required of an admission proof of work.
    pub pow_difficulty: u8,
    /// Initial validators.
    pub validators: Vec<GenesisValidator>,
    /// Parameters of the signing key.
    pub key: KeyParams,
    /// A validator that misses this many consecutive commits may be evicted for inactivity.
    pub eviction_missed_heights: u64,
    /// Block windows of the epoch cycle (DKG rounds, minimum epoch length).
    pub epochs: EpochParams,
}

impl Genesis {
    /// The hash of the genesis document; the `prev_hash` of block 1.
    pub fn hash(&self) -> [u8; 32] {
        hash32(GENESIS_DOMAIN, &[], &[0; 16], &[&encode(self)])
    }
}

/// Why a genesis document is unusable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GenesisError {
    /// No validator with non-zero stake.
    #[error("genesis has no validator with stake")]
    NoValidators,
    /// A validator appears twice.
    #[error("validator {0} listed twice in genesis")]
    DuplicateValidator(MemberId),
    /// Key parameters are out of range.
    #[error("bad key parameters: {0}")]
    BadKeyParams(&'static str),
    /// PoW difficulty above the admission module's maximum.
    #[error("proof-of-work difficulty {0} out of range")]
    BadDifficulty(u8),
    /// Total stake above [`state::MAX_TOTAL_STAKE`].
    #[error("total stake too large")]
    StakeOverflow,
}

/// The signatures of the previous block's commit that a block records (Tendermint's
/// "last commit"). The ledger checks each one and counts who did not sign, which is the
/// evidence for eviction by inactivity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommitInfo {
    /// Consensus round in which the previous block was decided.
    pub round: u32,
    /// Precommit signatures for the previous block, sorted by member, no duplicates.
    pub signatures: Vec<(MemberId, Signature64)>,
}

/// A block: header fields plus transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Height, starting at 1.
    pub height: u64,
    /// Hash of the previous block (the genesis hash for height 1).
    pub prev_hash: [u8; 32],
    /// The proposer.
    pub proposer: MemberId,
    /// Commit of the previous block (empty at height 1).
    pub last_commit: CommitInfo,
    /// Transactions, applied in order.
    pub txs: Vec<SignedTx>,
    /// State hash after applying this block.
    pub state_hash: [u8; 32],
}

impl Block {
    /// The block hash: domain-separated BLAKE2b of the block's canonical encoding. This is the
    /// consensus value id.
    pub fn hash(&self) -> [u8; 32] {
        hash32(BLOCK_DOMAIN, &[], &[0; 16], &[&encode(self)])
    }
}

/// Why a transaction or a block was rejected. Every variant names what was wrong with the
/// input; the state is unchanged whenever one is returned.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LedgerError {
    /// The transaction signature does not verify under the author's key.
    #[error("bad transaction signature from {0}")]
    BadSignature(MemberId),
    /// The author's key is not a valid Ed25519 point.
    #[error("author {0} is not a valid Ed25519 key")]
    BadAuthorKey(MemberId),
    /// The nonce is not the author's next sequence number (replay or gap).
    #[error("nonce {got} from {author}, expected {expected}")]
    BadNonce {
        /// The author.
        author: MemberId,
        /// Nonce in the transaction.
        got: u64,
        /// The next nonce the ledger accepts.
        expected: u64,
    },
    /// The author (or another named member) is not an admitted member.
    #[error("{0} is not a member")]
    UnknownMember(MemberId),
    /// The member is not an active validator (no stake, exited or evicted).
    #[error("{0} is not an active validator")]
    NotValidator(MemberId),
    /// Admission by an identity that is already known.
    #[error("{0} is already a member")]
    AlreadyMember(MemberId),
    /// The admission peer id does not encode the author's key.
    #[error("peer id does not belong to {0}")]
    PeerIdMismatch(MemberId),
    /// The admission proof of work does not verify.
    #[error("admission proof rejected: {0}")]
    Admission(#[from] crate::admission::AdmissionError),
    /// A transfer of more than the author holds.
    #[error("insufficient stake: has {has}, needs {needs}")]
    InsufficientStake {
        /// Stake held.
        has: u64,
        /// Stake the transaction moves.
        needs: u64,
    },
    /// Zero-amount or self transfer, or an arithmetic overflow.
    #[error("invalid transfer: {0}")]
    InvalidTransfer(&'static str),
    /// The change would leave no active validator.
    #[error("the change would leave no active validator")]
    LastValidator,
    /// Eviction evidence does not prove what it claims.
    #[error("bad eviction evidence: {0}")]
    BadEvidence(&'static str),
    /// An epoch number other than the one expected.
    #[error("epoch {got}, expected {expected}")]
    WrongEpoch {
        /// Epoch in the transaction.
        got: u64,
        /// Epoch the ledger expects.
        expected: u64,
    },
    /// A DKG message was already recorded for this sender and epoch.
    #[error("duplicate DKG message from {0}")]
    DuplicateDkg(MemberId),
    /// A payload is larger than [`MAX_PAYLOAD_BYTES`] or otherwise malformed.
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// A branch assignment that differs from the one computed from the beacon and stake.
    #[error("branch assignment does not match the computed one")]
    AssignmentMismatch,
    /// Assignment could not be computed.
    #[error("assignment failed: {0}")]
    Assignment(#[from] crate::assignment::AssignmentError),
    /// No branch assignment exists for the current epoch yet.
    #[error("no branch assignment for the current epoch")]
    NoAssignment,
    /// A sector index outside `0..2^p`.
    #[error("sector {0} out of range")]
    SectorOutOfRange(u32),
    /// The author does not own the sector.
    #[error("{0} does not own that sector")]
    NotSectorOwner(MemberId),
    /// The sector's root is already published (portion roots are immutable).
    #[error("sector {0} already published")]
    SectorPublished(u32),
    /// A holder set of the wrong size or with duplicates or non-validators.
    #[error("bad holder set: {0}")]
    BadHolders(&'static str),
    /// Master root finalisation before all sectors are published.
    #[error("{missing} sectors not yet published")]
    SectorsMissing {
        /// Sectors without a root.
        missing: u32,
    },
    /// The master root is already final.
    #[error("master root already finalised")]
    MasterFinal,
    /// Signing requested before the master root is final.
    #[error("master root not final")]
    MasterNotFinal,
    /// Every leaf of the key has been allocated.
    #[error("key exhausted: all {0} leaves allocated")]
    KeyExhausted(u64),
    /// A leaf index that was never allocated.
    #[error("leaf {0} not allocated")]
    LeafNotAllocated(u64),
    /// A signature for the leaf is already published.
    #[error("leaf {0} already signed")]
    LeafSigned(u64),
    /// A repair record that does not match the holder set.
    #[error("bad repair: {0}")]
    BadRepair(&'static str),
    /// Block height is not the next one.
    #[error("block height {got}, expected {expected}")]
    BadHeight {
        /// Height in the block.
        got: u64,
        /// Next height.
        expected: u64,
    },
    /// Block does not extend the last block.
    #[error("block does not extend the current head")]
    BadPrevHash,
    /// The proposer is not a validator.
    #[error("proposer {0} is not a validator")]
    BadProposer(MemberId),
    /// The last-commit signatures are invalid or insufficient.
    #[error("bad last commit: {0}")]
    BadLastCommit(&'static str),
    /// The block's state hash differs from the state after applying it.
    #[error("state hash mismatch")]
    StateHashMismatch,
    /// A transaction inside a block failed.
    #[error("transaction {index} invalid: {source}")]
    InvalidTx {
        /// Position in the block.
        index: usize,
        /// Why it failed.
        source: Box<LedgerError>,
    },
    /// A block with more transactions than allowed.
    #[error("block has {0} transactions, more than the maximum")]
    TooManyTxs(usize),
    /// A DKG transaction outside its window (heights are block heights).
    #[error("DKG {what} not accepted at height {height}: window is {from}..={to}")]
    DkgWindow {
        /// Which message.
        what: &'static str,
        /// The height it arrived at.
        height: u64,
        /// First height of the window.
        from: u64,
        /// Last height of the window.
        to: u64,
    },
    /// A DKG message that the DKG checks reject (bad proof, degree, complaint that proves
    /// nothing, unsigned envelope...).
    #[error("DKG message rejected: {0}")]
    DkgRejected(String),
    /// The DKG of this epoch is already finalised.
    #[error("DKG of epoch {0} already finalised")]
    DkgDone(u64),
    /// The DKG of this epoch is not finalised yet (or failed).
    #[error("DKG of epoch {0} not complete")]
    DkgIncomplete(u64),
    /// A beacon partial that does not verify (DLEQ proof, member, point).
    #[error("bad beacon partial: {0}")]
    BadPartial(String),
    /// The first `t` beacon partials are already recorded.
    #[error("beacon partials complete")]
    BeaconComplete,
    /// The beacon differs from the one combined from the recorded partials (or too few).
    #[error("epoch beacon does not match the recorded partials: {0}")]
    BadBeacon(&'static str),
    /// The epoch cannot advance before this height.
    #[error("epoch may not start before height {0}")]
    EpochTooEarly(u64),
    /// No checkpoint is being signed.
    #[error("no checkpoint is due")]
    NoCheckpoint,
    /// A checkpoint message for another checkpoint or attempt.
    #[error("checkpoint {got_checkpoint} attempt {got_attempt}, expected {checkpoint} attempt {attempt}")]
    WrongCheckpoint {
        /// Checkpoint number in the transaction.
        got_checkpoint: u64,
        /// Attempt in the transaction.
        got_attempt: u32,
        /// The checkpoint being signed.
        checkpoint: u64,
        /// Its current attempt.
        attempt: u32,
    },
    /// The author may not sign this checkpoint attempt (not in the key's group, excluded
    /// after a bad share, not among the fixed signers, or the signer set is already full).
    #[error("{0} may not sign this checkpoint attempt: {1}")]
    NotSigner(MemberId, &'static str),
    /// A checkpoint signing message that does not decode or aggregate.
    #[error("checkpoint signing failed: {0}")]
    Checkpoint(String),
    /// The master root is not the root over the published sector roots.
    #[error("master root does not match the published sector roots")]
    BadMasterRoot,
    /// The key parameters do not define an LMS layout.
    #[error("bad key layout: {0}")]
    Layout(String),
    /// A published LMS signature that does not verify under the master key.
    #[error("LMS signature rejected: {0}")]
    BadLmsSignature(String),
}

#[cfg(test)]
mod tests;
