//! The master tree: the top `p` levels of the LMS tree, over the `2^p` sector roots. Its root with
//! the type codes and `I` is the system public key, an ordinary RFC 8554 LMS public key, and a leaf
//! signature (sector path, then master path) is a plain LMS signature. [`Master::sign`] verifies
//! what it produced against the system key, so a wrong seed or a stale sector never yields an
//! invalid signature.
//!
//! See `docs/lms.md` (Sectorization).

use thiserror::Error;

use crate::lmots::{HashValue, LeafSeed};
use crate::lms::{self, interior_hash, LmsPublicKey, LmsSignature, SignError};
use crate::sector::{Sector, SectorError, TreeLayout};

/// Errors of master-tree construction and signing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MasterError {
    /// Wrong number of sector roots.
    #[error("expected {expected} sector roots, got {found}")]
    WrongRootCount {
        /// Roots given.
        found: usize,
        /// `2^p`.
        expected: usize,
    },
    /// The sector belongs to another tree layout.
    #[error("the sector was built for a different tree layout")]
    LayoutMismatch,
    /// The sector's root is not the one this master tree was built from.
    #[error("sector {branch}'s root differs from the master tree's")]
    SectorRootMismatch {
        /// Branch index.
        branch: u32,
    },
    /// A sector lookup failed.
    #[error(transparent)]
    Sector(#[from] SectorError),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// The master tree: nodes `T[1] .. T[2^(p+1) - 1]`, the bottom row being the sector roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    layout: TreeLayout,
    /// Heap of global nodes `1..2^(p+1)` (index 0 unused).
    nodes: Vec<HashValue>,
}

impl Master {
    /// Combines the `2^p` sector roots (in branch order) into the master tree.
    pub fn from_sector_roots(layout: TreeLayout, roots: &[HashValue]) -> Result<Self, MasterError> {
        let n = layout.sectors() as usize;
        if roots.len() != n {
            return Err(MasterError::WrongRootCount {
                found: roots.len(),
                expected: n,
            });
        }
        let mut nodes = vec![[0u8; 32]; 2 * n];
        nodes[n..].copy_from_slice(roots);
        for r in (1..n).rev() {
            nodes[r] = interior_hash(&layout.id, r as u32, &nodes[2 * r], &nodes[2 * r + 1]);
        }
        Ok(Master { layout, nodes })
    }

    /// The layout.
    pub fn layout(&self) -> &TreeLayout {
        &self.layout
    }

    /// The root `T[1]`.
    pub fn root(&self) -> HashValue {
        self.nodes[1]
    }

    /// The system public key (an RFC 8554 LMS public key).
    pub fn public_key(&self) -> LmsPublicKey {
        self.layout.public_key(self.root())
    }

    /// The recorded root of sector `branch`.
    pub fn sector_root(&self, branch: u32) -> Result<HashValue, MasterError> {
        self.layout.check_branch(branch)?;
        Ok(self.nodes[self.layout.sector_root_node(branch) as usize])
    }

    /// The top `p` nodes of the authentication path of any leaf in sector `branch`.
    pub fn auth_path(&self, branch: u32) -> Result<Vec<HashValue>, MasterError> {
        self.layout.check_branch(branch)?;
        let mut r = self.layout.sector_root_node(branch) as usize;
        let mut out = Vec::with_capacity(self.layout.sector_levels() as usize);
        while r > 1 {
            out.push(self.nodes[r ^ 1]);
            r /= 2;
        }
        Ok(out)
    }

    /// Whether `sector` is the one this master tree was built from (same layout and root).
    pub fn check_sector(&self, sector: &Sector) -> Result<(), MasterError> {
        if sector.layout() != &self.layout {
            return Err(MasterError::LayoutMismatch);
        }
        if self.sector_root(sector.branch())? != sector.root() {
            return Err(MasterError::SectorRootMismatch {
                branch: sector.branch(),
            });
        }
        Ok(())
    }

    /// The full `h`-node authentication path of leaf `q`: sector part, then master part.
    pub fn full_path(&self, sector: &Sector, q: u32) -> Result<Vec<HashValue>, MasterError> {
        self.check_sector(sector)?;
        let mut path = sector.auth_path(q)?;
        path.extend(self.auth_path(sector.branch())?);
        Ok(path)
    }

    /// Signs `message` with leaf `q` of `sector` given the leaf's seed, producing a plain
    /// LMS signature under [`public_key`](Self::public_key). The result is verified before it
    /// is returned ([`SignError::WrongKeyMaterial`] if the seed is not leaf `q`'s).
    pub fn sign(
        &self,
        sector: &Sector,
        q: u32,
        seed: &LeafSeed,
        message: &[u8],
    ) -> Result<LmsSignature, MasterError> {
        let path = self.full_path(sector, q)?;
        let sig = lms::sign(
            self.layout.lms_type,
            self.layout.ots_type,
            &self.layout.id,
            q,
            seed,
            message,
            path,
        )?;
        lms::verify(&self.public_key(), message, &sig)
            .map_err(|_| MasterError::Sign(SignError::WrongKeyMaterial))?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lmots::LmotsType;
    use crate::lms::{LmsType, VerifyError};

    fn seed(q: u32) -> LeafSeed {
        let mut b = [0x11u8; 32];
        b[..4].copy_from_slice(&q.to_be_bytes());
        LeafSeed::from_bytes(b)
    }

    #[test]
    fn sectors_combine_to_the_single_tree_root() {
        let id = [9u8; 16];
        let whole = TreeLayout::new(LmsType::H5, LmotsType::W4, id, 0).unwrap();
        let whole_sector = Sector::generate(whole, 0, 1, seed).unwrap();
        for p in 0..4 {
            let l = TreeLayout::new(LmsType::H5, LmotsType::W4, id, p).unwrap();
            let sectors: Vec<Sector> = (0..l.sectors())
                .map(|b| Sector::generate(l, b, 1, seed).unwrap())
                .collect();
            let roots: Vec<HashValue> = sectors.iter().map(Sector::root).collect();
            let m = Master::from_sector_roots(l, &roots).unwrap();
            assert_eq!(m.root(), whole_sector.root(), "p = {p}");
            for s in &sectors {
                let q = l.sector_leaves(s.branch()).unwrap().start + 1;
                let path = m.full_path(s, q).unwrap();
                assert_eq!(path, whole_sector.auth_path(q).unwrap());
                let sig = m.sign(s, q, &seed(q), b"m").unwrap();
                assert_eq!(m.public_key().verify(b"m", &sig), Ok(()));
                assert_eq!(
                    m.public_key().verify(b"n", &sig),
                    Err(VerifyError::Mismatch)
                );
            }
        }
    }

    #[test]
    fn sign_refuses_wrong_material() {
        let l = TreeLayout::new(LmsType::H5, LmotsType::W8, [1; 16], 1).unwrap();
        let s0 = Sector::generate(l, 0, 1, seed).unwrap();
        let s1 = Sector::generate(l, 1, 1, seed).unwrap();
        let m = Master::from_sector_roots(l, &[s0.root(), s1.root()]).unwrap();
        assert_eq!(
            m.sign(&s0, 2, &seed(3), b"x"),
            Err(MasterError::Sign(SignError::WrongKeyMaterial))
        );
        assert_eq!(
            m.sign(&s0, 20, &seed(20), b"x"),
            Err(MasterError::Sector(SectorError::LeafNotInSector {
                q: 20,
                branch: 0
            }))
        );
        let other = Sector::generate(l, 1, 1, |q| seed(q + 1)).unwrap();
        assert_eq!(
            m.sign(&other, 20, &seed(21), b"x"),
            Err(MasterError::SectorRootMismatch { branch: 1 })
        );
        assert!(matches!(
            Master::from_sector_roots(l, &[s0.root()]),
            Err(MasterError::WrongRootCount {
                found: 1,
                expected: 2
            })
        ));
    }
}
