//! The commitments tree of a sector's dealing: a Merkle tree over the per-leaf Feldman
//! commitment hashes, with global positions, so a chunk's root is a node of the sector's tree
//! and the chunks' roots combine into the sector's *commitments root* (what every
//! acknowledgement signs). Paths link one leaf's commitment to its chunk root (complaints,
//! contributions). Hashes the encodings as they are on the wire: no point is decoded.

use super::DealError;
use crate::hash::{hash32, position_salt, Domain};
use crate::shamir::EncodedCommitment;

const LEAF: Domain = Domain::new("seedfed-dealcmt");
const NODE: Domain = Domain::new("seedfed-dealnode");

/// The hash of one leaf's commitment (of its points' encodings, as they are on the wire), the
/// Merkle leaf of the commitments tree. Takes a [`Commitment`](crate::shamir::Commitment) or an
/// [`EncodedCommitment`].
pub fn commitment_hash<C: AsRef<EncodedCommitment>>(leaf: u64, commitment: &C) -> [u8; 32] {
    let points = commitment.as_ref().as_bytes().as_flattened();
    hash32(LEAF, &[], &position_salt(0, leaf), &[points])
}

fn node_hash(level: u32, index: u64, left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    hash32(NODE, &[], &position_salt(level, index), &[left, right])
}

/// The Merkle root over `hashes` (a power-of-two count) whose first entry is at global position
/// `first` of level `level`. Positions are global, so a chunk's root is a node of the sector's
/// tree.
fn subtree_root(mut hashes: Vec<[u8; 32]>, mut level: u32, mut first: u64) -> [u8; 32] {
    while hashes.len() > 1 {
        (hashes, level, first) = parents(&hashes, level, first);
    }
    hashes[0]
}

/// One level up: the parents of `hashes` (level `level`, first at global position `first`),
/// with their level and first position.
fn parents(hashes: &[[u8; 32]], level: u32, first: u64) -> (Vec<[u8; 32]>, u32, u64) {
    let (level, first) = (level + 1, first / 2);
    let up = hashes
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| node_hash(level, first + i as u64, &pair[0], &pair[1]))
        .collect();
    (up, level, first)
}

/// The root of a chunk's commitments (`commitments.len()` a power of two, `first_leaf` aligned
/// to it): a node of the sector's commitments tree.
pub fn chunk_root<C: AsRef<EncodedCommitment>>(
    first_leaf: u64,
    commitments: &[C],
) -> Result<[u8; 32], DealError> {
    Ok(subtree_root(
        leaf_hashes(first_leaf, commitments)?,
        0,
        first_leaf,
    ))
}

/// The commitment hashes of an aligned, power-of-two chunk starting at `first_leaf`.
fn leaf_hashes<C: AsRef<EncodedCommitment>>(
    first_leaf: u64,
    commitments: &[C],
) -> Result<Vec<[u8; 32]>, DealError> {
    let n = commitments.len();
    if n == 0 || !n.is_power_of_two() || !first_leaf.is_multiple_of(n as u64) {
        return Err(DealError::BadChunk("not an aligned power-of-two range"));
    }
    Ok(commitments
        .iter()
        .enumerate()
        .map(|(i, c)| commitment_hash(first_leaf + i as u64, c))
        .collect())
}

/// The commitments root of a sector from its chunks' roots, in order: chunks of `2^chunk_bits`
/// leaves starting at `first_leaf` (the sector's first leaf, aligned).
pub fn commitments_root(first_leaf: u64, chunk_bits: u8, chunk_roots: &[[u8; 32]]) -> [u8; 32] {
    subtree_root(
        chunk_roots.to_vec(),
        u32::from(chunk_bits),
        first_leaf >> chunk_bits,
    )
}

/// The authentication path of `leaf`'s commitment inside its chunk (bottom up), for a
/// complaint; `commitments` is the chunk starting at `first_leaf`. Hashes the whole chunk: for
/// many paths of one chunk build a [`CommitmentTree`] once.
pub fn chunk_path<C: AsRef<EncodedCommitment>>(
    first_leaf: u64,
    commitments: &[C],
    leaf: u64,
) -> Result<Vec<[u8; 32]>, DealError> {
    CommitmentTree::new(first_leaf, commitments)?.path(leaf)
}

/// Every level of a chunk's commitments tree (a whole sector's, for a holder's record), so
/// each leaf's path is a lookup: a holder contributing to many signatures of one sector
/// hashes its commitments once, not once per signature.
#[derive(Clone, Debug)]
pub struct CommitmentTree {
    first_leaf: u64,
    /// Level 0 (the commitments' hashes) up to the root's children.
    levels: Vec<Vec<[u8; 32]>>,
}

impl CommitmentTree {
    /// Hashes the chunk `commitments` starting at `first_leaf` (an aligned power of two).
    pub fn new<C: AsRef<EncodedCommitment>>(
        first_leaf: u64,
        commitments: &[C],
    ) -> Result<Self, DealError> {
        let mut hashes = leaf_hashes(first_leaf, commitments)?;
        let mut levels = Vec::new();
        let (mut level, mut first) = (0u32, first_leaf);
        while hashes.len() > 1 {
            let (up, l, f) = parents(&hashes, level, first);
            levels.push(hashes);
            (hashes, level, first) = (up, l, f);
        }
        Ok(CommitmentTree { first_leaf, levels })
    }

    /// The authentication path of `leaf`'s commitment (bottom up), as [`chunk_path`] gives it.
    pub fn path(&self, leaf: u64) -> Result<Vec<[u8; 32]>, DealError> {
        let width = self.levels.first().map_or(1, Vec::len) as u64;
        let mut idx = leaf
            .checked_sub(self.first_leaf)
            .filter(|p| *p < width)
            .ok_or(DealError::BadChunk("leaf outside the chunk"))? as usize;
        let mut path = Vec::with_capacity(self.levels.len());
        for hashes in &self.levels {
            path.push(hashes[idx ^ 1]);
            idx /= 2;
        }
        Ok(path)
    }
}

/// Recomputes a chunk root from one leaf's commitment and its path.
pub fn root_from_path<C: AsRef<EncodedCommitment>>(
    leaf: u64,
    commitment: &C,
    path: &[[u8; 32]],
) -> [u8; 32] {
    let mut h = commitment_hash(leaf, commitment);
    let mut idx = leaf;
    for (level, sibling) in path.iter().enumerate() {
        let parent = idx / 2;
        h = if idx.is_multiple_of(2) {
            node_hash(level as u32 + 1, parent, &h, sibling)
        } else {
            node_hash(level as u32 + 1, parent, sibling, &h)
        };
        idx = parent;
    }
    h
}
