//! The DKG's error type.
//!
//! Guarantees: an error says which step or input failed and whom it blames, and never contains
//! secret values (shares, polynomials, Diffie–Hellman secrets).

use crate::member::MemberId;
use crate::seal::SealError;
use crate::shamir::ShamirError;

/// Errors of the DKG. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkgError {
    /// The threshold or member count is out of range.
    #[error("invalid DKG parameters: {members} members, threshold {threshold}")]
    Parameters {
        /// Members.
        members: usize,
        /// Threshold.
        threshold: u16,
    },
    /// A member appears twice.
    #[error("member {0:?} appears more than once")]
    DuplicateMember(MemberId),
    /// A package arrived from someone not taking part.
    #[error("package from unknown member")]
    UnknownMember,
    /// frost rejected a step; `culprits` are the members it blames (if any).
    #[error("DKG step failed ({message}); blamed: {culprits:?}")]
    Frost {
        /// frost's error text.
        message: String,
        /// Members frost identified as misbehaving.
        culprits: Vec<MemberId>,
    },
    /// Identifier derivation failed.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
    /// An envelope is bad; the recipient should complain about `dealer`.
    #[error("envelope from {dealer:?} is bad: {reason}")]
    BadEnvelope {
        /// Its sender.
        dealer: MemberId,
        /// What was wrong.
        reason: &'static str,
    },
    /// Encryption failed (a bad recipient key).
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A byte string did not decode.
    #[error("malformed {what}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
    },
    /// This member is not in the qualified set (or its round-1 package is not valid).
    #[error("member {0:?} is not qualified")]
    NotQualified(MemberId),
    /// Fewer qualified dealers than the threshold.
    #[error("{qualified} qualified dealers, threshold {threshold}")]
    TooFewQualified {
        /// Qualified dealers.
        qualified: usize,
        /// Threshold.
        threshold: u16,
    },
    /// The shares received do not match the qualified set.
    #[error("missing share from qualified dealer {0:?}")]
    MissingShare(MemberId),
}
