//! The federation ledger: a deterministic state machine over signed transactions, in blocks.
//!
//! Guarantees: the same genesis and blocks give byte-identical state, and so the same state
//! hash, on every node; an invalid transaction or block is rejected with a [`LedgerError`] and
//! changes nothing. Rules, encodings and hashes: `docs/consensus.md`.

// Dependencies point one way: a module uses only modules of the groups above its own.

mod codec;
mod error;

mod genesis;

mod change;
mod client;
mod tx;

mod sig_cache;

mod beacon;
mod checkpoint_signing;
mod dkg_round;

mod state;

mod block;

#[cfg(test)]
mod tests;

pub use beacon::beacon_input;
pub use block::{Block, Built, CommitInfo, Ledger, Validated, MAX_TXS_PER_BLOCK};
pub use change::Change;
pub use checkpoint_signing::{
    validator_set_hash, CheckpointBody, CheckpointDue, CheckpointFault, CheckpointFaultKind,
    CheckpointSigning, SignedCheckpoint, KEEP_CHECKPOINTS,
};
pub use client::{message_digest, ClientChange, ClientRequest, SignedRequest};
pub use codec::{decode, encode, encode_secret, DecodeError};
pub use dkg_round::{
    decode_round1, dkg_session_id, ComplaintKey, DkgExclusion, DkgFailure, DkgResult, DkgRound,
};
pub use error::LedgerError;
pub use genesis::{
    chain_digest, EpochParams, Genesis, GenesisClient, GenesisError, GenesisValidator, KeyParams,
    DEFAULT_SECTOR_WINDOW, MAX_TOTAL_STAKE,
};
pub use sig_cache::SigCache;
pub use state::{
    leaf_id, sign_session_id, split_leaf, validate_dkg_complaint_payload,
    validate_dkg_round1_payload, validate_epoch_beacon, validate_master_root, ClientRecord,
    ConvictionEvidence, DealConviction, HashedMap, HolderBasis, KeyState, KeygenMiss, LeafAudit,
    LedgerState, Member, MemberStatus, Members, RepairRecord, SectorAudit, SectorRecord,
    SectorWindow, SignRequestRecord, Signatures, ADMISSION_EXPIRY_EPOCHS, MAX_ADMISSIONS_PER_EPOCH,
    MAX_OPEN_CHANGES,
};
pub use tx::{
    peer_id_bytes, verify_vote_signature, vote_digest, ComplaintPayload, DkgSuite, Evidence,
    Round1Payload, Signature64, SignedTx, Tx, TxBody, VoteKind, VoteRecord, MAX_PAYLOAD_BYTES,
};
