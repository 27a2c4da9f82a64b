use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::lms::LmsType;
use crate::sector::{Sector, TreeLayout};
use crate::shamir::tests::members;
use crate::shamir::Commitment;

const K: usize = 3;

struct Fixture {
    layout: TreeLayout,
    sector: Sector,
    commitments: Vec<Commitment>,
    dealings: Vec<shamir::Dealing>,
    commitments_root: [u8; 32],
}

/// Sector 1 of a height-5 key in 2 sectors (leaves 16..32), every seed dealt 3-of-5; the seed
/// of leaf `bad` (if any) is dealt wrong: a seed that is not the tree's.
fn fixture(bad: Option<u32>) -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let lms_type = LmsType::from_height(5).expect("height 5");
    let layout = TreeLayout::new(lms_type, LmotsType::W4, [4; 16], 1).expect("layout");
    let secrets: Vec<LeafSecret> = (0..16).map(|_| LeafSecret::random(&mut rng)).collect();
    let seeds: Vec<lmots::LeafSeed> = secrets.iter().map(LeafSecret::lms_seed).collect();
    let sector = Sector::generate_from_seeds(layout, 1, 1, &seeds).expect("sector");
    let holders = members(5, 0x51);
    let dealings: Vec<shamir::Dealing> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if bad == Some(16 + i as u32) {
                shamir::deal(&LeafSecret::random(&mut rng), &holders, K, &mut rng)
            } else {
                shamir::deal(s, &holders, K, &mut rng)
            }
            .expect("deal")
        })
        .collect();
    let commitments: Vec<Commitment> = dealings.iter().map(|d| d.commitment.clone()).collect();
    let commitments_root = dealing::chunk_root(16, &commitments).expect("root");
    Fixture {
        layout,
        sector,
        commitments,
        dealings,
        commitments_root,
    }
}

impl Fixture {
    fn reveal(&self, leaf: u64, holder: usize) -> RevealedShare {
        let i = (leaf - 16) as usize;
        RevealedShare {
            leaf,
            share: self.dealings[i].shares[holder].clone(),
            commitment: self.commitments[i].encoded().clone(),
            path: dealing::chunk_path(16, &self.commitments, leaf).expect("path"),
        }
    }

    /// Runs the audit of `leaf` with holders 0, 2, 4: checks, rebuilds, matches.
    fn audit(&self, leaf: u64) -> Result<bool, AuditError> {
        let mut shares = Vec::new();
        for h in [0, 2, 4] {
            let r = self.reveal(leaf, h);
            check_share(&self.commitments_root, &r, K)?;
            shares.push(r.share);
        }
        let seed = rebuild(&shares, K)?;
        let q = leaf as u32;
        Ok(leaf_matches(
            self.layout.ots_type,
            &self.layout.id,
            self.layout.height(),
            q,
            &seed,
            &self.sector.auth_path(q).expect("path"),
            &self.sector.root(),
        ))
    }
}

#[test]
fn the_draw_is_deterministic_distinct_and_in_range() {
    let a = draw(&[1; 32], 16..32, 4).expect("draw");
    assert_eq!(a, draw(&[1; 32], 16..32, 4).expect("draw"));
    assert_eq!(a.len(), 4);
    assert!(a.iter().all(|l| (16..32).contains(l)));
    assert_ne!(a, draw(&[2; 32], 16..32, 4).expect("draw"));
    // The whole range can be drawn; more cannot.
    assert_eq!(draw(&[1; 32], 16..32, 16).expect("draw").len(), 16);
    assert!(draw(&[1; 32], 16..32, 17).is_err());
    assert!(draw(&[1; 32], 16..16, 1).is_err());
}

#[test]
fn the_input_binds_every_root() {
    let id = SectorId {
        chain: [1; 32],
        key: 0,
        sector: 1,
        owner: MemberId([2; 32]),
        basis: [6; 32],
    };
    let base = draw_input(&id, &[3; 32], &[4; 32]);
    assert_ne!(base, draw_input(&id, &[5; 32], &[4; 32]));
    assert_ne!(base, draw_input(&id, &[3; 32], &[5; 32]));
    assert_ne!(
        base,
        draw_input(&SectorId { sector: 0, ..id }, &[3; 32], &[4; 32])
    );
}

#[test]
fn an_honest_sector_passes_its_audit() {
    let f = fixture(None);
    for leaf in draw(&[9; 32], 16..32, 2).expect("draw") {
        assert_eq!(f.audit(leaf), Ok(true));
    }
}

#[test]
fn a_seed_that_is_not_the_trees_fails_the_audit() {
    let f = fixture(Some(21));
    // The dealt seed is consistent with its commitment (the shares check out) but it is not
    // the seed the sector root commits to.
    assert_eq!(f.audit(21), Ok(false));
    assert_eq!(f.audit(20), Ok(true));
}

#[test]
fn bad_reveals_are_named() {
    let f = fixture(None);
    // A share revealed with another leaf's commitment is not bound to the root.
    let mut r = f.reveal(18, 1);
    r.commitment = f.commitments[3].encoded().clone();
    assert_eq!(
        check_share(&f.commitments_root, &r, K),
        Err(AuditError::CommitmentNotBound(18))
    );
    // A wrong share value names its holder.
    let mut r = f.reveal(18, 1);
    r.share = f.dealings[3].shares[1].clone();
    assert_eq!(
        check_share(&f.commitments_root, &r, K),
        Err(AuditError::BadShare {
            leaf: 18,
            holder: r.share.holder
        })
    );
    // Too few shares do not rebuild.
    let shares = vec![f.reveal(18, 0).share, f.reveal(18, 1).share];
    assert!(rebuild(&shares, K).is_err());
}
