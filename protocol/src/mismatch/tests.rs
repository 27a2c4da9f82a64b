use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::dealing;
use crate::lmots::{self, LmotsType};
use crate::lms::LmsType;
use crate::sector::Sector as Tree;
use crate::shamir::{self, tests::members, Commitment};

const K: usize = 3;
/// The leaf whose dealt seed is not the tree's.
const BAD: u64 = 20;

struct Fixture {
    layout: TreeLayout,
    tree: Tree,
    root: [u8; 32],
    secrets: Vec<LeafSecret>,
    dealt: Vec<LeafSecret>,
    commitments: Vec<Commitment>,
    commitments_root: [u8; 32],
}

/// Sector 1 of a height-5 key in 2 sectors (leaves 16..32), every seed dealt 3-of-5, except
/// that leaf [`BAD`] is dealt another seed than the tree's.
fn fixture() -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let lms_type = LmsType::from_height(5).expect("height 5");
    let layout = TreeLayout::new(lms_type, LmotsType::W4, [4; 16], 1).expect("layout");
    let secrets: Vec<LeafSecret> = (0..16).map(|_| LeafSecret::random(&mut rng)).collect();
    let seeds: Vec<lmots::LeafSeed> = secrets.iter().map(LeafSecret::lms_seed).collect();
    let tree = Tree::generate_from_seeds(layout, 1, 1, &seeds).expect("sector");
    let dealt: Vec<LeafSecret> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if 16 + i as u64 == BAD {
                LeafSecret::random(&mut rng)
            } else {
                s.clone()
            }
        })
        .collect();
    let holders = members(5, 0x52);
    let commitments: Vec<Commitment> = dealt
        .iter()
        .map(|s| {
            shamir::deal(s, &holders, K, &mut rng)
                .expect("deal")
                .commitment
        })
        .collect();
    let commitments_root = dealing::chunk_root(16, &commitments).expect("root");
    Fixture {
        layout,
        root: tree.root(),
        tree,
        secrets,
        dealt,
        commitments,
        commitments_root,
    }
}

impl Fixture {
    fn sector(&self) -> Sector<'_> {
        Sector {
            root: &self.root,
            commitments_root: &self.commitments_root,
            layout: &self.layout,
            path_len: 4,
            k: K,
        }
    }

    /// The recipient's evidence about `leaf`: the dealt seed, its commitment and path, and
    /// the tree's key of the leaf with its path.
    fn evidence(&self, leaf: u64) -> LeafMismatch {
        let i = (leaf - 16) as usize;
        LeafMismatch {
            leaf,
            seed: *self.dealt[i].to_bytes(),
            commitment: self.commitments[i].encoded().clone(),
            commitment_path: dealing::chunk_path(16, &self.commitments, leaf).expect("path"),
            leaf_key: self.tree.leaf_key(leaf as u32).expect("key"),
            path: self.path(leaf),
        }
    }

    fn path(&self, leaf: u64) -> Vec<[u8; 32]> {
        self.tree.auth_path(leaf as u32).expect("path")
    }
}

fn rejected(why: &'static str) -> Result<(), MismatchError> {
    Err(MismatchError::Rejected(why))
}

#[test]
fn a_dealt_seed_that_is_not_the_trees_convicts_the_owner() {
    let f = fixture();
    let e = f.evidence(BAD);
    assert_eq!(judge(&e, BAD, &f.sector()), Ok(()));
}

#[test]
fn an_honest_owner_is_never_convicted() {
    let f = fixture();
    for leaf in (16..32).filter(|l| *l != BAD) {
        let e = f.evidence(leaf);
        assert_eq!(
            judge(&e, leaf, &f.sector()),
            rejected("the seed generates the sector's leaf"),
            "leaf {leaf}"
        );
    }
}

/// Before, the path carried the owner's signature instead of the leaf key, so a path could
/// come only from the owner (a dead owner stalled its leaves); a wrong path it signed
/// convicted it. Now any copy of the public tree serves a path, and only a key and path the
/// owner's root commits to convict it.
#[test]
fn evidence_the_owners_root_does_not_commit_to_convicts_nobody() {
    let f = fixture();
    let s = f.sector();
    let good = f.evidence(BAD);
    // A wrong path (a recipient's own, or a faulty copy of the tree).
    let mut e = good.clone();
    e.path[0][0] ^= 1;
    assert_eq!(
        judge(&e, BAD, &s),
        rejected("the leaf key and path do not give the sector root")
    );
    // A leaf key that is not the tree's, with the true path.
    let mut e = good.clone();
    e.leaf_key[7] ^= 1;
    assert_eq!(
        judge(&e, BAD, &s),
        rejected("the leaf key and path do not give the sector root")
    );
    // Another leaf's key and path (the root binds each key to its position).
    let mut e = good.clone();
    e.leaf_key = f.tree.leaf_key(17).expect("key");
    e.path = f.path(17);
    assert_eq!(
        judge(&e, BAD, &s),
        rejected("the leaf key and path do not give the sector root")
    );
    // A seed that is not the commitment's secret (the tree's, or anything else).
    let mut e = good.clone();
    e.seed = *f.secrets[(BAD - 16) as usize].to_bytes();
    assert_eq!(
        judge(&e, BAD, &s),
        rejected("seed is not the commitment's secret")
    );
    let mut e = good.clone();
    e.seed = [0xff; 32];
    assert_eq!(
        judge(&e, BAD, &s),
        rejected("seed is not a canonical scalar")
    );
    // Another leaf's commitment, or a commitment path that does not lead to the root.
    let mut e = good.clone();
    e.commitment = f.commitments[0].encoded().clone();
    assert_eq!(
        judge(&e, BAD, &s),
        rejected("commitment not under the sector's commitments root")
    );
    let mut e = good.clone();
    e.commitment_path[1][3] ^= 1;
    assert_eq!(
        judge(&e, BAD, &s),
        rejected("commitment not under the sector's commitments root")
    );
    // Paths of the wrong length.
    let mut e = good.clone();
    e.path.pop();
    assert_eq!(judge(&e, BAD, &s), rejected("a path of the wrong length"));
    // The good evidence, judged for another leaf.
    assert!(judge(&good, 17, &s).is_err());
}

#[test]
fn the_seed_never_shows_in_debug_output() {
    let f = fixture();
    let e = f.evidence(BAD);
    let shown = format!("{e:?}");
    assert!(shown.contains("redacted"));
    assert!(!shown.contains(&format!("{:?}", e.seed)));
}
