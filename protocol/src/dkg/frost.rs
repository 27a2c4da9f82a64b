//! The frost DKG rounds keyed by [`MemberId`]: identifiers, `part1`/`part2`/`part3`, the
//! default threshold, and the all-honest in-memory run for simulations and tests. Guarantees: a
//! member's identifier is `Identifier::derive("seedfed-member-x/v1" ‖ member id)` in every
//! ciphersuite (for ristretto255, `shamir::identifier`); frost's blame comes back as members.

use std::collections::{BTreeMap, BTreeSet};

use frost_core::keys::dkg as fdkg;
use frost_core::{Ciphersuite, Identifier as FrostIdentifier};
use frost_ristretto255::Ristretto255Sha512;
use rand_core::{CryptoRng, RngCore};

use super::error::DkgError;
use super::{KeyPackage, PublicKeyPackage};
use crate::member::MemberId;
use crate::shamir::{ShamirError, IDENTIFIER_PREFIX};

/// The default threshold for `n` members: `⌊2n/3⌋ + 1`.
pub fn default_threshold(n: usize) -> u16 {
    u16::try_from(2 * n / 3 + 1).unwrap_or(u16::MAX)
}

/// A member's frost identifier in ciphersuite `C`: `Identifier::derive(prefix ‖ member id)`.
pub fn identifier_for<C: Ciphersuite>(member: &MemberId) -> Result<FrostIdentifier<C>, DkgError> {
    let mut input = Vec::with_capacity(IDENTIFIER_PREFIX.len() + 32);
    input.extend_from_slice(IDENTIFIER_PREFIX);
    input.extend_from_slice(member.as_bytes());
    FrostIdentifier::<C>::derive(&input)
        .map_err(|_| DkgError::Shamir(ShamirError::Identifier(*member)))
}

/// Who is behind each frost identifier.
type Names<C> = BTreeMap<FrostIdentifier<C>, MemberId>;

fn frost_error<C: Ciphersuite>(e: frost_core::Error<C>, names: &Names<C>) -> DkgError {
    DkgError::Frost {
        message: e.to_string(),
        culprits: e
            .culprits()
            .iter()
            .filter_map(|id| names.get(id).copied())
            .collect(),
    }
}

#[allow(clippy::type_complexity)]
fn by_identifier<C: Ciphersuite, T: Clone>(
    map: &BTreeMap<MemberId, T>,
) -> Result<(BTreeMap<FrostIdentifier<C>, T>, Names<C>), DkgError> {
    let mut out = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (m, v) in map {
        let id = identifier_for::<C>(m)?;
        out.insert(id, v.clone());
        names.insert(id, *m);
    }
    Ok((out, names))
}

/// Round 1 for `me` among `n` members with threshold `t`: keep the secret package, broadcast
/// the package (through consensus).
pub fn part1<C: Ciphersuite, R: RngCore + CryptoRng>(
    me: &MemberId,
    n: u16,
    t: u16,
    rng: &mut R,
) -> Result<(fdkg::round1::SecretPackage<C>, fdkg::round1::Package<C>), DkgError> {
    let id = identifier_for::<C>(me)?;
    // frost's part1 fails only on bad parameters (t < 2, t > n, n < 2).
    fdkg::part1(id, n, t, rng).map_err(|_| DkgError::Parameters {
        members: n.into(),
        threshold: t,
    })
}

/// Round 2: given everyone else's round-1 packages, keep the secret package and send each
/// returned package (sealed) to the member it is keyed by.
#[allow(clippy::type_complexity)]
pub fn part2<C: Ciphersuite>(
    secret: fdkg::round1::SecretPackage<C>,
    received: &BTreeMap<MemberId, fdkg::round1::Package<C>>,
) -> Result<
    (
        fdkg::round2::SecretPackage<C>,
        BTreeMap<MemberId, fdkg::round2::Package<C>>,
    ),
    DkgError,
> {
    let (r1, names) = by_identifier(received)?;
    let (secret2, out) = fdkg::part2(secret, &r1).map_err(|e| frost_error(e, &names))?;
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
pub fn part3<C: Ciphersuite>(
    secret: &fdkg::round2::SecretPackage<C>,
    round1: &BTreeMap<MemberId, fdkg::round1::Package<C>>,
    round2: &BTreeMap<MemberId, fdkg::round2::Package<C>>,
) -> Result<
    (
        frost_core::keys::KeyPackage<C>,
        frost_core::keys::PublicKeyPackage<C>,
    ),
    DkgError,
> {
    let (r1, names) = by_identifier(round1)?;
    let (r2, _) = by_identifier(round2)?;
    fdkg::part3(secret, &r1, &r2).map_err(|e| frost_error(e, &names))
}

pub(super) fn check_parameters(members: &[MemberId], t: u16) -> Result<u16, DkgError> {
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
    Ok(n)
}

/// Runs the whole ristretto255 DKG among `members` (threshold `t`) in memory, every member
/// contributing its own random polynomial; returns each member's key package and the public key
/// package. All-honest path only (see the module docs).
pub fn run_in_memory<R: RngCore + CryptoRng>(
    members: &[MemberId],
    t: u16,
    rng: &mut R,
) -> Result<(BTreeMap<MemberId, KeyPackage>, PublicKeyPackage), DkgError> {
    run_in_memory_for::<Ristretto255Sha512, R>(members, t, rng)
}

/// [`run_in_memory`] for any frost ciphersuite (e.g. Ed25519 for checkpoints).
#[allow(clippy::type_complexity)]
pub fn run_in_memory_for<C: Ciphersuite, R: RngCore + CryptoRng>(
    members: &[MemberId],
    t: u16,
    rng: &mut R,
) -> Result<
    (
        BTreeMap<MemberId, frost_core::keys::KeyPackage<C>>,
        frost_core::keys::PublicKeyPackage<C>,
    ),
    DkgError,
> {
    let n = check_parameters(members, t)?;
    let mut secrets1 = BTreeMap::new();
    let mut packages1 = BTreeMap::new();
    for m in members {
        let (s, p) = part1::<C, R>(m, n, t, rng)?;
        secrets1.insert(*m, s);
        packages1.insert(*m, p);
    }
    let mut secrets2 = BTreeMap::new();
    let mut inbox2: BTreeMap<MemberId, BTreeMap<MemberId, fdkg::round2::Package<C>>> =
        BTreeMap::new();
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
        agree(&mut public, pkp)?;
    }
    let public = public.ok_or(DkgError::Parameters {
        members: 0,
        threshold: t,
    })?;
    Ok((keys, public))
}

pub(super) fn others<T: Clone>(
    me: &MemberId,
    all: &BTreeMap<MemberId, T>,
) -> BTreeMap<MemberId, T> {
    all.iter()
        .filter(|(m, _)| *m != me)
        .map(|(m, p)| (*m, p.clone()))
        .collect()
}

pub(super) fn agree<C: Ciphersuite>(
    public: &mut Option<frost_core::keys::PublicKeyPackage<C>>,
    pkp: frost_core::keys::PublicKeyPackage<C>,
) -> Result<(), DkgError> {
    match public {
        None => *public = Some(pkp),
        Some(p) if *p == pkp => {}
        Some(_) => {
            return Err(DkgError::Frost {
                message: "members derived different public key packages".into(),
                culprits: vec![],
            })
        }
    }
    Ok(())
}
