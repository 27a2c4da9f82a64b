//! Why the ledger rejects a transaction or a block.
//!
//! Guarantees: every variant of [`LedgerError`] names what was wrong with the input, and
//! whenever the ledger returns one the state is unchanged (handlers check before they write,
//! blocks apply to a copy).

use thiserror::Error;

use crate::member::MemberId;

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
    /// The epoch's admission budget is spent (`state::members::MAX_ADMISSIONS_PER_EPOCH`).
    #[error("{max} admissions already landed in epoch {epoch}: try again next epoch")]
    AdmissionsFull {
        /// The epoch.
        epoch: u64,
        /// The budget.
        max: u32,
    },
    /// Admission by an identity that is already known.
    #[error("{0} is already a member")]
    AlreadyMember(MemberId),
    /// The admission peer id does not encode the author's key.
    #[error("peer id does not belong to {0}")]
    PeerIdMismatch(MemberId),
    /// The admission's X25519 key is low-order, off the curve or non-canonical: no secret could
    /// be sealed to it.
    #[error("X25519 key of {0} is not a valid prime-order key")]
    BadX25519(MemberId),
    /// The admission's X25519 proof of possession does not verify.
    #[error("X25519 proof of possession of {0} does not verify")]
    NoX25519Possession(MemberId),
    /// `Repair` transactions are refused until repair is redesigned (the author chose the
    /// replacement holder, so colluders could rotate themselves into every holder set).
    #[error("repair transactions are not accepted (repair is being redesigned)")]
    RepairDisabled,
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
    /// A payload is larger than [`MAX_PAYLOAD_BYTES`](crate::ledger::MAX_PAYLOAD_BYTES) or
    /// otherwise malformed.
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
    /// A holder's acknowledgement of a sector is invalid (signature, commitments root, a
    /// holder that is not a validator, a duplicate).
    #[error("bad acknowledgement by {holder}: {reason}")]
    BadAck {
        /// The acknowledging holder.
        holder: MemberId,
        /// What is wrong.
        reason: &'static str,
    },
    /// A leaf of the sector has fewer acknowledgements from its own holders than required.
    #[error("leaf {leaf} acknowledged by {got} of its holders, {need} required")]
    NotEnoughAcks {
        /// The leaf (global index).
        leaf: u64,
        /// Acknowledgements from its holders.
        got: usize,
        /// The key's acknowledgement threshold.
        need: u16,
    },
    /// A deal complaint that proves nothing against the sector's owner (not by the batch's
    /// holder, for another context or holder basis, unsigned, or about a good batch).
    #[error("deal complaint rejected: {0}")]
    BadDealComplaint(&'static str),
    /// A signing blame that proves nothing against anyone (another session, not a quorum of
    /// the leaf, unsigned, a bad reveal, a correct contribution, no dispute, already
    /// convicted).
    #[error("sign blame rejected: {0}")]
    BadSignBlame(&'static str),
    /// A `LeafMismatch` whose evidence does not convict the sector's owner.
    #[error("{0}")]
    BadLeafMismatch(String),
    /// An audit transaction that does not apply (no open audit, a leaf not drawn, a share or
    /// path that does not check, a duplicate).
    #[error("audit: {0}")]
    BadAudit(&'static str),
    /// Master root finalisation before every sector passed its audit.
    #[error("{pending} sectors not yet audited")]
    AuditsPending {
        /// Published sectors whose audit has not passed.
        pending: u32,
    },
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
    /// Signing requested once a master root is final but before a signed checkpoint names the
    /// key (light clients could not verify its signatures yet).
    #[error("key not endorsed yet: no signed checkpoint names its master public key")]
    KeyNotEndorsed,
    /// Every leaf of every endorsed key has been allocated (the next key is not ready).
    #[error("keys exhausted: all {0} leaves of every endorsed key allocated or retired")]
    KeyExhausted(u64),
    /// A sign request whose client signature does not verify (or whose client key is not an
    /// Ed25519 point).
    #[error("request not signed by client {0}")]
    BadClientSignature(MemberId),
    /// A sign request from a client the ledger does not authorize.
    #[error("client {0} is not authorized to request signatures")]
    UnauthorizedClient(MemberId),
    /// A sign request of an epoch before the previous one (or a future one).
    #[error("request of epoch {epoch} at epoch {current} (the current or previous epoch only)")]
    StaleRequest {
        /// The request's epoch.
        epoch: u64,
        /// The ledger's epoch.
        current: u64,
    },
    /// A sign request whose nonce the client already used in that epoch.
    #[error("client {client} already used nonce {nonce} in that epoch")]
    ReplayedRequest {
        /// The client.
        client: MemberId,
        /// The nonce.
        nonce: u64,
    },
    /// A client that used its quota for the request's epoch.
    #[error("client {client} used its quota of {quota} requests for that epoch")]
    OverQuota {
        /// The client.
        client: MemberId,
        /// Its quota per epoch.
        quota: u32,
    },
    /// A validator with too many open changes (`state::changes::MAX_OPEN_CHANGES`).
    #[error("{0} has too many open changes")]
    TooManyChanges(MemberId),
    /// A proof-of-work difficulty change to a value outside `min..=max` (the genesis
    /// difficulty up to `admission::MAX_DIFFICULTY`).
    #[error("proof-of-work difficulty {got} is outside {min}..={max}")]
    DifficultyOutOfRange {
        /// The difficulty asked for.
        got: u8,
        /// The genesis difficulty, the floor.
        min: u8,
        /// The largest supported difficulty.
        max: u8,
    },
    /// A proof-of-work difficulty change to the value the ledger already holds.
    #[error("the proof-of-work difficulty is already {0}")]
    DifficultyUnchanged(u8),
    /// A validator approving the same change twice.
    #[error("{0} already approved that change")]
    DuplicateApproval(MemberId),
    /// A leaf index that was never allocated.
    #[error("leaf {0} not allocated")]
    LeafNotAllocated(u64),
    /// A signature for the leaf is already published.
    #[error("leaf {0} already signed")]
    LeafSigned(u64),
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
