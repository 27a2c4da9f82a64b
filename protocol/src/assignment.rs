//! Stake-weighted rendezvous (highest-random-weight) hashing: which member owns each branch and
//! which `r` members hold each leaf's shares. A member wins an item with probability proportional
//! to its stake, a membership change moves only the items the changed member wins or loses, and
//! integer-only arithmetic (a fixed-point `log2`) gives every node the same answer bit for bit.
//!
//! The score rule and what the tests measure: `docs/crypto-core.md`.

use std::cmp::Ordering;

use thiserror::Error;

use crate::hash::{hash32, Domain};
use crate::member::MemberId;

const RENDEZVOUS: Domain = Domain::new("seedfed-hrw");

/// Fractional bits of the fixed-point `−log2(u)`.
const FRAC_BITS: u32 = 32;

/// What an assignment is for; part of every hash, so the two never correlate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Which member generates a branch of the seed tree.
    BranchOwner,
    /// Which members hold shares of a leaf seed.
    LeafHolder,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::BranchOwner => b"branch-owner",
            Purpose::LeafHolder => b"leaf-holder",
        }
    }
}

/// A member and its stake (voting weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weighted {
    /// The member.
    pub member: MemberId,
    /// Its stake; zero-stake members are never chosen.
    pub stake: u64,
}

/// Why an assignment could not be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AssignmentError {
    /// Fewer members with stake than places to fill.
    #[error("need {need} members with stake, only {have} available")]
    NotEnoughMembers {
        /// Places to fill.
        need: usize,
        /// Members with non-zero stake.
        have: usize,
    },
    /// A member appears twice in the member list.
    #[error("member {0} listed twice")]
    DuplicateMember(MemberId),
}

/// A member's score for one item: stake / −log2(u), kept as a fraction to compare exactly.
#[derive(Clone, Copy, Debug)]
struct Score {
    stake: u64,
    neg_log: u64,
}

impl Score {
    /// Compares `a.stake / a.neg_log` with `b.stake / b.neg_log` without division.
    fn cmp(&self, other: &Score) -> Ordering {
        let lhs = u128::from(self.stake) * u128::from(other.neg_log);
        let rhs = u128::from(other.stake) * u128::from(self.neg_log);
        lhs.cmp(&rhs)
    }
}

/// The `count` highest-scoring members for `item`, best first (ties broken by member id).
pub fn top(
    beacon: &[u8; 32],
    purpose: Purpose,
    item: u64,
    members: &[Weighted],
    count: usize,
) -> Result<Vec<MemberId>, AssignmentError> {
    check_members(members)?;
    let eligible: Vec<&Weighted> = members.iter().filter(|m| m.stake > 0).collect();
    if eligible.len() < count {
        return Err(AssignmentError::NotEnoughMembers {
            need: count,
            have: eligible.len(),
        });
    }
    let mut scored: Vec<(Score, MemberId)> = eligible
        .iter()
        .map(|m| (score(beacon, purpose, item, m), m.member))
        .collect();
    scored.sort_by(|(sa, ma), (sb, mb)| sb.cmp(sa).then_with(|| ma.cmp(mb)));
    Ok(scored.into_iter().take(count).map(|(_, m)| m).collect())
}

/// The owner of each of `branches` branches.
pub fn branch_owners(
    beacon: &[u8; 32],
    branches: u32,
    members: &[Weighted],
) -> Result<Vec<MemberId>, AssignmentError> {
    (0..u64::from(branches))
        .map(|b| top(beacon, Purpose::BranchOwner, b, members, 1).map(|v| v[0]))
        .collect()
}

/// The `r` holders of leaf `leaf`.
pub fn leaf_holders(
    beacon: &[u8; 32],
    leaf: u64,
    members: &[Weighted],
    r: usize,
) -> Result<Vec<MemberId>, AssignmentError> {
    top(beacon, Purpose::LeafHolder, leaf, members, r)
}

fn check_members(members: &[Weighted]) -> Result<(), AssignmentError> {
    let mut seen = std::collections::BTreeSet::new();
    for m in members {
        if !seen.insert(m.member) {
            return Err(AssignmentError::DuplicateMember(m.member));
        }
    }
    Ok(())
}

fn score(beacon: &[u8; 32], purpose: Purpose, item: u64, m: &Weighted) -> Score {
    let h = hash32(
        RENDEZVOUS,
        &[],
        &[0; 16],
        &[
            beacon,
            purpose.tag(),
            &item.to_le_bytes(),
            m.member.as_bytes(),
        ],
    );
    let mut word = [0u8; 8];
    word.copy_from_slice(&h[..8]);
    Score {
        stake: m.stake,
        neg_log: neg_log2_unit(u64::from_be_bytes(word)),
    }
}

/// `−log2(u)` for `u = (x + 1) / 2^64 ∈ (0, 1]`, in fixed point with [`FRAC_BITS`] fractional
/// bits, plus one so it is never zero (keeps every score finite and comparable).
fn neg_log2_unit(x: u64) -> u64 {
    // log2(x + 1) for x + 1 in [1, 2^64], as fixed point; then −log2(u) = 64 − log2(x + 1).
    let v = u128::from(x) + 1;
    let int = 127 - v.leading_zeros(); // floor(log2 v), 0..=64
                                       // Mantissa m = v / 2^int in [1, 2), as Q1.63.
    let mut m: u128 = if int >= 63 {
        v >> (int - 63)
    } else {
        v << (63 - int)
    };
    let one: u128 = 1 << 63;
    let mut frac: u64 = 0;
    for bit in (0..FRAC_BITS).rev() {
        m = (m * m) >> 63; // square: stays in [1, 4)
        if m >= 2 * one {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    let log2_v = (u64::from(int) << FRAC_BITS) | frac;
    (64u64 << FRAC_BITS) - log2_v + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u8, stake: u64) -> Vec<Weighted> {
        (0..n)
            .map(|i| Weighted {
                member: MemberId([i; 32]),
                stake,
            })
            .collect()
    }

    #[test]
    fn fixed_point_log_matches_float() {
        for x in [
            0u64,
            1,
            2,
            1000,
            1 << 20,
            1 << 40,
            u64::MAX / 3,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let fixed = neg_log2_unit(x) as f64 / (1u64 << FRAC_BITS) as f64;
            let u = (x as f64 + 1.0) / 2f64.powi(64);
            let float = -u.log2();
            assert!((fixed - float).abs() < 1e-6, "x={x}: {fixed} vs {float}");
        }
    }

    #[test]
    fn deterministic_and_distinct_holders() {
        let ms = members(7, 10);
        let a = leaf_holders(&[1; 32], 42, &ms, 5).unwrap();
        let b = leaf_holders(&[1; 32], 42, &ms, 5).unwrap();
        assert_eq!(a, b);
        let set: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(set.len(), 5);
        // Order of the member list does not matter.
        let mut rev = ms.clone();
        rev.reverse();
        assert_eq!(leaf_holders(&[1; 32], 42, &rev, 5).unwrap(), a);
    }

    #[test]
    fn beacon_changes_assignment() {
        let ms = members(7, 10);
        let a = branch_owners(&[1; 32], 64, &ms).unwrap();
        let b = branch_owners(&[2; 32], 64, &ms).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn errors_name_the_problem() {
        let ms = members(3, 10);
        assert_eq!(
            leaf_holders(&[0; 32], 0, &ms, 5),
            Err(AssignmentError::NotEnoughMembers { need: 5, have: 3 })
        );
        let mut dup = ms.clone();
        dup.push(ms[0]);
        assert_eq!(
            leaf_holders(&[0; 32], 0, &dup, 1),
            Err(AssignmentError::DuplicateMember(ms[0].member))
        );
        let mut zero = ms;
        zero[0].stake = 0;
        assert_eq!(
            leaf_holders(&[0; 32], 0, &zero, 3),
            Err(AssignmentError::NotEnoughMembers { need: 3, have: 2 })
        );
    }

    /// A joining equal-stake member takes about 1/(n+1) of the items and nothing else moves.
    /// Measured over 20,000 items with n = 10: expected 1/11 ≈ 0.0909; the binomial standard
    /// deviation is ≈ 0.002, so the stated tolerance ±0.01 is five sigmas.
    #[test]
    fn join_moves_about_one_over_n_plus_one() {
        let before = members(10, 100);
        let mut after = before.clone();
        let newcomer = MemberId([200; 32]);
        after.push(Weighted {
            member: newcomer,
            stake: 100,
        });
        let items = 20_000u64;
        let mut moved = 0u64;
        for item in 0..items {
            let a = top(&[7; 32], Purpose::BranchOwner, item, &before, 1).unwrap()[0];
            let b = top(&[7; 32], Purpose::BranchOwner, item, &after, 1).unwrap()[0];
            if a != b {
                assert_eq!(b, newcomer, "an item moved between old members");
                moved += 1;
            }
        }
        let fraction = moved as f64 / items as f64;
        assert!(
            (fraction - 1.0 / 11.0).abs() < 0.01,
            "moved fraction {fraction}"
        );
    }

    /// Stake weighting: a member with 3x stake wins about 3x as many items.
    #[test]
    fn wins_are_proportional_to_stake() {
        let mut ms = members(4, 100);
        ms[0].stake = 300; // total 600: member 0 should win half
        let items = 12_000u64;
        let wins = (0..items)
            .filter(|i| top(&[3; 32], Purpose::LeafHolder, *i, &ms, 1).unwrap()[0] == ms[0].member)
            .count();
        let fraction = wins as f64 / items as f64;
        assert!((fraction - 0.5).abs() < 0.025, "fraction {fraction}");
    }
}
