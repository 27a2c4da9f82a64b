//! A leaf whose rebuilt seed does not generate its tree leaf, found at signing time
//! (`docs/protocol.md`, Signing): the recipient rebuilt a seed that is the secret of the leaf's
//! Feldman commitment (so the holders' shares are exactly what the owner dealt), but that
//! seed's one-time public key is not the key `K` the owner's sector root commits to at that
//! leaf. The owner dealt a seed that is not its tree's: the evidence ([`LeafMismatch`])
//! convicts it on its own.
//!
//! Guarantees: [`judge`] convicts only if (1) the commitment is under the sector's commitments
//! root at the leaf, (2) the seed is the commitment's secret (`seed·G = C_0`), (3) the leaf key
//! `K` with the path gives the sector root the owner published (so the owner committed to `K`
//! at that leaf: the root binds each leaf's key and position), and (4) the seed's one-time
//! public key is not `K`. The seed an honest owner dealt always generates the key its tree
//! holds, so an honest owner is never convicted; and a leaf key with its path is checkable
//! against the ledger's root by anyone, so the path needs nobody's signature and can come
//! from any copy of the sector's public tree. The seed is published with the evidence, so
//! the ledger retires the leaf.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::audit;
use crate::dealing::root_from_path;
use crate::lmots;
use crate::sector::TreeLayout;
use crate::shamir::{EncodedCommitment, LeafSecret};

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
    /// The leaf's one-time public key hash `K` in the owner's tree.
    pub leaf_key: [u8; 32],
    /// Its authentication path inside the sector (`leaf_key` and `path` give the sector
    /// root).
    pub path: Vec<[u8; 32]>,
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
    let q32 = u32::try_from(q).map_err(|_| reject("leaf out of range"))?;
    let layout = sector.layout;
    if !audit::key_under_root(
        &layout.id,
        layout.height(),
        q32,
        &e.leaf_key,
        &e.path,
        sector.root,
    ) {
        return Err(reject("the leaf key and path do not give the sector root"));
    }
    let generated = lmots::leaf_public_key(layout.ots_type, &layout.id, q32, &seed.lms_seed());
    if generated == e.leaf_key {
        return Err(reject("the seed generates the sector's leaf"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
