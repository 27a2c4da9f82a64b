//! A leaf whose rebuilt seed does not generate its tree leaf, found at signing time
//! (`docs/protocol.md`, Signing): the recipient rebuilt a seed that is the secret of the leaf's
//! Feldman commitment (so the holders' shares are exactly what the owner dealt), but that seed
//! with the owner's signed authentication path does not give the sector root the owner
//! published. Either the owner dealt a seed that is not its tree's, or it signed a wrong path:
//! both are the owner's fault, and the evidence ([`LeafMismatch`]) convicts it on its own.
//!
//! Guarantees: [`judge`] convicts only if (1) the commitment is under the sector's commitments
//! root at the leaf, (2) the seed is the commitment's secret (`seed·G = C_0`), (3) the path is
//! signed by the sector's owner for this sector, its root and this leaf ([`path_message`]), and
//! (4) the seed with that path misses the sector root. The seed an honest owner dealt and the
//! path it signs always give its root, so an honest owner is never convicted. The seed is
//! published with the evidence, so the ledger retires the leaf.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::audit;
use crate::dealing::{root_from_path, SectorId};
use crate::hash::{hash32, Domain};
use crate::sector::TreeLayout;
use crate::shamir::{EncodedCommitment, LeafSecret};

const PATH_SIG: Domain = Domain::new("seedfed-leafpath");

/// What a sector's owner signs when it sends leaf `q`'s authentication path inside the sector.
pub fn path_message(id: &SectorId, root: &[u8; 32], q: u64, path: &[[u8; 32]]) -> [u8; 32] {
    hash32(
        PATH_SIG,
        &[],
        &[0; 16],
        &[&id.bytes(), root, &q.to_le_bytes(), &path.concat()],
    )
}

/// The owner's signature of leaf `q`'s path.
pub fn sign_path(
    owner: &SigningKey,
    id: &SectorId,
    root: &[u8; 32],
    q: u64,
    path: &[[u8; 32]],
) -> Vec<u8> {
    owner
        .sign(&path_message(id, root, q, path))
        .to_bytes()
        .to_vec()
}

/// Whether `signature` is `id.owner`'s signature of leaf `q`'s `path` under sector root `root`.
pub fn path_signed(
    id: &SectorId,
    root: &[u8; 32],
    q: u64,
    path: &[[u8; 32]],
    signature: &[u8],
) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(id.owner.as_bytes()) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(&path_message(id, root, q, path), &sig)
        .is_ok()
}

/// The recipient's evidence that a leaf's seed does not generate its tree leaf.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafMismatch {
    /// The leaf id (key and leaf index, `ledger::leaf_id`).
    pub leaf: u64,
    /// The rebuilt seed (published: the leaf is retired).
    pub seed: [u8; 32],
    /// The leaf's commitment, as dealt.
    pub commitment: EncodedCommitment,
    /// Its path to the sector's commitments root.
    pub commitment_path: Vec<[u8; 32]>,
    /// The owner's authentication path of the leaf inside its sector.
    pub path: Vec<[u8; 32]>,
    /// The owner's signature of `path` ([`path_message`]).
    pub path_signature: Vec<u8>,
}

impl std::fmt::Debug for LeafMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafMismatch")
            .field("leaf", &self.leaf)
            .field("seed", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// What the ledger knows of the leaf's sector and key, to judge a [`LeafMismatch`].
pub struct Sector<'a> {
    /// The sector, with its owner.
    pub id: &'a SectorId,
    /// The sector root the owner published.
    pub root: &'a [u8; 32],
    /// The sector's commitments root.
    pub commitments_root: &'a [u8; 32],
    /// The key's layout (LM-OTS type, LMS identifier, tree height).
    pub layout: &'a TreeLayout,
    /// Nodes in a path inside a sector (`h − p`).
    pub path_len: usize,
    /// The leaf threshold `k` (the commitment's length).
    pub k: usize,
}

/// Why a [`LeafMismatch`] does not convict.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MismatchError {
    /// One of the checks of [`judge`] failed.
    #[error("leaf mismatch evidence rejected: {0}")]
    Rejected(&'static str),
}

/// Judges `e` about leaf `q` (its index within the key) of `sector`: `Ok` if it proves the
/// owner faulty (see the module docs).
pub fn judge(e: &LeafMismatch, q: u64, sector: &Sector<'_>) -> Result<(), MismatchError> {
    let reject = MismatchError::Rejected;
    if e.path.len() != sector.path_len || e.commitment_path.len() != sector.path_len {
        return Err(reject("a path of the wrong length"));
    }
    if root_from_path(q, &e.commitment, &e.commitment_path) != *sector.commitments_root {
        return Err(reject("commitment not under the sector's commitments root"));
    }
    let commitment = e
        .commitment
        .decode()
        .map_err(|_| reject("commitment does not decode"))?;
    commitment
        .check_threshold(sector.k)
        .map_err(|_| reject("commitment of the wrong degree"))?;
    let seed = LeafSecret::from_canonical_bytes(&e.seed)
        .map_err(|_| reject("seed is not a canonical scalar"))?;
    if RISTRETTO_BASEPOINT_POINT * seed.scalar() != commitment.secret_point() {
        return Err(reject("seed is not the commitment's secret"));
    }
    if !path_signed(sector.id, sector.root, q, &e.path, &e.path_signature) {
        return Err(reject("path not signed by the sector's owner"));
    }
    let q32 = u32::try_from(q).map_err(|_| reject("leaf out of range"))?;
    if audit::leaf_matches(
        sector.layout.ots_type,
        &sector.layout.id,
        sector.layout.height(),
        q32,
        &seed,
        &e.path,
        sector.root,
    ) {
        return Err(reject("the seed generates the sector's leaf"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
