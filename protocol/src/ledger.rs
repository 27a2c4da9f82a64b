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
//! the transition function), and the block type here.

pub mod state;
pub mod tx;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hash::{hash32, Domain};
use crate::member::MemberId;

pub use state::{Ledger, LedgerState, Member, MemberStatus, SectorRecord, SignRequestRecord};
pub use tx::{
    Evidence, Signature64, SignedTx, Tx, TxBody, VoteKind, VoteRecord, MAX_PAYLOAD_BYTES,
};

const STATE_DOMAIN: Domain = Domain::new("seedfed-ledgerst");
const BLOCK_DOMAIN: Domain = Domain::new("seedfed-block");
const GENESIS_DOMAIN: Domain = Domain::new("seedfed-genesis");

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
}

#[cfg(test)]
mod tests;
