//! Auditing a published sector before any signature depends on it: an unpredictable draw picks
//! a few of its leaves; their holders reveal their shares; anyone checks each share against the
//! leaf's Feldman commitment (bound to the sector's commitments root), rebuilds the seed, and
//! checks the seed's one-time public key against the sector root with the owner's path.
//!
//! Guarantees: the draw is a function of a threshold-PRF output on the published roots, so the
//! owner cannot steer it after committing; a leaf passes only if its rebuilt seed generates the
//! leaf the sector root commits to. Audited leaves are retired and never allocated.

use std::collections::BTreeSet;
use std::ops::Range;

use thiserror::Error;

use crate::dealing::{self, HeldSector, SectorId};
use crate::hash::{hash32, Domain};
use crate::lmots::{self, HashValue, Identifier, LmotsType};
use crate::lms;
use crate::member::MemberId;
use crate::shamir::{self, EncodedCommitment, LeafSecret, Share};

const INPUT: Domain = Domain::new("seedfed-audit-in");
const DRAW: Domain = Domain::new("seedfed-auditdrw");

/// Why an audit step failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuditError {
    /// More leaves requested than the sector has, or an empty sector.
    #[error("cannot draw {count} audit leaves from {leaves} leaves")]
    TooMany {
        /// Requested.
        count: usize,
        /// In the sector.
        leaves: u64,
    },
    /// The commitment is not the one under the sector's commitments root.
    #[error("commitment of leaf {0} is not under the commitments root")]
    CommitmentNotBound(u64),
    /// The commitment is not a valid point encoding.
    #[error("commitment of leaf {0} has an invalid point encoding")]
    InvalidCommitment(u64),
    /// The holder's record has no share (or commitment) of that leaf.
    #[error("no share of leaf {0} held")]
    NotHeld(u64),
    /// A revealed share fails its commitment.
    #[error("revealed share of leaf {leaf} by {holder} fails its commitment")]
    BadShare {
        /// The leaf.
        leaf: u64,
        /// The holder whose share is bad.
        holder: MemberId,
    },
    /// The shares do not rebuild a seed (too few, duplicates).
    #[error("shares do not rebuild the seed: {0}")]
    Reconstruct(#[from] shamir::ShamirError),
}

/// The threshold-PRF input whose output draws the audit of a sector: bound to the sector, its
/// root and its commitments root, so it can only be evaluated after both are published.
pub fn draw_input(id: &SectorId, root: &HashValue, commitments_root: &[u8; 32]) -> [u8; 32] {
    hash32(
        INPUT,
        &[],
        &[0; 16],
        &[
            &id.chain,
            &id.key.to_le_bytes(),
            &id.sector.to_le_bytes(),
            id.owner.as_bytes(),
            root,
            commitments_root,
        ],
    )
}

/// `count` distinct leaves of `leaves` drawn from `randomness` (rejection-free: hash of a
/// counter reduced modulo the range, skipping repeats).
pub fn draw(
    randomness: &[u8; 32],
    leaves: Range<u64>,
    count: usize,
) -> Result<BTreeSet<u64>, AuditError> {
    let size = leaves.end.saturating_sub(leaves.start);
    if size == 0 || count as u64 > size {
        return Err(AuditError::TooMany {
            count,
            leaves: size,
        });
    }
    let mut out = BTreeSet::new();
    let mut counter = 0u64;
    while out.len() < count {
        let h = hash32(DRAW, randomness, &[0; 16], &[&counter.to_le_bytes()]);
        let mut word = [0u8; 16];
        word.copy_from_slice(&h[..16]);
        // A 128-bit value modulo a range of at most 2^32: the bias is below 2^-96.
        let offset = (u128::from_le_bytes(word) % u128::from(size)) as u64;
        out.insert(leaves.start + offset);
        counter += 1;
    }
    Ok(out)
}

/// One holder's revealed share of an audited leaf, with the leaf's commitment and its Merkle
/// path to the sector's commitments root.
#[derive(Clone, Debug)]
pub struct RevealedShare {
    /// The audited leaf (global index).
    pub leaf: u64,
    /// The share (public from now on: the leaf is retired).
    pub share: Share,
    /// The leaf's commitment, encoded as dealt.
    pub commitment: EncodedCommitment,
    /// Path from the commitment to the commitments root (`dealing::chunk_path` over the whole
    /// sector).
    pub path: Vec<[u8; 32]>,
}

impl RevealedShare {
    /// A holder's reveal of `leaf` from the sector record it kept (`dealing::HeldSector`).
    pub fn from_held(held: &HeldSector, leaf: u64) -> Result<Self, AuditError> {
        let share = held
            .shares
            .iter()
            .find(|(l, _)| *l == leaf)
            .map(|(_, s)| s.clone())
            .ok_or(AuditError::NotHeld(leaf))?;
        let commitment = leaf
            .checked_sub(held.first_leaf)
            .and_then(|i| held.commitments.get(usize::try_from(i).ok()?))
            .cloned()
            .ok_or(AuditError::NotHeld(leaf))?;
        let path = dealing::chunk_path(held.first_leaf, &held.commitments, leaf)
            .map_err(|_| AuditError::NotHeld(leaf))?;
        Ok(RevealedShare {
            leaf,
            share,
            commitment,
            path,
        })
    }
}

/// Checks one revealed share: the commitment is under `commitments_root`, decodes to `k`
/// points, and the share fits it.
pub fn check_share(
    commitments_root: &[u8; 32],
    revealed: &RevealedShare,
    k: usize,
) -> Result<(), AuditError> {
    if dealing::root_from_path(revealed.leaf, &revealed.commitment, &revealed.path)
        != *commitments_root
    {
        return Err(AuditError::CommitmentNotBound(revealed.leaf));
    }
    let commitment = revealed
        .commitment
        .decode()
        .map_err(|_| AuditError::InvalidCommitment(revealed.leaf))?;
    shamir::verify_share(&revealed.share, &commitment, k).map_err(|_| AuditError::BadShare {
        leaf: revealed.leaf,
        holder: revealed.share.holder,
    })
}

/// Rebuilds the audited leaf's seed from `k` checked shares.
pub fn rebuild(shares: &[Share], k: usize) -> Result<LeafSecret, AuditError> {
    Ok(shamir::reconstruct(shares, k)?)
}

/// Whether `seed` is the seed of leaf `q` of the tree whose sector root is `sector_root`:
/// regenerates the one-time public key, hashes the leaf node and walks `path` (the
/// `h − p` sibling nodes inside the sector, leaf level first) up to the sector root.
pub fn leaf_matches(
    ots_type: LmotsType,
    id: &Identifier,
    tree_height: u32,
    q: u32,
    seed: &LeafSecret,
    path: &[HashValue],
    sector_root: &HashValue,
) -> bool {
    let k = lmots::leaf_public_key(ots_type, id, q, &seed.lms_seed());
    key_under_root(id, tree_height, q, &k, path, sector_root)
}

/// Whether `leaf_key` (an LM-OTS public key hash `K`) is leaf `q` of the tree whose sector root
/// is `sector_root`: hashes the leaf node and walks `path` (leaf level first) up to the sector
/// root. The root binds the key at that position, so a key and path that pass are the ones the
/// root's author committed to.
pub fn key_under_root(
    id: &Identifier,
    tree_height: u32,
    q: u32,
    leaf_key: &HashValue,
    path: &[HashValue],
    sector_root: &HashValue,
) -> bool {
    let r = (1u32 << tree_height) + q;
    let node = lms::leaf_hash(id, r, leaf_key);
    lms::root_from_leaf(id, r, &node, path) == *sector_root
}

#[cfg(test)]
mod tests;
