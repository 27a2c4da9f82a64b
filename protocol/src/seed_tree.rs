//! The seed tree: root secret → branch seed (threshold PRF of [`branch_prf_input`]) → GGM tree per
//! branch (keyed BLAKE2b, level and global index in the salt) → one scalar seed per leaf, whose
//! canonical 32-byte encoding is that leaf's RFC 8554 `SEED`. Seeds of different branches, levels
//! and positions never collide; any sub-range costs `O(range + depth)` hashes; a leaf seed reveals
//! nothing about its siblings or its branch seed. The branch input names the branch's owner, so
//! a branch taken from a convicted owner is generated from a seed that owner never learnt.
//!
//! Why leaf seeds are ristretto255 scalars: `docs/crypto-core.md`.

use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::member::MemberId;
use crate::shamir::LeafSecret;

use crate::hash::{hash32, hash64, position_salt, Domain};

const BRANCH_INPUT: Domain = Domain::new("seedfed-branch");
const GGM_NODE: Domain = Domain::new("seedfed-ggm");
const GGM_LEAF: Domain = Domain::new("seedfed-ggm-leaf");

/// The deepest branch supported (a branch of 2^32 leaves).
pub const MAX_DEPTH: u32 = 32;

/// A branch's 32-byte seed (the threshold-PRF output for that branch).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BranchSeed([u8; 32]);

impl BranchSeed {
    /// Wraps the 32 bytes (normally a threshold-PRF output).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        BranchSeed(bytes)
    }

    /// A 32-byte secret derived from this seed for `purpose` (keyed BLAKE2b, domain-separated
    /// from the GGM expansion): e.g. the randomness of the owner's Feldman polynomials, so a
    /// restarted owner deals exactly the same shares and commitments again.
    pub fn derive(&self, purpose: Domain) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hash32(purpose, &self.0, &[0; 16], &[]))
    }
}

impl std::fmt::Debug for BranchSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BranchSeed([redacted])")
    }
}

/// Why a seed-tree request was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SeedTreeError {
    /// The branch depth is larger than supported.
    #[error("branch depth {0} exceeds the maximum {MAX_DEPTH}")]
    DepthTooLarge(u32),
    /// The requested leaf range is empty, reversed or outside the branch.
    #[error("leaf range {start}..{end} is not inside a branch of {size} leaves")]
    BadRange {
        /// First leaf requested (branch-local).
        start: u64,
        /// One past the last leaf requested.
        end: u64,
        /// Leaves in the branch.
        size: u64,
    },
}

/// The threshold-PRF input whose output is the seed of `branch` of the key named `key_id`
/// when `owner` generates it. A new owner of the branch (after a conviction) gets another seed.
pub fn branch_prf_input(key_id: &[u8; 16], branch: u32, owner: &MemberId) -> [u8; 32] {
    hash32(
        BRANCH_INPUT,
        &[],
        &[0; 16],
        &[key_id, &branch.to_le_bytes(), owner.as_bytes()],
    )
}

/// A branch of the seed tree: its seed, its index among the `2^p` branches and its depth.
pub struct Branch {
    seed: BranchSeed,
    index: u32,
    depth: u32,
}

impl Branch {
    /// A branch of `2^depth` leaves.
    pub fn new(seed: BranchSeed, index: u32, depth: u32) -> Result<Self, SeedTreeError> {
        if depth > MAX_DEPTH {
            return Err(SeedTreeError::DepthTooLarge(depth));
        }
        Ok(Branch { seed, index, depth })
    }

    /// Leaves in this branch.
    pub fn size(&self) -> u64 {
        1u64 << self.depth
    }

    /// Seeds of branch-local leaves `start..end`, in order, visiting only the GGM nodes on
    /// the paths to them (`O(range + depth)` hashes).
    pub fn leaf_seeds(&self, start: u64, end: u64) -> Result<Vec<LeafSecret>, SeedTreeError> {
        if start >= end || end > self.size() {
            return Err(SeedTreeError::BadRange {
                start,
                end,
                size: self.size(),
            });
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        let root = Zeroizing::new(self.seed.0);
        self.expand(&root, 0, 0, start, end, &mut out);
        Ok(out)
    }

    /// The seed of one branch-local leaf.
    pub fn leaf_seed(&self, leaf: u64) -> Result<LeafSecret, SeedTreeError> {
        let mut seeds = self.leaf_seeds(leaf, leaf.saturating_add(1))?;
        seeds.pop().ok_or(SeedTreeError::BadRange {
            start: leaf,
            end: leaf + 1,
            size: self.size(),
        })
    }

    /// Depth-first expansion of the node at (`level`, branch-local `pos`) into the leaves of
    /// `start..end` below it.
    fn expand(
        &self,
        node: &[u8; 32],
        level: u32,
        pos: u64,
        start: u64,
        end: u64,
        out: &mut Vec<LeafSecret>,
    ) {
        let span = 1u64 << (self.depth - level);
        let (lo, hi) = (pos * span, (pos + 1) * span);
        if hi <= start || lo >= end {
            return;
        }
        if level == self.depth {
            out.push(self.leaf_from_node(node, pos));
            return;
        }
        for child in [2 * pos, 2 * pos + 1] {
            let seed = Zeroizing::new(hash32(
                GGM_NODE,
                node,
                &position_salt(level + 1, self.global(level + 1, child)),
                &[],
            ));
            self.expand(&seed, level + 1, child, start, end, out);
        }
    }

    fn leaf_from_node(&self, node: &[u8; 32], pos: u64) -> LeafSecret {
        let wide = Zeroizing::new(hash64(
            GGM_LEAF,
            node,
            &position_salt(self.depth, self.global(self.depth, pos)),
            &[],
        ));
        LeafSecret::from_wide_bytes(&wide)
    }

    /// Global index of a node at `level` of this branch (unique across branches).
    fn global(&self, level: u32, pos: u64) -> u64 {
        (u64::from(self.index) << level) | pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(seeds: &[LeafSecret]) -> Vec<[u8; 32]> {
        seeds.iter().map(|s| *s.to_bytes()).collect()
    }

    fn branch(index: u32, depth: u32) -> Branch {
        Branch::new(BranchSeed::from_bytes([index as u8; 32]), index, depth).unwrap()
    }

    #[test]
    fn sub_ranges_agree_with_full_expansion() {
        let b = branch(3, 6);
        let all = bytes(&b.leaf_seeds(0, 64).unwrap());
        assert_eq!(all.len(), 64);
        assert_eq!(bytes(&b.leaf_seeds(10, 37).unwrap()), all[10..37]);
        assert_eq!(*b.leaf_seed(63).unwrap().to_bytes(), all[63]);
    }

    #[test]
    fn seeds_are_distinct_and_canonical() {
        let b = branch(1, 8);
        let all = b.leaf_seeds(0, 256).unwrap();
        let set: std::collections::BTreeSet<_> = all.iter().map(|s| *s.to_bytes()).collect();
        assert_eq!(set.len(), 256);
        for s in &all {
            assert!(LeafSecret::from_canonical_bytes(&s.to_bytes()).is_ok());
        }
    }

    #[test]
    fn branches_with_equal_seed_still_differ() {
        let seed = [9u8; 32];
        let a = Branch::new(BranchSeed::from_bytes(seed), 0, 4).unwrap();
        let b = Branch::new(BranchSeed::from_bytes(seed), 1, 4).unwrap();
        assert!(!a.leaf_seed(0).unwrap().ct_eq(&b.leaf_seed(0).unwrap()));
    }

    #[test]
    fn bad_ranges_rejected() {
        let b = branch(0, 4);
        assert!(matches!(
            b.leaf_seeds(5, 5),
            Err(SeedTreeError::BadRange { .. })
        ));
        assert!(matches!(
            b.leaf_seeds(0, 17),
            Err(SeedTreeError::BadRange { .. })
        ));
        assert!(b.leaf_seed(16).is_err());
        assert!(matches!(
            Branch::new(BranchSeed::from_bytes([0; 32]), 0, 33),
            Err(SeedTreeError::DepthTooLarge(33))
        ));
    }

    #[test]
    fn branch_inputs_differ_by_key_index_and_owner() {
        let (a, b) = (MemberId([1; 32]), MemberId([2; 32]));
        let base = branch_prf_input(&[0; 16], 0, &a);
        assert_ne!(base, branch_prf_input(&[0; 16], 1, &a));
        assert_ne!(base, branch_prf_input(&[1; 16], 0, &a));
        assert_ne!(base, branch_prf_input(&[0; 16], 0, &b));
    }

    #[test]
    fn debug_is_redacted() {
        let s = branch(0, 2).leaf_seed(0).unwrap();
        assert_eq!(format!("{s:?}"), "LeafSecret([redacted])");
        assert_eq!(
            format!("{:?}", BranchSeed::from_bytes([1; 32])),
            "BranchSeed([redacted])"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn any_range_matches_single_leaves(start in 0u64..128, len in 1u64..32) {
            let b = branch(5, 7);
            let end = (start + len).min(128);
            prop_assume!(start < end);
            let range = b.leaf_seeds(start, end).unwrap();
            for (i, seed) in range.iter().enumerate() {
                prop_assert!(seed.ct_eq(&b.leaf_seed(start + i as u64).unwrap()));
            }
        }
    }
}
