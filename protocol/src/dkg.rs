//! Pedersen DKG for the ristretto255 root key, a thin layer over frost-ristretto255's
//! `keys::dkg` (part1/part2/part3) keyed by [`MemberId`] instead of frost identifiers.
//!
//! Every member contributes a random polynomial, so the group secret is the sum of everyone's
//! entropy and nobody knows it; each member ends with a frost [`KeyPackage`] (its signing share)
//! and the common [`PublicKeyPackage`] (every member's verifying share `s_i·G` and the group key),
//! which is what the threshold PRF (`tprf`) needs. Identifiers are `shamir::identifier(member)`.
//!
//! frost's DKG needs every participant to finish: [`run_in_memory`] is the all-honest, all-present
//! path (simulations and tests). Dropping absent or bad dealers by evidence and rerunning with the
//! qualified set is the networked node's job, built from [`part1`]/[`part2`]/[`part3`].

use std::collections::{BTreeMap, BTreeSet};

pub use frost_ristretto255::keys::dkg::{round1, round2};
pub use frost_ristretto255::keys::{KeyPackage, PublicKeyPackage};
use frost_ristretto255::Identifier;
use rand_core::{CryptoRng, RngCore};

use crate::member::MemberId;
use crate::shamir::{self, ShamirError};

/// Errors of the DKG. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkgError {
    /// The threshold or member count is out of range.
    #[error("invalid DKG parameters: {members} members, threshold {threshold}")]
    Parameters {
        /// Members.
        members: usize,
        /// Threshold.
        threshold: u16,
    },
    /// A member appears twice.
    #[error("member {0:?} appears more than once")]
    DuplicateMember(MemberId),
    /// A package arrived from someone not taking part.
    #[error("package from unknown member")]
    UnknownMember,
    /// frost rejected a step; `culprits` are the members it blames (if any).
    #[error("DKG step failed ({message}); blamed: {culprits:?}")]
    Frost {
        /// frost's error text.
        message: String,
        /// Members frost identified as misbehaving.
        culprits: Vec<MemberId>,
    },
    /// Identifier derivation failed.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
}

/// The default root-key threshold for `n` members: `⌊2n/3⌋ + 1`.
pub fn default_threshold(n: usize) -> u16 {
    u16::try_from(2 * n / 3 + 1).unwrap_or(u16::MAX)
}

fn frost_error(e: frost_ristretto255::Error, names: &BTreeMap<Identifier, MemberId>) -> DkgError {
    DkgError::Frost {
        message: e.to_string(),
        culprits: e
            .culprits()
            .iter()
            .filter_map(|id| names.get(id).copied())
            .collect(),
    }
}

/// Who is behind each frost identifier.
type Names = BTreeMap<Identifier, MemberId>;

fn by_identifier<T: Clone>(
    map: &BTreeMap<MemberId, T>,
) -> Result<(BTreeMap<Identifier, T>, Names), DkgError> {
    let mut out = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (m, v) in map {
        let id = shamir::identifier(m)?;
        out.insert(id, v.clone());
        names.insert(id, *m);
    }
    Ok((out, names))
}

/// Round 1 for `me` among `n` members with threshold `t`: keep the secret package, broadcast
/// the package (through consensus).
pub fn part1<R: RngCore + CryptoRng>(
    me: &MemberId,
    n: u16,
    t: u16,
    rng: &mut R,
) -> Result<(round1::SecretPackage, round1::Package), DkgError> {
    let id = shamir::identifier(me)?;
    // frost's part1 fails only on bad parameters (t < 2, t > n, n < 2).
    frost_ristretto255::keys::dkg::part1(id, n, t, rng).map_err(|_| DkgError::Parameters {
        members: n.into(),
        threshold: t,
    })
}

/// Round 2: given everyone else's round-1 packages, keep the secret package and send each
/// returned package (sealed) to the member it is keyed by.
pub fn part2(
    secret: round1::SecretPackage,
    received: &BTreeMap<MemberId, round1::Package>,
) -> Result<(round2::SecretPackage, BTreeMap<MemberId, round2::Package>), DkgError> {
    let (r1, names) = by_identifier(received)?;
    let (secret2, out) =
        frost_ristretto255::keys::dkg::part2(secret, &r1).map_err(|e| frost_error(e, &names))?;
    let out = out
        .into_iter()
        .map(|(id, p)| {
            names
                .get(&id)
                .map(|m| (*m, p))
                .ok_or(DkgError::UnknownMember)
        })
        .collect::<Result<_, _>>()?;
    Ok((secret2, out))
}

/// Round 3: given everyone else's round-1 and round-2 packages, this member's key package and
/// the group's public key package.
pub fn part3(
    secret: &round2::SecretPackage,
    round1: &BTreeMap<MemberId, round1::Package>,
    round2: &BTreeMap<MemberId, round2::Package>,
) -> Result<(KeyPackage, PublicKeyPackage), DkgError> {
    let (r1, names) = by_identifier(round1)?;
    let (r2, _) = by_identifier(round2)?;
    frost_ristretto255::keys::dkg::part3(secret, &r1, &r2).map_err(|e| frost_error(e, &names))
}

/// Runs the whole DKG among `members` (threshold `t`) in memory, every member contributing its
/// own random polynomial; returns each member's key package and the public key package.
/// All-honest path only (see the module docs).
pub fn run_in_memory<R: RngCore + CryptoRng>(
    members: &[MemberId],
    t: u16,
    rng: &mut R,
) -> Result<(BTreeMap<MemberId, KeyPackage>, PublicKeyPackage), DkgError> {
    let mut seen = BTreeSet::new();
    for m in members {
        if !seen.insert(*m) {
            return Err(DkgError::DuplicateMember(*m));
        }
    }
    let n = u16::try_from(members.len()).map_err(|_| DkgError::Parameters {
        members: members.len(),
        threshold: t,
    })?;
    if t < 2 || t > n {
        return Err(DkgError::Parameters {
            members: members.len(),
            threshold: t,
        });
    }
    let mut secrets1 = BTreeMap::new();
    let mut packages1 = BTreeMap::new();
    for m in members {
        let (s, p) = part1(m, n, t, rng)?;
        secrets1.insert(*m, s);
        packages1.insert(*m, p);
    }
    let others = |me: &MemberId, all: &BTreeMap<MemberId, round1::Package>| {
        all.iter()
            .filter(|(m, _)| *m != me)
            .map(|(m, p)| (*m, p.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut secrets2 = BTreeMap::new();
    let mut inbox2: BTreeMap<MemberId, BTreeMap<MemberId, round2::Package>> = BTreeMap::new();
    for (m, s) in secrets1 {
        let (s2, out) = part2(s, &others(&m, &packages1))?;
        secrets2.insert(m, s2);
        for (to, p) in out {
            inbox2.entry(to).or_default().insert(m, p);
        }
    }
    let mut keys = BTreeMap::new();
    let mut public = None;
    for (m, s2) in &secrets2 {
        let received = inbox2.remove(m).unwrap_or_default();
        let (kp, pkp) = part3(s2, &others(m, &packages1), &received)?;
        keys.insert(*m, kp);
        match &public {
            None => public = Some(pkp),
            Some(p) if *p == pkp => {}
            Some(_) => {
                return Err(DkgError::Frost {
                    message: "members derived different public key packages".into(),
                    culprits: vec![],
                })
            }
        }
    }
    let public = public.ok_or(DkgError::Parameters {
        members: 0,
        threshold: t,
    })?;
    Ok((keys, public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shamir::tests::members;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn default_thresholds() {
        assert_eq!(default_threshold(4), 3);
        assert_eq!(default_threshold(7), 5);
        assert_eq!(default_threshold(10), 7);
    }

    #[test]
    fn in_memory_dkg_gives_consistent_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let ms = members(5, 0x33);
        let (keys, public) = run_in_memory(&ms, 3, &mut rng).unwrap();
        assert_eq!(keys.len(), 5);
        assert_eq!(public.min_signers(), Some(3));
        for (m, kp) in &keys {
            assert_eq!(*kp.identifier(), shamir::identifier(m).unwrap());
            assert_eq!(
                public.verifying_shares()[kp.identifier()],
                *kp.verifying_share()
            );
            assert_eq!(public.verifying_key(), kp.verifying_key());
        }
        // Any 3 key packages reconstruct the same group secret, whose public key is the group's.
        let all: Vec<KeyPackage> = keys.values().cloned().collect();
        let a = frost_ristretto255::keys::reconstruct(&all[..3]).unwrap();
        let b = frost_ristretto255::keys::reconstruct(&all[2..]).unwrap();
        assert_eq!(a.serialize(), b.serialize());
        assert_eq!(
            frost_ristretto255::VerifyingKey::from(a),
            *public.verifying_key()
        );
        // A second run gives a different key (fresh entropy).
        let (_, public2) = run_in_memory(&ms, 3, &mut rng).unwrap();
        assert_ne!(public.verifying_key(), public2.verifying_key());
    }

    #[test]
    fn bad_parameters_are_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ms = members(3, 0x34);
        assert!(matches!(
            run_in_memory(&ms, 4, &mut rng),
            Err(DkgError::Parameters { .. })
        ));
        assert!(matches!(
            run_in_memory(&ms, 1, &mut rng),
            Err(DkgError::Parameters { .. })
        ));
        let dup = vec![ms[0], ms[1], ms[0]];
        assert_eq!(
            run_in_memory(&dup, 2, &mut rng).unwrap_err(),
            DkgError::DuplicateMember(ms[0])
        );
    }

    #[test]
    fn tampered_round1_package_is_blamed_on_its_sender() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let ms = members(3, 0x35);
        let mut s1 = BTreeMap::new();
        let mut p1 = BTreeMap::new();
        for m in &ms {
            let (s, p) = part1(m, 3, 2, &mut rng).unwrap();
            s1.insert(*m, s);
            p1.insert(*m, p);
        }
        // ms[2] sends ms[1]'s package as its own: its proof of knowledge fails for its identifier.
        let mut received = p1.clone();
        received.remove(&ms[0]);
        received.insert(ms[2], p1[&ms[1]].clone());
        let err = part2(s1.remove(&ms[0]).unwrap(), &received).unwrap_err();
        let DkgError::Frost { culprits, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(culprits, vec![ms[2]]);
    }
}
