//! What the agent tells the node: the [`Duty`]s to perform, the [`Fault`] to inject in tests,
//! and the [`EpochError`] for rejected direct messages and snapshots.
//!
//! Guarantees: errors never contain secrets; a duty is plain public data (a transaction body
//! to submit, or an opaque envelope payload to send to one peer).

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
    /// Send these bytes point to point to `to` (a DKG round-2 envelope); the node delivers them
    /// via [`Agent::on_direct`](crate::agent::Agent::on_direct) at `to`.
    Send {
        /// Recipient.
        to: MemberId,
        /// Opaque payload.
        payload: Vec<u8>,
    },
}

/// Fault injection for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// Honest.
    #[default]
    None,
    /// Deal corrupted round-2 shares (still signed) to every recipient, in both DKGs.
    BadRound2Shares,
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
}
