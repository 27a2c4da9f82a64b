//! Delivering a branch seed to its owner: each validator evaluates the threshold PRF on the
//! branch's input with its root-key share and sends the partial, sealed to the owner and
//! signed; the owner checks each partial's proof and combines any `t` into the branch seed.
//!
//! Guarantees: only the owner can read a partial (sealed to its X25519 key, bound to chain,
//! key, branch, sender and owner); a partial that does not verify against the sender's
//! verifying share is refused and names the sender; the seed is the same whichever `t` valid
//! partials are combined, so an owner that restarts re-derives the same seed, and differs per
//! owner, so the next owner of a branch (after a conviction) learns a seed its predecessor
//! never saw.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use frost_ristretto255::keys::{KeyPackage, PublicKeyPackage};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::dealing::Recipient;
use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::seal::{self, Sealed};
use crate::seed_tree::{branch_prf_input, BranchSeed};
use crate::tprf::{self, Partial, TprfError};

const AD: Domain = Domain::new("seedfed-bseed-ad");
const SIG: Domain = Domain::new("seedfed-bseedsig");

/// Errors of branch-seed delivery. Never contain secret values.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BranchSeedError {
    /// The envelope is for another chain, key, branch or owner.
    #[error("partial envelope addressed to another context ({0})")]
    WrongContext(&'static str),
    /// The sender's signature does not verify.
    #[error("partial envelope signature does not verify")]
    BadSignature,
    /// The box does not open.
    #[error("partial envelope does not open: {0}")]
    Seal(#[from] seal::SealError),
    /// The plaintext is not a partial, or a partial of another member.
    #[error("partial envelope plaintext malformed")]
    Malformed,
    /// The partial's proof fails, or combining failed.
    #[error("threshold PRF: {0}")]
    Tprf(#[from] TprfError),
}

/// Which branch seed: a branch of one key on one chain, for one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchId {
    /// The chain digest.
    pub chain: [u8; 32],
    /// The LMS key identifier `I` of the key (it names the key number).
    pub key_id: [u8; 16],
    /// The branch (sector) index.
    pub branch: u32,
    /// The branch owner (the only one who may combine the seed).
    pub owner: MemberId,
}

impl BranchId {
    /// The threshold-PRF input of this branch's seed for its owner.
    pub fn prf_input(&self) -> [u8; 32] {
        branch_prf_input(&self.key_id, self.branch, &self.owner)
    }
}

/// A validator's partial for a branch, sealed to the branch's owner and signed by the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialEnvelope {
    /// The branch and its owner (the recipient).
    pub id: BranchId,
    /// The evaluating validator.
    pub sender: MemberId,
    /// `seal_ephemeral` box of the encoded [`Partial`].
    pub sealed: Sealed,
    /// The sender's Ed25519 signature over the context and the box.
    pub signature: Vec<u8>,
}

fn ad(id: &BranchId, sender: &MemberId) -> [u8; 32] {
    hash32(
        AD,
        &[],
        &[0; 16],
        &[
            &id.chain,
            &id.key_id,
            &id.branch.to_le_bytes(),
            sender.as_bytes(),
            id.owner.as_bytes(),
        ],
    )
}

fn message(ad: &[u8; 32], sealed: &Sealed) -> [u8; 32] {
    hash32(
        SIG,
        &[],
        &[0; 16],
        &[ad, &sealed.ephemeral, &sealed.ciphertext],
    )
}

/// The sender's side: evaluates its partial for `id` with its root-key package and seals it to
/// `owner` (who must be `id.owner`).
pub fn seal_partial<R: RngCore + CryptoRng>(
    id: BranchId,
    sender_key: &SigningKey,
    root_key: &KeyPackage,
    owner: Recipient,
    rng: &mut R,
) -> Result<PartialEnvelope, BranchSeedError> {
    if owner.id != id.owner {
        return Err(BranchSeedError::WrongContext("owner"));
    }
    let sender = MemberId(sender_key.verifying_key().to_bytes());
    let partial = tprf::partial(root_key, &sender, &id.prf_input(), rng)?;
    let plain =
        Zeroizing::new(postcard::to_allocvec(&partial).map_err(|_| BranchSeedError::Malformed)?);
    let ad = ad(&id, &sender);
    let sealed = seal::seal_ephemeral(&PublicKey::from(owner.x25519), &ad, &plain, rng)?;
    let signature = sender_key.sign(&message(&ad, &sealed)).to_bytes().to_vec();
    Ok(PartialEnvelope {
        id,
        sender,
        sealed,
        signature,
    })
}

/// The owner's side: checks the envelope is for `expected` and this owner, signed by its
/// sender, opens it and verifies the partial's proof against the sender's verifying share in
/// the root key's public package.
pub fn open_partial(
    envelope: &PartialEnvelope,
    expected: &BranchId,
    me: &MemberId,
    my_x25519: &StaticSecret,
    root_public: &PublicKeyPackage,
) -> Result<Partial, BranchSeedError> {
    if envelope.id != *expected {
        return Err(BranchSeedError::WrongContext("branch"));
    }
    if envelope.id.owner != *me {
        return Err(BranchSeedError::WrongContext("owner"));
    }
    let ad = ad(&envelope.id, &envelope.sender);
    let key = VerifyingKey::from_bytes(envelope.sender.as_bytes())
        .map_err(|_| BranchSeedError::BadSignature)?;
    let sig =
        Signature::from_slice(&envelope.signature).map_err(|_| BranchSeedError::BadSignature)?;
    key.verify_strict(&message(&ad, &envelope.sealed), &sig)
        .map_err(|_| BranchSeedError::BadSignature)?;
    let plain = seal::open_ephemeral(my_x25519, &ad, &envelope.sealed)?;
    let (partial, rest): (Partial, &[u8]) =
        postcard::take_from_bytes(&plain).map_err(|_| BranchSeedError::Malformed)?;
    if !rest.is_empty() || partial.member != envelope.sender {
        return Err(BranchSeedError::Malformed);
    }
    tprf::verify_partial(root_public, &expected.prf_input(), &partial)?;
    Ok(partial)
}

/// Combines verified partials (at least the root key's threshold, distinct members) into the
/// branch seed.
pub fn combine(
    id: &BranchId,
    root_public: &PublicKeyPackage,
    partials: &[Partial],
) -> Result<BranchSeed, BranchSeedError> {
    Ok(BranchSeed::from_bytes(tprf::combine(
        root_public,
        &id.prf_input(),
        partials,
    )?))
}

#[cfg(test)]
mod tests;
