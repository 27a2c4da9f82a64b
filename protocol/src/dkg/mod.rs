//! Pedersen DKG (frost-core 3.0 `keys::dkg`) keyed by [`MemberId`](crate::member::MemberId),
//! generic over the frost ciphersuite, made robust: a [`Ceremony`] finishes when up to `n − t`
//! dealers are absent or provably bad. Guarantees: every member's polynomial contributes to the
//! group secret and nobody learns it; no false complaint excludes an honest dealer; every
//! qualified member ends with the same public key package. The flow: `docs/sharing.md`.

mod ceremony;
mod codec;
mod complaint;
mod error;
mod frost;

pub use ceremony::{Ceremony, Envelope};
pub use complaint::{
    BadShareProof, Complaint, ExclusionCause, Qualification, RejectedComplaint, Rejection,
};
pub use error::DkgError;
pub use frost::{
    default_threshold, identifier_for, part1, part2, part3, run_in_memory, run_in_memory_for,
};
pub use frost_ristretto255::keys::dkg::{round1, round2};
pub use frost_ristretto255::keys::{KeyPackage, PublicKeyPackage};

#[cfg(test)]
mod tests;
