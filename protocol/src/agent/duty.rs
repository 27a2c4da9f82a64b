//! What the agent tells the node: the [`Duty`]s to perform, the [`Fault`] to inject in tests,
//! and the [`EpochError`] for rejected direct messages and snapshots.
//!
//! Guarantees: errors never contain secrets; a duty is a transaction body to submit, an opaque
//! payload to send to one peer, or a holder record to store (its secret part redacted from
//! `Debug`).

use zeroize::Zeroizing;

use super::payload::Payload;
use crate::dkg::DkgError;
use crate::ledger::TxBody;
use crate::member::MemberId;

/// What the node must do for this validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Duty {
    /// Put this transaction body on the ledger (the node signs it with the right nonce and
    /// gossips it; the node de-duplicates equal bodies, so returning the same body on every call
    /// until it is on the ledger is expected).
    Submit(TxBody),
    /// Send these bytes point to point to `to` (a DKG round-2 envelope, a dealt batch, ...);
    /// the node delivers them via [`Agent::on_direct`](crate::agent::Agent::on_direct) at `to`.
    /// A re-send of a message not yet acted on is the same [`Payload`] (a clone): the node need
    /// not queue it again while it is still queued or in flight to `to`.
    Send {
        /// Recipient.
        to: MemberId,
        /// Opaque payload.
        payload: Payload,
    },
    /// Store this checked chunk of a sector we hold durably, sealed at rest, before any later
    /// duty of the same call leaves the node. Stored under (sector, chunk root); storing the
    /// same record twice is harmless.
    KeepChunk {
        /// The sector.
        sector: u32,
        /// The chunk's commitments root.
        chunk_root: [u8; 32],
        /// `ledger::encode(dealing::HeldChunk)`: secret.
        record: SecretBytes,
    },
    /// Store the index of a sector we hold (its chunks, each kept by an earlier
    /// [`Duty::KeepChunk`]) durably, before any later duty of the same call leaves the node
    /// (the acknowledgement that follows says the sector is stored). Stored under (sector,
    /// commitments root); public; storing it twice is harmless.
    Keep {
        /// The sector.
        sector: u32,
        /// Its commitments root (what we acknowledged).
        commitments_root: [u8; 32],
        /// `ledger::encode(dealing::HeldIndex)`.
        index: Vec<u8>,
    },
    /// Store this sector's public tree (its leaf public keys `K`, in leaf order) durably,
    /// before any later duty of the same call leaves the node: the owner serves
    /// authentication paths from it after the seeds are erased, and every other validator
    /// fetches a copy of it once the sector root is on the ledger. Public; storing it twice is
    /// harmless.
    KeepTree {
        /// The sector.
        sector: u32,
        /// Its root (what the keys build).
        root: [u8; 32],
        /// The leaf public keys.
        keys: Vec<[u8; 32]>,
    },
    /// Post our shares of these audited leaves: read the held record of (sector, commitments
    /// root) and submit one `AuditReveal` per leaf (`audit::RevealedShare::from_held`).
    Reveal {
        /// The sector.
        sector: u32,
        /// The commitments root we acknowledged.
        commitments_root: [u8; 32],
        /// The audited leaves we hold.
        leaves: Vec<u64>,
    },
    /// As a quorum member of an allocated leaf, contribute to its reconstruction: read the
    /// held record of (sector, commitments root) and hand it to
    /// [`Agent::contribution`](crate::agent::Agent::contribution), then send what it returns.
    Contribute {
        /// The sector.
        sector: u32,
        /// The commitments root we acknowledged.
        commitments_root: [u8; 32],
        /// The leaf.
        leaf: u64,
    },
    /// Send an allocated leaf's key and authentication path to its relay `to`: as the sector's
    /// owner, or as the relay itself (`to` is us) from our replica of the tree. Read the tree
    /// kept under (sector, root), send `Agent::leaf_path_msg` to `to`; with no tree kept
    /// there (a replica not fetched yet), send nothing.
    SendPath {
        /// The key (its layout rebuilds the kept tree).
        key: u32,
        /// The sector.
        sector: u32,
        /// Its root.
        root: [u8; 32],
        /// The leaf.
        leaf: u64,
        /// The recipient.
        to: MemberId,
    },
    /// As the sector's owner, post these audited leaves' authentication paths: read the tree
    /// kept under (sector, root) and submit one `AuditPath` per leaf.
    ProvePath {
        /// The sector.
        sector: u32,
        /// Its root.
        root: [u8; 32],
        /// The audited leaves.
        leaves: Vec<u64>,
    },
}

/// Encoded secret material for the node to store sealed. Zeroized on drop; `Debug` prints
/// only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes, [redacted])", self.0.len())
    }
}

/// Fault injection for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// Honest.
    #[default]
    None,
    /// Deal corrupted round-2 shares (still signed) to every recipient, in both DKGs.
    BadRound2Shares,
    /// As a holder, check and store dealt shares but never acknowledge them.
    NeverAck,
    /// As a sector owner, deal one other holder a share that fails its commitment (still signed).
    BadDealShare,
    /// As a sector owner, publish a tree that the dealt seeds do not generate (every leaf's
    /// key is another leaf's): the shares check, the audit convicts.
    BadTree,
    /// As a signing quorum member, contribute `c_i + 1` (still signed): the recipient blames it
    /// on the ledger, which convicts.
    BadContribution,
    /// As a signing quorum member, claim a wrong pairwise mask commitment with every other
    /// member (adjusting `c_i` so its own check passes): every pair disputes, the honest members
    /// reveal their pair points, and the ledger convicts this member alone.
    DisputeEveryone,
    /// As a sector owner, send a wrong authentication path for a leaf being signed (audits see
    /// the right ones): the relay refuses it (the key and path miss the sector root) and uses
    /// its own replica of the tree.
    BadPath,
}

/// Why a direct message or a snapshot was rejected. Never contains secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    /// The bytes do not decode.
    #[error("malformed {0}")]
    Decode(&'static str),
    /// The message is for another epoch or DKG attempt than the ledger's current one.
    #[error("message for epoch {epoch} attempt {attempt}, current DKG is epoch {current_epoch} attempt {current_attempt}")]
    Stale {
        /// Its epoch.
        epoch: u64,
        /// Its attempt.
        attempt: u32,
        /// The ledger's DKG epoch.
        current_epoch: u64,
        /// The ledger's DKG attempt.
        current_attempt: u32,
    },
    /// This validator takes no part in that DKG (or has no round-1 state for it).
    #[error("not taking part in this DKG")]
    NotParticipating,
    /// The envelope is not from the authenticated peer to us, or its signature does not verify.
    #[error("envelope rejected: {0}")]
    Envelope(&'static str),
    /// A DKG step failed.
    #[error(transparent)]
    Dkg(#[from] DkgError),
    /// No key generation matches the message (none in progress, another epoch, a sector that
    /// landed or that the sender does not own).
    #[error("no key generation for this message: {0}")]
    NoKeygen(&'static str),
    /// A branch-seed partial was refused.
    #[error(transparent)]
    BranchSeed(#[from] crate::branch_seed::BranchSeedError),
    /// A dealt batch or an acknowledgement was refused.
    #[error(transparent)]
    Deal(#[from] crate::dealing::DealError),
}
