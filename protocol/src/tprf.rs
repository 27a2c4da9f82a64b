//! DDH threshold PRF on ristretto255, keyed by a DKG key (`dkg`): member `i` publishes the partial
//! `s_i·H(x)` with a Chaum–Pedersen proof against its verifying share, and any `t` valid partials
//! combine (Lagrange in the exponent) to the same output, a domain-separated hash of `s·H(x)`.
//! Without `t` shares the output is unpredictable (DDH); a bad partial is rejected naming its
//! member, so nobody can bias or corrupt the output.
//!
//! Construction, callers' inputs (sealing branch-seed partials) and tests: `docs/sharing.md`.

use std::collections::BTreeSet;

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use frost_ristretto255::keys::{KeyPackage, PublicKeyPackage};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::hash::{hash32, hash64, Domain};
use crate::member::MemberId;
use crate::shamir::{self, ShamirError};

const H2C: Domain = Domain::new("seedfed-tprf-h2c");
const DLEQ: Domain = Domain::new("seedfed-tprf-dlq");
const OUT: Domain = Domain::new("seedfed-tprf-out");

/// Errors of the threshold PRF. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TprfError {
    /// The key package does not belong to the named member.
    #[error("key package is not {0:?}'s")]
    WrongKey(MemberId),
    /// The member has no verifying share in the public key package.
    #[error("member {0:?} is not in the key's group")]
    UnknownMember(MemberId),
    /// The partial's point does not decode.
    #[error("partial of {0:?} is not a valid point")]
    BadPoint(MemberId),
    /// The partial's proof does not verify.
    #[error("partial of {0:?} has an invalid proof")]
    BadProof(MemberId),
    /// Two partials from one member.
    #[error("two partials from {0:?}")]
    Duplicate(MemberId),
    /// Fewer valid partials than the threshold.
    #[error("{got} partials, threshold {need}")]
    NotEnough {
        /// Partials supplied.
        got: usize,
        /// Threshold.
        need: usize,
    },
    /// The public key package has no (or a zero) threshold (e.g. a pre-3.0 frost package).
    #[error("public key package has no threshold")]
    NoThreshold,
    /// Sharing-layer error.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
}

/// A Chaum–Pedersen proof of equal discrete logarithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DleqProof {
    challenge: Scalar,
    response: Scalar,
}

/// One member's partial evaluation `s_i·H(x)` with its proof. Public for the beacon; seal it to
/// the owner for branch seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// The evaluating member.
    pub member: MemberId,
    /// `s_i·H(x)`, compressed.
    pub point: CompressedRistretto,
    /// Proof against the member's verifying share.
    pub proof: DleqProof,
}

/// `H(x)`: the input hashed to a ristretto255 point.
pub fn hash_to_point(input: &[u8]) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&hash64(H2C, &[], &[0; 16], &[input]))
}

fn challenge(
    member: &MemberId,
    h: &RistrettoPoint,
    y: &RistrettoPoint,
    p: &RistrettoPoint,
    a: &RistrettoPoint,
    b: &RistrettoPoint,
) -> Scalar {
    let parts = [h, y, p, a, b].map(|q| q.compress().to_bytes());
    Scalar::from_bytes_mod_order_wide(&hash64(
        DLEQ,
        &[],
        &[0; 16],
        &[
            member.as_bytes(),
            &parts[0],
            &parts[1],
            &parts[2],
            &parts[3],
            &parts[4],
        ],
    ))
}

fn verifying_point(
    public: &PublicKeyPackage,
    member: &MemberId,
) -> Result<RistrettoPoint, TprfError> {
    let id = shamir::identifier(member)?;
    public
        .verifying_shares()
        .get(&id)
        .map(|v| v.to_element())
        .ok_or(TprfError::UnknownMember(*member))
}

/// Computes `member`'s partial for `input` with its DKG key package.
pub fn partial<R: RngCore + CryptoRng>(
    key: &KeyPackage,
    member: &MemberId,
    input: &[u8],
    rng: &mut R,
) -> Result<Partial, TprfError> {
    if *key.identifier() != shamir::identifier(member)? {
        return Err(TprfError::WrongKey(*member));
    }
    let s = Zeroizing::new(key.signing_share().to_scalar());
    let h = hash_to_point(input);
    let y = &*s * RISTRETTO_BASEPOINT_TABLE;
    let p = h * *s;
    let r = Zeroizing::new(Scalar::random(rng));
    let a = &*r * RISTRETTO_BASEPOINT_TABLE;
    let b = h * *r;
    let c = challenge(member, &h, &y, &p, &a, &b);
    Ok(Partial {
        member: *member,
        point: p.compress(),
        proof: DleqProof {
            challenge: c,
            response: *r + c * *s,
        },
    })
}

/// Checks one partial against the member's verifying share; returns its point.
pub fn verify_partial(
    public: &PublicKeyPackage,
    input: &[u8],
    partial: &Partial,
) -> Result<RistrettoPoint, TprfError> {
    let y = verifying_point(public, &partial.member)?;
    let p = partial
        .point
        .decompress()
        .ok_or(TprfError::BadPoint(partial.member))?;
    let h = hash_to_point(input);
    let DleqProof {
        challenge: c,
        response: z,
    } = partial.proof;
    // A = z·G − c·Y, B = z·H − c·P
    let a = RistrettoPoint::vartime_multiscalar_mul([z, -c], [RISTRETTO_BASEPOINT_POINT, y]);
    let b = RistrettoPoint::vartime_multiscalar_mul([z, -c], [h, p]);
    let expected = challenge(&partial.member, &h, &y, &p, &a, &b);
    if bool::from(expected.ct_eq(&c)) {
        Ok(p)
    } else {
        Err(TprfError::BadProof(partial.member))
    }
}

/// Verifies every partial (any bad one is an error naming its member), then combines the first
/// `t` (the key's threshold) into `s·H(x)`.
pub fn combine_point(
    public: &PublicKeyPackage,
    input: &[u8],
    partials: &[Partial],
) -> Result<RistrettoPoint, TprfError> {
    let t = usize::from(public.min_signers().ok_or(TprfError::NoThreshold)?);
    if t == 0 {
        return Err(TprfError::NoThreshold);
    }
    let mut seen = BTreeSet::new();
    let mut points = Vec::with_capacity(partials.len());
    for p in partials {
        if !seen.insert(p.member) {
            return Err(TprfError::Duplicate(p.member));
        }
        points.push(verify_partial(public, input, p)?);
    }
    if partials.len() < t {
        return Err(TprfError::NotEnough {
            got: partials.len(),
            need: t,
        });
    }
    let members: Vec<MemberId> = partials[..t].iter().map(|p| p.member).collect();
    let lambdas = shamir::lagrange_coefficients(&members, None)?;
    Ok(RistrettoPoint::vartime_multiscalar_mul(
        lambdas,
        points[..t].iter(),
    ))
}

/// The PRF output for `input`: a domain-separated hash of `s·H(x)` (see [`combine_point`]).
pub fn combine(
    public: &PublicKeyPackage,
    input: &[u8],
    partials: &[Partial],
) -> Result<[u8; 32], TprfError> {
    Ok(output(input, &combine_point(public, input, partials)?))
}

/// The output hash of a combined point.
pub fn output(input: &[u8], point: &RistrettoPoint) -> [u8; 32] {
    hash32(OUT, &[], &[0; 16], &[input, &point.compress().to_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkg::run_in_memory;
    use crate::shamir::tests::{members, roundtrip};
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::collections::BTreeMap;

    fn setup(
        n: usize,
        t: u16,
        seed: u64,
    ) -> (
        Vec<MemberId>,
        BTreeMap<MemberId, KeyPackage>,
        PublicKeyPackage,
        ChaCha20Rng,
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ms = members(n, 0x44);
        let (keys, public) = run_in_memory(&ms, t, &mut rng).unwrap();
        (ms, keys, public, rng)
    }

    #[test]
    fn output_is_the_group_secret_times_h() {
        let (ms, keys, public, mut rng) = setup(4, 3, 1);
        let all: Vec<KeyPackage> = keys.values().cloned().collect();
        let s = frost_ristretto255::keys::reconstruct(&all)
            .unwrap()
            .to_scalar();
        let ps: Vec<Partial> = ms[..3]
            .iter()
            .map(|m| partial(&keys[m], m, b"beacon/1", &mut rng).unwrap())
            .collect();
        let point = combine_point(&public, b"beacon/1", &ps).unwrap();
        assert_eq!(point, hash_to_point(b"beacon/1") * s);
        // Different inputs give different outputs.
        let ps2: Vec<Partial> = ms[..3]
            .iter()
            .map(|m| partial(&keys[m], m, b"beacon/2", &mut rng).unwrap())
            .collect();
        assert_ne!(
            combine(&public, b"beacon/1", &ps).unwrap(),
            combine(&public, b"beacon/2", &ps2).unwrap()
        );
    }

    #[test]
    fn bad_partials_are_rejected_naming_the_member() {
        let (ms, keys, public, mut rng) = setup(4, 3, 2);
        let x = b"branch/7";
        let good: Vec<Partial> = ms
            .iter()
            .map(|m| roundtrip(&partial(&keys[m], m, x, &mut rng).unwrap()))
            .collect();
        // Wrong point (someone else's partial relabelled).
        let mut bad = good.clone();
        bad[1].point = good[2].point;
        assert_eq!(
            combine(&public, x, &bad).unwrap_err(),
            TprfError::BadProof(ms[1])
        );
        // Bad proof.
        let mut bad = good.clone();
        bad[0].proof.response += Scalar::ONE;
        assert_eq!(
            combine(&public, x, &bad).unwrap_err(),
            TprfError::BadProof(ms[0])
        );
        // A partial for another input.
        let mut bad = good.clone();
        bad[3] = partial(&keys[&ms[3]], &ms[3], b"other", &mut rng).unwrap();
        assert_eq!(
            combine(&public, x, &bad).unwrap_err(),
            TprfError::BadProof(ms[3])
        );
        // An undecodable point.
        let mut bad = good.clone();
        bad[2].point = CompressedRistretto([0xff; 32]);
        assert_eq!(
            combine(&public, x, &bad).unwrap_err(),
            TprfError::BadPoint(ms[2])
        );
        // Unknown member, duplicates, too few, wrong key.
        let mut bad = good.clone();
        bad[2].member = MemberId([0x55; 32]);
        assert_eq!(
            combine(&public, x, &bad).unwrap_err(),
            TprfError::UnknownMember(MemberId([0x55; 32]))
        );
        let dup = vec![good[0], good[0], good[1]];
        assert_eq!(
            combine(&public, x, &dup).unwrap_err(),
            TprfError::Duplicate(ms[0])
        );
        assert_eq!(
            combine(&public, x, &good[..2]).unwrap_err(),
            TprfError::NotEnough { got: 2, need: 3 }
        );
        assert_eq!(
            partial(&keys[&ms[0]], &ms[1], x, &mut rng).unwrap_err(),
            TprfError::WrongKey(ms[1])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn any_t_partials_agree(seed in any::<u64>(), pick in any::<u64>(), input in proptest::collection::vec(any::<u8>(), 0..40)) {
            let (ms, keys, public, mut rng) = setup(5, 3, seed % 4);
            let all: Vec<Partial> = ms.iter().map(|m| partial(&keys[m], m, &input, &mut rng).unwrap()).collect();
            let reference = combine(&public, &input, &all[..3]).unwrap();
            // Another subset of 3, chosen by `pick`, in a scrambled order.
            let mut order: Vec<usize> = (0..5).collect();
            let mut p = pick;
            for i in (1..5).rev() {
                order.swap(i, (p % (i as u64 + 1)) as usize);
                p /= i as u64 + 1;
            }
            let subset: Vec<Partial> = order[..3].iter().map(|&i| all[i]).collect();
            prop_assert_eq!(combine(&public, &input, &subset).unwrap(), reference);
            // More than t valid partials also give the same output.
            prop_assert_eq!(combine(&public, &input, &all).unwrap(), reference);
        }
    }
}
