//! Sectors: the LMS tree of height `h` cut into `2^p` subtrees, one per branch. Every node carries
//! its global RFC 8554 number, so the sector roots combine (in [`crate::master`]) into exactly the
//! root of one ordinary LMS tree. A sector is built from its leaves' seeds (each requested once,
//! used and zeroized; multi-threaded output equals single-threaded) or from its public leaf keys
//! alone, so anyone can check a published sector.
//!
//! Layout, API and tests: `docs/lms.md` (Sectorization).

use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::lmots::{self, HashValue, Identifier, KeygenScratch, LeafSeed, LmotsType};
use crate::lms::{interior_hash, leaf_hash, LmsPublicKey, LmsType};

/// Errors of sector layout, generation and lookup.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SectorError {
    /// `p` must be smaller than the tree height.
    #[error("{sector_levels} sector levels do not fit a tree of height {height} (need p < h)")]
    TooManySectorLevels {
        /// Requested `p`.
        sector_levels: u32,
        /// Tree height `h`.
        height: u32,
    },
    /// No such branch.
    #[error("branch {branch} out of range: the tree has {sectors} sectors")]
    BranchOutOfRange {
        /// Requested branch.
        branch: u32,
        /// Number of sectors `2^p`.
        sectors: u32,
    },
    /// The leaf is not inside this sector.
    #[error("leaf {q} is not in sector {branch}")]
    LeafNotInSector {
        /// Leaf index.
        q: u32,
        /// This sector's branch.
        branch: u32,
    },
    /// A list of per-leaf values had the wrong length.
    #[error("expected {expected} leaf values for the sector, got {found}")]
    WrongLeafCount {
        /// Values given.
        found: usize,
        /// Leaves in a sector.
        expected: usize,
    },
}

/// The shape of a sectorized LMS tree: parameter sets, identifier `I`, and `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLayout {
    /// Tree parameter set (height `h`).
    pub lms_type: LmsType,
    /// One-time key parameter set.
    pub ots_type: LmotsType,
    /// Tree identifier `I`.
    pub id: Identifier,
    sector_levels: u32,
}

impl TreeLayout {
    /// A layout with `2^sector_levels` sectors; requires `sector_levels < h`.
    pub fn new(
        lms_type: LmsType,
        ots_type: LmotsType,
        id: Identifier,
        sector_levels: u32,
    ) -> Result<Self, SectorError> {
        if sector_levels >= lms_type.height() {
            return Err(SectorError::TooManySectorLevels {
                sector_levels,
                height: lms_type.height(),
            });
        }
        Ok(TreeLayout {
            lms_type,
            ots_type,
            id,
            sector_levels,
        })
    }

    /// `p`, the number of levels above the sector roots.
    pub fn sector_levels(&self) -> u32 {
        self.sector_levels
    }

    /// Tree height `h`.
    pub fn height(&self) -> u32 {
        self.lms_type.height()
    }

    /// Number of sectors, `2^p`.
    pub fn sectors(&self) -> u32 {
        1 << self.sector_levels
    }

    /// Height of each sector's subtree, `h - p`.
    pub fn sector_height(&self) -> u32 {
        self.height() - self.sector_levels
    }

    /// Leaves per sector, `2^(h-p)`.
    pub fn leaves_per_sector(&self) -> u32 {
        1 << self.sector_height()
    }

    /// The sector holding leaf `q` (`None` if `q >= 2^h`).
    pub fn sector_of(&self, q: u32) -> Option<u32> {
        (u64::from(q) < self.lms_type.leaves()).then(|| q >> self.sector_height())
    }

    /// The leaves of sector `branch`.
    pub fn sector_leaves(&self, branch: u32) -> Result<std::ops::Range<u32>, SectorError> {
        self.check_branch(branch)?;
        let n = self.leaves_per_sector();
        Ok(branch * n..(branch + 1) * n)
    }

    /// RFC 8554 node number of sector `branch`'s root, `2^p + branch`.
    pub fn sector_root_node(&self, branch: u32) -> u32 {
        self.sectors() + branch
    }

    /// The public key with root `root`.
    pub fn public_key(&self, root: HashValue) -> LmsPublicKey {
        LmsPublicKey {
            lms_type: self.lms_type,
            ots_type: self.ots_type,
            id: self.id,
            root,
        }
    }

    pub(crate) fn check_branch(&self, branch: u32) -> Result<(), SectorError> {
        if branch >= self.sectors() {
            return Err(SectorError::BranchOutOfRange {
                branch,
                sectors: self.sectors(),
            });
        }
        Ok(())
    }
}

/// One sector's public tree: every leaf key `K` and every node from the leaves up to the
/// sector root. Holds no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sector {
    layout: TreeLayout,
    branch: u32,
    /// Leaf public keys `K`, by local leaf index.
    keys: Vec<HashValue>,
    /// Nodes by local heap index `1..2^(s+1)` (index 0 unused); local `l` at depth `d` is
    /// global node `(2^p + b) * 2^d + (l - 2^d)`.
    nodes: Vec<HashValue>,
}

impl Sector {
    /// Generates sector `branch` from its leaves' seeds. `seed_of(q)` is called exactly once
    /// for every leaf `q` of the sector; the seed is dropped (zeroized) right after use.
    /// With `threads > 1` the leaves are split over scoped threads; the result is identical.
    pub fn generate<F>(
        layout: TreeLayout,
        branch: u32,
        threads: usize,
        seed_of: F,
    ) -> Result<Self, SectorError>
    where
        F: Fn(u32) -> LeafSeed + Sync,
    {
        let leaves = layout.sector_leaves(branch)?;
        let n = layout.leaves_per_sector() as usize;
        let mut keys = vec![[0u8; 32]; n];
        let threads = threads.clamp(1, n);
        let chunk = n.div_ceil(threads);
        let first = leaves.start;
        let fill = |start: u32, out: &mut [HashValue]| {
            let mut scratch = KeygenScratch::new(layout.ots_type, &layout.id);
            for (k, q) in out.iter_mut().zip(start..) {
                let seed = seed_of(q);
                *k = scratch.leaf_k(q, &seed);
            }
        };
        if threads == 1 {
            fill(first, &mut keys);
        } else {
            std::thread::scope(|s| {
                for (c, out) in keys.chunks_mut(chunk).enumerate() {
                    let fill = &fill;
                    s.spawn(move || fill(first + (c * chunk) as u32, out));
                }
            });
        }
        Ok(Self::build(layout, branch, keys))
    }

    /// Generates sector `branch` from a slice of its leaves' seeds (in leaf order).
    pub fn generate_from_seeds(
        layout: TreeLayout,
        branch: u32,
        threads: usize,
        seeds: &[LeafSeed],
    ) -> Result<Self, SectorError> {
        let leaves = layout.sector_leaves(branch)?;
        if seeds.len() != leaves.len() {
            return Err(SectorError::WrongLeafCount {
                found: seeds.len(),
                expected: leaves.len(),
            });
        }
        let first = leaves.start;
        Self::generate(layout, branch, threads, |q| {
            seeds[(q - first) as usize].clone()
        })
    }

    /// Rebuilds sector `branch` from its public leaf keys `K` (in leaf order), e.g. as
    /// published by the sector's owner, so anyone can check its root and leaves.
    pub fn from_leaf_keys(
        layout: TreeLayout,
        branch: u32,
        keys: Vec<HashValue>,
    ) -> Result<Self, SectorError> {
        let leaves = layout.sector_leaves(branch)?;
        if keys.len() != leaves.len() {
            return Err(SectorError::WrongLeafCount {
                found: keys.len(),
                expected: leaves.len(),
            });
        }
        Ok(Self::build(layout, branch, keys))
    }

    fn build(layout: TreeLayout, branch: u32, keys: Vec<HashValue>) -> Self {
        let n = keys.len();
        let mut nodes = vec![[0u8; 32]; 2 * n];
        let mut sector = Sector {
            layout,
            branch,
            keys,
            nodes: Vec::new(),
        };
        for (l, k) in (n..2 * n).zip(&sector.keys) {
            nodes[l] = leaf_hash(&layout.id, sector.global_node(l as u32), k);
        }
        for l in (1..n).rev() {
            nodes[l] = interior_hash(
                &layout.id,
                sector.global_node(l as u32),
                &nodes[2 * l],
                &nodes[2 * l + 1],
            );
        }
        sector.nodes = nodes;
        sector
    }

    /// Global RFC 8554 node number of local heap index `l`.
    fn global_node(&self, l: u32) -> u32 {
        let d = 31 - l.leading_zeros();
        (self.layout.sector_root_node(self.branch) << d) + (l - (1 << d))
    }

    /// The layout this sector belongs to.
    pub fn layout(&self) -> &TreeLayout {
        &self.layout
    }

    /// This sector's branch index `b`.
    pub fn branch(&self) -> u32 {
        self.branch
    }

    /// The sector root, node `T[2^p + b]`.
    pub fn root(&self) -> HashValue {
        self.nodes[1]
    }

    /// All leaf public keys `K`, in leaf order.
    pub fn leaf_keys(&self) -> &[HashValue] {
        &self.keys
    }

    /// The leaf public keys, taken out of the sector (the rest of the tree is dropped): what
    /// is stored of a tree, without a copy (`2^(h−p)` × 32 bytes, 8 MiB at H20).
    pub fn into_leaf_keys(self) -> Vec<HashValue> {
        self.keys
    }

    fn local_leaf(&self, q: u32) -> Result<usize, SectorError> {
        let leaves = self.layout.sector_leaves(self.branch)?;
        if !leaves.contains(&q) {
            return Err(SectorError::LeafNotInSector {
                q,
                branch: self.branch,
            });
        }
        Ok((q - leaves.start) as usize)
    }

    /// The LM-OTS public key hash `K` of leaf `q`.
    pub fn leaf_key(&self, q: u32) -> Result<HashValue, SectorError> {
        Ok(self.keys[self.local_leaf(q)?])
    }

    /// The leaf node `T[2^h + q]`.
    pub fn leaf_node(&self, q: u32) -> Result<HashValue, SectorError> {
        Ok(self.nodes[self.keys.len() + self.local_leaf(q)?])
    }

    /// Node `T[r]` by its global RFC 8554 number, if it lies in this sector.
    pub fn node(&self, r: u32) -> Option<HashValue> {
        if r == 0 {
            return None;
        }
        let root = self.layout.sector_root_node(self.branch);
        let d_r = 31 - r.leading_zeros();
        let d_root = 31 - root.leading_zeros();
        if d_r < d_root || d_r > d_root + self.layout.sector_height() {
            return None;
        }
        let d = d_r - d_root;
        if r >> d != root {
            return None;
        }
        let l = (1u32 << d) + (r - (root << d));
        self.nodes.get(l as usize).copied()
    }

    /// The authentication path of leaf `q` inside the sector (`h - p` nodes, leaf level
    /// first); [`crate::master::Master::auth_path`] appends the top `p`.
    pub fn auth_path(&self, q: u32) -> Result<Vec<HashValue>, SectorError> {
        let mut l = self.keys.len() + self.local_leaf(q)?;
        let mut out = Vec::with_capacity(self.layout.sector_height() as usize);
        while l > 1 {
            out.push(self.nodes[l ^ 1]);
            l /= 2;
        }
        Ok(out)
    }

    /// Whether `seed` (e.g. reconstructed from shares) is the seed of leaf `q`: recomputes
    /// `K` and compares it, in constant time, with the public leaf key.
    pub fn check_leaf_seed(&self, q: u32, seed: &LeafSeed) -> Result<bool, SectorError> {
        let want = self.leaf_key(q)?;
        let k = lmots::leaf_public_key(self.layout.ots_type, &self.layout.id, q, seed);
        Ok(bool::from(k.ct_eq(&want)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(q: u32) -> LeafSeed {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&q.to_le_bytes());
        b[31] = 0x77;
        LeafSeed::from_bytes(b)
    }

    fn layout(p: u32) -> TreeLayout {
        TreeLayout::new(LmsType::H5, LmotsType::W8, [0x42; 16], p).unwrap()
    }

    #[test]
    fn layout_validation() {
        assert_eq!(
            TreeLayout::new(LmsType::H5, LmotsType::W8, [0; 16], 5),
            Err(SectorError::TooManySectorLevels {
                sector_levels: 5,
                height: 5
            })
        );
        let l = layout(2);
        assert_eq!(l.sectors(), 4);
        assert_eq!(l.sector_leaves(3).unwrap(), 24..32);
        assert_eq!(l.sector_of(31), Some(3));
        assert_eq!(l.sector_of(32), None);
        assert!(matches!(
            l.sector_leaves(4),
            Err(SectorError::BranchOutOfRange { .. })
        ));
    }

    #[test]
    fn threaded_generation_is_identical() {
        let l = layout(1);
        let one = Sector::generate(l, 1, 1, seed).unwrap();
        let three = Sector::generate(l, 1, 3, seed).unwrap();
        assert_eq!(one, three);
        let from_keys = Sector::from_leaf_keys(l, 1, one.leaf_keys().to_vec()).unwrap();
        assert_eq!(from_keys, one);
        // Taking the keys back gives exactly what built it.
        assert_eq!(from_keys.into_leaf_keys(), one.leaf_keys());
    }

    #[test]
    fn whole_tree_sector_matches_plain_tree() {
        // p = 0: one sector is the whole tree; compare with a direct heap computation.
        let l = layout(0);
        let s = Sector::generate(l, 0, 2, seed).unwrap();
        let id = l.id;
        let mut t = vec![[0u8; 32]; 64];
        for q in 0..32u32 {
            let k = lmots::leaf_public_key(l.ots_type, &id, q, &seed(q));
            t[32 + q as usize] = leaf_hash(&id, 32 + q, &k);
        }
        for r in (1..32).rev() {
            t[r] = interior_hash(&id, r as u32, &t[2 * r], &t[2 * r + 1]);
        }
        assert_eq!(s.root(), t[1]);
        for r in 1..64u32 {
            assert_eq!(s.node(r), Some(t[r as usize]), "node {r}");
        }
        assert_eq!(s.node(64), None);
        assert_eq!(s.node(0), None);
    }

    #[test]
    fn node_lookup_respects_sector_bounds() {
        let l = layout(2);
        let s = Sector::generate(l, 2, 1, seed).unwrap();
        assert_eq!(s.node(6), Some(s.root()));
        assert_eq!(s.node(5), None);
        assert_eq!(s.node(3), None);
        // Leaves of sector 2 are nodes 48..56.
        assert_eq!(s.node(48), Some(s.leaf_node(16).unwrap()));
        assert_eq!(s.node(47), None);
        assert_eq!(s.node(56), None);
        assert_eq!(s.node(12), Some(s.nodes[2]));
        assert_eq!(s.node(13), Some(s.nodes[3]));
    }

    #[test]
    fn leaf_checks() {
        let l = layout(2);
        let s = Sector::generate(l, 0, 1, seed).unwrap();
        assert_eq!(s.check_leaf_seed(3, &seed(3)), Ok(true));
        assert_eq!(s.check_leaf_seed(3, &seed(4)), Ok(false));
        assert_eq!(
            s.check_leaf_seed(9, &seed(9)),
            Err(SectorError::LeafNotInSector { q: 9, branch: 0 })
        );
        assert_eq!(s.auth_path(5).unwrap().len(), 3);
        assert!(matches!(
            Sector::from_leaf_keys(l, 0, vec![[0; 32]; 7]),
            Err(SectorError::WrongLeafCount {
                found: 7,
                expected: 8
            })
        ));
    }
}
