//! Feldman-verifiable Shamir sharing of leaf secrets on ristretto255 (`docs/sharing.md`).
//! A secret is split k-of-r over a holder list under a public commitment: every holder can check
//! its share (thousands at once, naming the bad ones), any k shares rebuild the secret, and
//! fewer than k reveal nothing about it.
//!
//! A leaf seed is a ristretto255 scalar ([`LeafSecret`]). [`deal`] / [`deal_batch`] split it
//! k-of-r over a holder list with a random degree-(k−1) polynomial `f` (`f(0)` = the secret) and
//! publish the Feldman commitment `C_j = a_j·G` to its coefficients. A holder's x-coordinate is
//! derived from its [`MemberId`] ([`identifier`]), so nobody chooses it. Each holder checks its
//! share against the commitment ([`verify_share`]); [`verify_batch`] checks thousands at once
//! with one multiscalar multiplication under a random linear combination (soundness error
//! 2^-252 per call) and bisects to name the bad ones if the batch fails. Any k shares rebuild the
//! secret by Lagrange interpolation ([`reconstruct`]); fewer than k is an error, and reveal
//! nothing about it (information-theoretically).
//!
//! Holders must also check that the commitment has exactly k points (the functions take the
//! expected `k`): a longer commitment would mean a higher-degree polynomial that k shares do not
//! determine. All holders must see the same commitment (the ledger publishes it).
//!
//! Encodings. Compressing or decompressing a point costs an inverse square root, as much as
//! the batched check of a share spends per point, so a commitment is encoded once and the
//! encoding travels with it. [`EncodedCommitment`] is the wire and hashing form: the points'
//! 32-byte ristretto255 encodings, 1 to [`MAX_THRESHOLD`] of them, *not* checked to be points;
//! it can be hashed and forwarded but not used. [`Commitment`] is the usable form: valid points
//! together with their encoding (serialised from it, never recompressed). The only ways to a
//! `Commitment` are dealing, building one from points, [`EncodedCommitment::decode`] (which
//! rejects an invalid encoding before any point is used) and decoding a `Commitment` from bytes
//! (which does the same), so a `Commitment` always holds 1..=[`MAX_THRESHOLD`] valid points
//! matching its encoding. Both forms have the same wire encoding as before they were split (a
//! sequence of 32-byte compressed points). The dealer encodes in batches: it computes the
//! halves `(a_j/2)·G` and dalek's `double_and_compress_batch` encodes their doubles `a_j·G`
//! with one shared field inversion instead of an inverse square root per point.

use std::collections::{BTreeSet, HashMap};

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use frost_ristretto255::Identifier;
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::member::MemberId;

mod commitment;
pub use commitment::{Commitment, EncodedCommitment};

/// Largest threshold a commitment may carry (bounds decoding of network input).
pub const MAX_THRESHOLD: usize = 64;
/// Largest holder set of one secret.
pub const MAX_HOLDERS: usize = 256;

/// Prefix of the input to `Identifier::derive` for a member's x-coordinate.
pub(crate) const IDENTIFIER_PREFIX: &[u8] = b"seedfed-member-x/v1";

/// Errors from sharing, verification and reconstruction. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// The threshold is zero, too large, or larger than the holder set.
    #[error("invalid threshold {k} for {holders} holders (need 1 <= k <= holders, k <= {MAX_THRESHOLD})")]
    InvalidThreshold {
        /// The requested threshold.
        k: usize,
        /// The number of holders.
        holders: usize,
    },
    /// More holders than [`MAX_HOLDERS`].
    #[error("{0} holders exceed the limit of {MAX_HOLDERS}")]
    TooManyHolders(usize),
    /// The same member appears twice in a holder list or share set.
    #[error("member {0:?} appears more than once")]
    DuplicateHolder(MemberId),
    /// A 32-byte scalar encoding was not reduced modulo the group order.
    #[error("scalar encoding is not canonical")]
    NonCanonicalScalar,
    /// frost could not derive an identifier (probability 2^-252).
    #[error("could not derive an identifier for member {0:?}")]
    Identifier(MemberId),
    /// The commitment does not have the expected number of points.
    #[error("commitment has {got} points, expected threshold {expected}")]
    WrongThreshold {
        /// The expected threshold k.
        expected: usize,
        /// Points in the commitment.
        got: usize,
    },
    /// A commitment's point encoding is not a valid ristretto255 point.
    #[error("commitment point {index} is not a valid ristretto255 encoding")]
    InvalidPoint {
        /// Position of the point in the commitment (the coefficient index).
        index: usize,
    },
    /// A share does not match its commitment.
    #[error("share of holder {0:?} does not match the commitment")]
    ShareMismatch(MemberId),
    /// Some shares of a batch do not match their commitments (indices into the batch).
    #[error("{} shares of the batch do not match their commitments: {indices:?}", indices.len())]
    BadShares {
        /// Indices of the failing items.
        indices: Vec<usize>,
    },
    /// Fewer than k shares.
    #[error("not enough shares: got {got}, need {need}")]
    NotEnoughShares {
        /// Distinct shares supplied.
        got: usize,
        /// The threshold.
        need: usize,
    },
    /// Lagrange interpolation failed (duplicate x-coordinate or unknown point).
    #[error("interpolation failed: {0}")]
    Interpolation(String),
}

/// The frost identifier (Shamir x-coordinate) of a member: `Identifier::derive("seedfed-member-x/v1"
/// ‖ member id)`, i.e. frost's ristretto255 hash-to-scalar of that string. Used for leaf shares,
/// repair targets, the DKG and the threshold PRF alike.
pub fn identifier(member: &MemberId) -> Result<Identifier, ShamirError> {
    let mut input = Vec::with_capacity(IDENTIFIER_PREFIX.len() + 32);
    input.extend_from_slice(IDENTIFIER_PREFIX);
    input.extend_from_slice(member.as_bytes());
    Identifier::derive(&input).map_err(|_| ShamirError::Identifier(*member))
}

/// The x-coordinate of a member as a scalar.
pub(crate) fn x_coordinate(member: &MemberId) -> Result<Scalar, ShamirError> {
    Ok(identifier(member)?.to_scalar())
}

/// Lagrange coefficients `λ_i(at)` for each member of `members` (in order), evaluating the
/// interpolating polynomial at `at` (a member's x-coordinate) or at 0 when `at` is `None`.
/// Uses frost's `compute_lagrange_coefficient`.
pub(crate) fn lagrange_coefficients(
    members: &[MemberId],
    at: Option<&MemberId>,
) -> Result<Vec<Scalar>, ShamirError> {
    let ids = members
        .iter()
        .map(identifier)
        .collect::<Result<Vec<_>, _>>()?;
    let set: BTreeSet<Identifier> = ids.iter().copied().collect();
    if set.len() != ids.len() {
        return Err(ShamirError::Interpolation("duplicate identifier".into()));
    }
    let at = at.map(identifier).transpose()?;
    ids.iter()
        .map(|id| {
            frost_core::compute_lagrange_coefficient(&set, at, *id)
                .map_err(|e| ShamirError::Interpolation(e.to_string()))
        })
        .collect()
}

/// A leaf seed: a ristretto255 scalar. Zeroized on drop; Debug prints `[redacted]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LeafSecret(Scalar);

impl LeafSecret {
    /// Reduces a 64-byte (wide) hash output modulo the group order: the way leaf seeds are made.
    pub fn from_wide_bytes(bytes: &[u8; 64]) -> Self {
        LeafSecret(Scalar::from_bytes_mod_order_wide(bytes))
    }

    /// Parses a canonical 32-byte encoding (little-endian, reduced).
    pub fn from_canonical_bytes(bytes: &[u8; 32]) -> Result<Self, ShamirError> {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes))
            .map(LeafSecret)
            .ok_or(ShamirError::NonCanonicalScalar)
    }

    /// A uniformly random secret (tests and simulations).
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        LeafSecret(Scalar::random(rng))
    }

    /// The canonical 32-byte encoding (this is the RFC 8554 `SEED` of the leaf).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The RFC 8554 `SEED` this secret is, for LM-OTS key derivation.
    pub fn lms_seed(&self) -> crate::lmots::LeafSeed {
        crate::lmots::LeafSeed::copy_from(&Zeroizing::new(self.0.to_bytes()))
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &LeafSecret) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    pub(crate) fn from_scalar(s: Scalar) -> Self {
        LeafSecret(s)
    }

    pub(crate) fn scalar(&self) -> &Scalar {
        &self.0
    }
}

impl std::fmt::Debug for LeafSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeafSecret([redacted])")
    }
}

/// One holder's share `f(x_holder)` of one secret. Zeroized on drop; Debug prints `[redacted]`.
/// It has no `Serialize`: a share is encoded only through [`secret_shares`] (as the holder id and
/// the canonical scalar; decoding rejects non-canonical input), into a buffer that is wiped, and
/// it must travel only inside an encrypted envelope.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    /// The member holding this share (its x-coordinate is `identifier(holder)`).
    #[zeroize(skip)]
    pub holder: MemberId,
    value: Scalar,
}

impl Share {
    /// Builds a share from its parts (e.g. after decoding from storage).
    pub fn new(holder: MemberId, value_bytes: &[u8; 32]) -> Result<Self, ShamirError> {
        let value = Option::<Scalar>::from(Scalar::from_canonical_bytes(*value_bytes))
            .ok_or(ShamirError::NonCanonicalScalar)?;
        Ok(Share { holder, value })
    }

    /// The canonical encoding of the share value (for encrypted storage).
    pub fn value_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.value.to_bytes())
    }

    pub(crate) fn from_scalar(holder: MemberId, value: Scalar) -> Self {
        Share { holder, value }
    }

    pub(crate) fn value(&self) -> &Scalar {
        &self.value
    }
}

/// Serde for a holder's `(leaf, share)` list, for `#[serde(with = "shamir::secret_shares")]` on
/// a record that is sealed at rest: each share as the holder id and its canonical 32-byte value
/// (the same bytes as a scalar's own encoding); the decoded value is checked canonical and its
/// temporary copy wiped. Encode such a record with [`crate::ledger::encode_secret`].
pub mod secret_shares {
    use serde::de::{SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use zeroize::Zeroize;

    use super::Share;
    use crate::member::MemberId;

    /// The wire form of one share: borrowed value bytes, never copied to an unwiped place by us.
    #[derive(Serialize)]
    struct Out<'a> {
        holder: &'a MemberId,
        value: &'a [u8; 32],
    }

    #[derive(Deserialize)]
    struct In {
        holder: MemberId,
        value: [u8; 32],
    }

    /// Serializes `(leaf, share)` pairs.
    pub fn serialize<S: Serializer>(shares: &[(u64, Share)], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(shares.len()))?;
        for (leaf, share) in shares {
            let bytes = share.value_bytes();
            seq.serialize_element(&(
                leaf,
                Out {
                    holder: &share.holder,
                    value: &bytes,
                },
            ))?;
        }
        seq.end()
    }

    /// Deserializes `(leaf, share)` pairs, refusing a non-canonical share value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u64, Share)>, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Vec<(u64, Share)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of (leaf, share)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Sized from the length prefix (the record is our own, authenticated at rest),
                // capped; a larger list grows by `push_wiped`, which wipes each buffer it leaves.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some((leaf, mut wire)) = seq.next_element::<(u64, In)>()? {
                    let share = Share::new(wire.holder, &wire.value);
                    wire.value.zeroize();
                    let share =
                        share.map_err(|_| serde::de::Error::custom("non-canonical share value"))?;
                    push_wiped(&mut out, (leaf, share));
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Pairs)
    }

    /// `out.push(item)`, but a full buffer is moved into one twice its size and then wiped
    /// (a plain push would leave the shares' bytes behind in the freed allocation).
    pub(crate) fn push_wiped<T: Zeroize>(out: &mut Vec<T>, item: T) {
        if out.len() == out.capacity() {
            let mut bigger = Vec::with_capacity((2 * out.capacity()).max(4));
            bigger.append(out);
            // Length 0 now: this wipes the whole old allocation (its spare capacity).
            out.zeroize();
            *out = bigger;
        }
        out.push(item);
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share({:?}, [redacted])", self.holder)
    }
}

/// One dealt secret: its public commitment and one share per holder, in holder order.
#[derive(Clone, Debug)]
pub struct Dealing {
    /// Public Feldman commitment (publish it with the portion).
    pub commitment: Commitment,
    /// `shares[i]` goes to `holders[i]`, encrypted to that holder.
    pub shares: Vec<Share>,
}

fn check_holders(holders: &[MemberId], k: usize) -> Result<(), ShamirError> {
    if holders.len() > MAX_HOLDERS {
        return Err(ShamirError::TooManyHolders(holders.len()));
    }
    if k == 0 || k > holders.len() || k > MAX_THRESHOLD {
        return Err(ShamirError::InvalidThreshold {
            k,
            holders: holders.len(),
        });
    }
    let mut seen = BTreeSet::new();
    for h in holders {
        if !seen.insert(h) {
            return Err(ShamirError::DuplicateHolder(*h));
        }
    }
    Ok(())
}

/// A small cache of member x-coordinates (derivation hashes; batches reuse holders a lot).
#[derive(Default)]
struct XCache(HashMap<MemberId, Scalar>);

impl XCache {
    fn get(&mut self, m: &MemberId) -> Result<Scalar, ShamirError> {
        if let Some(x) = self.0.get(m) {
            return Ok(*x);
        }
        let x = x_coordinate(m)?;
        self.0.insert(*m, x);
        Ok(x)
    }
}

/// Points encoded per `double_and_compress_batch` call: one field inversion per block, and a
/// bounded scratch (a few hundred bytes per point) however large the dealing.
const COMPRESS_BLOCK: usize = 4096;

/// One dealt secret before its commitment is encoded: the halved commitment points
/// `(a_j/2)·G` (see [`encode_dealings`]) and the shares.
struct HalfDealt {
    halves: Vec<RistrettoPoint>,
    shares: Vec<Share>,
}

fn deal_one<R: RngCore + CryptoRng>(
    secret: &LeafSecret,
    holders: &[MemberId],
    k: usize,
    half: &Scalar,
    cache: &mut XCache,
    rng: &mut R,
) -> Result<HalfDealt, ShamirError> {
    check_holders(holders, k)?;
    let mut coefficients = Zeroizing::new(Vec::with_capacity(k));
    coefficients.push(secret.0);
    for _ in 1..k {
        coefficients.push(Scalar::random(rng));
    }
    let halves = coefficients
        .iter()
        .map(|a| {
            let mut h = a * half;
            let point = &h * RISTRETTO_BASEPOINT_TABLE;
            h.zeroize();
            point
        })
        .collect();
    let mut shares = Vec::with_capacity(holders.len());
    for h in holders {
        let x = cache.get(h)?;
        // Horner evaluation of f(x).
        let mut acc = Scalar::ZERO;
        for a in coefficients.iter().rev() {
            acc = acc * x + a;
        }
        shares.push(Share::from_scalar(*h, acc));
        acc.zeroize();
    }
    Ok(HalfDealt { halves, shares })
}

/// Finishes dealings: the commitment points are the doubles `C_j = 2·((a_j/2)·G) = a_j·G` of
/// the halves, and their encodings come from `double_and_compress_batch` (one inversion per
/// block of points instead of one inverse square root per point).
fn encode_dealings(dealt: Vec<HalfDealt>) -> Vec<Dealing> {
    let halves: Vec<&RistrettoPoint> = dealt.iter().flat_map(|d| &d.halves).collect();
    let encodings: Vec<CompressedRistretto> = halves
        .chunks(COMPRESS_BLOCK)
        .flat_map(|block| RistrettoPoint::double_and_compress_batch(block.iter().copied()))
        .collect();
    let mut encodings = encodings.into_iter();
    dealt
        .into_iter()
        .map(|d| finish_dealing(d, &mut encodings))
        .collect()
}

/// One dealing from its halves and the next encodings of `encodings` (those of its doubles).
fn finish_dealing(
    d: HalfDealt,
    encodings: &mut impl Iterator<Item = CompressedRistretto>,
) -> Dealing {
    let encoded = EncodedCommitment(
        encodings
            .take(d.halves.len())
            .map(|c| c.to_bytes())
            .collect(),
    );
    let points = d.halves.iter().map(|q| q + q).collect();
    Dealing {
        commitment: Commitment { points, encoded },
        shares: d.shares,
    }
}

/// `1/2` modulo the group order.
fn half() -> Scalar {
    Scalar::from(2u8).invert()
}

/// Deals `secret` k-of-r to `holders` (distinct, 1 ≤ k ≤ r).
pub fn deal<R: RngCore + CryptoRng>(
    secret: &LeafSecret,
    holders: &[MemberId],
    k: usize,
    rng: &mut R,
) -> Result<Dealing, ShamirError> {
    let one = deal_one(secret, holders, k, &half(), &mut XCache::default(), rng)?;
    let encodings = RistrettoPoint::double_and_compress_batch(&one.halves);
    Ok(finish_dealing(one, &mut encodings.into_iter()))
}

/// Deals many secrets, each to its own holder list, k-of-r. Returns one [`Dealing`] per item,
/// in order. Caches the holders' x-coordinates across the batch and encodes all commitments
/// in batches.
pub fn deal_batch<'a, R, I>(items: I, k: usize, rng: &mut R) -> Result<Vec<Dealing>, ShamirError>
where
    R: RngCore + CryptoRng,
    I: IntoIterator<Item = (&'a LeafSecret, &'a [MemberId])>,
{
    let mut cache = XCache::default();
    let half = half();
    let dealt = items
        .into_iter()
        .map(|(secret, holders)| deal_one(secret, holders, k, &half, &mut cache, rng))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(encode_dealings(dealt))
}

/// Checks one share against its commitment (which must have exactly `k` points).
pub fn verify_share(share: &Share, commitment: &Commitment, k: usize) -> Result<(), ShamirError> {
    commitment.check_threshold(k)?;
    let expected = commitment.evaluate(&x_coordinate(&share.holder)?);
    let actual = share.value() * RISTRETTO_BASEPOINT_TABLE;
    // Group equality without encoding either point (ristretto's constant-time comparison).
    if bool::from(actual.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(ShamirError::ShareMismatch(share.holder))
    }
}

/// One random-linear-combination check over `idx` of `items`: true iff all pass (up to 2^-252).
/// `Σ ρ_i·s_i`, the only secret-derived scalar, is multiplied in constant time (the base-point
/// table) and wiped; the variable-time multiscalar multiplication sees only public points and
/// the random weights' products with public x-coordinates.
fn batch_holds<R: RngCore + CryptoRng>(
    items: &[(&Share, &Commitment)],
    idx: &[usize],
    xs: &[Scalar],
    rng: &mut R,
) -> bool {
    let n_points: usize = idx.iter().map(|&i| items[i].1.threshold()).sum();
    let mut scalars = Vec::with_capacity(n_points);
    let mut points = Vec::with_capacity(n_points);
    let mut base = Zeroizing::new(Scalar::ZERO);
    for &i in idx {
        let (share, commitment) = items[i];
        let rho = Scalar::random(rng);
        *base += rho * share.value();
        let mut coeff = -rho;
        for c in commitment.points() {
            scalars.push(coeff);
            points.push(*c);
            coeff *= xs[i];
        }
    }
    let secret_part = &*base * RISTRETTO_BASEPOINT_TABLE;
    (RistrettoPoint::vartime_multiscalar_mul(scalars, points) + secret_part).is_identity()
}

/// Collects into `bad` the indices of `idx` whose share fails, by bisection.
fn find_bad<R: RngCore + CryptoRng>(
    items: &[(&Share, &Commitment)],
    idx: &[usize],
    xs: &[Scalar],
    rng: &mut R,
    bad: &mut Vec<usize>,
) {
    if idx.len() <= 2 {
        for &i in idx {
            if !batch_holds(items, &[i], xs, rng) {
                bad.push(i);
            }
        }
        return;
    }
    let (left, right) = idx.split_at(idx.len() / 2);
    for half in [left, right] {
        if !batch_holds(items, half, xs, rng) {
            find_bad(items, half, xs, rng, bad);
        }
    }
}

/// Checks many shares against their commitments (each with exactly `k` points) with one
/// multiscalar multiplication. On failure returns [`ShamirError::BadShares`] naming every bad
/// item (found by bisection), so a holder can complain about exactly those.
pub fn verify_batch<R: RngCore + CryptoRng>(
    items: &[(&Share, &Commitment)],
    k: usize,
    rng: &mut R,
) -> Result<(), ShamirError> {
    let mut cache = XCache::default();
    let mut xs = Vec::with_capacity(items.len());
    for (share, commitment) in items {
        commitment.check_threshold(k)?;
        xs.push(cache.get(&share.holder)?);
    }
    let all: Vec<usize> = (0..items.len()).collect();
    if batch_holds(items, &all, &xs, rng) {
        return Ok(());
    }
    let mut bad = Vec::new();
    find_bad(items, &all, &xs, rng, &mut bad);
    bad.sort_unstable();
    Err(ShamirError::BadShares { indices: bad })
}

/// Rebuilds the secret from shares of distinct holders by Lagrange interpolation at 0, using the
/// first `k` shares. Fewer than `k` shares (or a duplicate holder) is an error. The result is
/// only correct if the shares are (verify them first, or check `secret·G == C_0`).
pub fn reconstruct(shares: &[Share], k: usize) -> Result<LeafSecret, ShamirError> {
    if k == 0 || k > MAX_THRESHOLD {
        return Err(ShamirError::InvalidThreshold {
            k,
            holders: shares.len(),
        });
    }
    let mut seen = BTreeSet::new();
    for s in shares {
        if !seen.insert(s.holder) {
            return Err(ShamirError::DuplicateHolder(s.holder));
        }
    }
    if shares.len() < k {
        return Err(ShamirError::NotEnoughShares {
            got: shares.len(),
            need: k,
        });
    }
    let used = &shares[..k];
    let members: Vec<MemberId> = used.iter().map(|s| s.holder).collect();
    let lambdas = lagrange_coefficients(&members, None)?;
    let mut acc = Scalar::ZERO;
    for (l, s) in lambdas.iter().zip(used) {
        acc += l * s.value();
    }
    Ok(LeafSecret(acc))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use serde::{Deserialize, Serialize};

    pub(crate) fn members(n: usize, salt: u8) -> Vec<MemberId> {
        (0..n)
            .map(|i| {
                let mut b = [salt; 32];
                b[0] = i as u8;
                b[1] = (i >> 8) as u8;
                MemberId(b)
            })
            .collect()
    }

    #[test]
    fn leaf_secret_encoding_round_trips_and_rejects_non_canonical() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let s = LeafSecret::random(&mut rng);
        let back = LeafSecret::from_canonical_bytes(&s.to_bytes()).unwrap();
        assert!(s.ct_eq(&back));
        assert_eq!(
            LeafSecret::from_canonical_bytes(&[0xff; 32]).unwrap_err(),
            ShamirError::NonCanonicalScalar
        );
        assert_eq!(format!("{s:?}"), "LeafSecret([redacted])");
        let w = LeafSecret::from_wide_bytes(&[7u8; 64]);
        assert!(!w.ct_eq(&s));
    }

    #[test]
    fn share_debug_is_redacted() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let d = deal(&LeafSecret::random(&mut rng), &members(3, 1), 2, &mut rng).unwrap();
        let text = format!("{:?}", d.shares[0]);
        assert!(text.contains("[redacted]"));
        assert!(!text.contains(&hex::encode(d.shares[0].value_bytes().as_ref())));
    }

    #[test]
    fn bad_parameters_are_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let s = LeafSecret::random(&mut rng);
        let hs = members(3, 1);
        assert!(matches!(
            deal(&s, &hs, 4, &mut rng),
            Err(ShamirError::InvalidThreshold { k: 4, holders: 3 })
        ));
        assert!(matches!(
            deal(&s, &hs, 0, &mut rng),
            Err(ShamirError::InvalidThreshold { .. })
        ));
        let dup = vec![hs[0], hs[1], hs[0]];
        assert_eq!(
            deal(&s, &dup, 2, &mut rng).unwrap_err(),
            ShamirError::DuplicateHolder(hs[0])
        );
        let d = deal(&s, &hs, 2, &mut rng).unwrap();
        assert_eq!(
            verify_share(&d.shares[0], &d.commitment, 3).unwrap_err(),
            ShamirError::WrongThreshold {
                expected: 3,
                got: 2
            }
        );
        let twice = vec![d.shares[0].clone(), d.shares[0].clone()];
        assert_eq!(
            reconstruct(&twice, 2).unwrap_err(),
            ShamirError::DuplicateHolder(hs[0])
        );
    }

    #[test]
    fn commitment_decoding_rejects_bad_points() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let d = deal(&LeafSecret::random(&mut rng), &members(3, 1), 2, &mut rng).unwrap();
        let mut bytes = postcard::to_allocvec(&d.commitment).unwrap();
        assert!(postcard::from_bytes::<Commitment>(&bytes).is_ok());
        // Corrupt the first point: 0xff.. is not a valid ristretto encoding.
        bytes[1..33].copy_from_slice(&[0xff; 32]);
        assert!(postcard::from_bytes::<Commitment>(&bytes).is_err());
        // Truncated and empty inputs are errors, not panics.
        assert!(postcard::from_bytes::<Commitment>(&bytes[..20]).is_err());
        assert!(postcard::from_bytes::<Commitment>(&[0u8]).is_err());
        assert!(Commitment::try_from(Vec::new()).is_err());
        // A non-canonical share value is rejected.
        let mut share_bytes = crate::ledger::encode_secret(&Held {
            shares: vec![(0, d.shares[0].clone())],
        });
        let n = share_bytes.len();
        share_bytes[n - 32..].copy_from_slice(&[0xff; 32]);
        assert!(crate::ledger::decode::<Held>(&share_bytes).is_err());
    }

    #[test]
    fn agrees_with_frost_secret_share_verify() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let hs = members(5, 9);
        let d = deal(&LeafSecret::random(&mut rng), &hs, 3, &mut rng).unwrap();
        let frost_commitment = d.commitment.to_frost().unwrap();
        for share in &d.shares {
            let signing =
                frost_ristretto255::keys::SigningShare::deserialize(&share.value_bytes()[..])
                    .unwrap();
            let fs = frost_ristretto255::keys::SecretShare::new(
                identifier(&share.holder).unwrap(),
                signing,
                frost_commitment.clone(),
            );
            fs.verify().unwrap();
        }
        // And a wrong share fails both ways.
        let wrong = Share::from_scalar(hs[0], d.shares[0].value() + Scalar::ONE);
        assert!(verify_share(&wrong, &d.commitment, 3).is_err());
        let signing =
            frost_ristretto255::keys::SigningShare::deserialize(&wrong.value_bytes()[..]).unwrap();
        let fs = frost_ristretto255::keys::SecretShare::new(
            identifier(&hs[0]).unwrap(),
            signing,
            frost_commitment,
        );
        assert!(fs.verify().is_err());
    }

    #[test]
    fn batch_verification_names_the_bad_shares() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let hs = members(5, 3);
        let secrets: Vec<LeafSecret> = (0..40).map(|_| LeafSecret::random(&mut rng)).collect();
        let dealt = deal_batch(secrets.iter().map(|s| (s, &hs[..])), 3, &mut rng).unwrap();
        // Holder 2's view: one share per leaf.
        let mut mine: Vec<(Share, Commitment)> = dealt
            .iter()
            .map(|d| (d.shares[2].clone(), d.commitment.clone()))
            .collect();
        {
            let items: Vec<(&Share, &Commitment)> = mine.iter().map(|(s, c)| (s, c)).collect();
            verify_batch(&items, 3, &mut rng).unwrap();
        }
        for bad in [3usize, 17, 39] {
            mine[bad].0 = Share::from_scalar(hs[2], mine[bad].0.value() + Scalar::ONE);
        }
        // A share attributed to another holder also fails.
        mine[20].0 = Share::from_scalar(hs[1], *mine[20].0.value());
        let items: Vec<(&Share, &Commitment)> = mine.iter().map(|(s, c)| (s, c)).collect();
        assert_eq!(
            verify_batch(&items, 3, &mut rng).unwrap_err(),
            ShamirError::BadShares {
                indices: vec![3, 17, 20, 39]
            }
        );
    }

    #[test]
    fn serde_round_trip_of_commitment_and_share() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let hs = members(3, 4);
        let d = deal(&LeafSecret::random(&mut rng), &hs, 2, &mut rng).unwrap();
        let c: Commitment = roundtrip(&d.commitment);
        assert_eq!(c, d.commitment);
        let held = Held {
            shares: vec![(7, d.shares[0].clone()), (300, d.shares[1].clone())],
        };
        let bytes = crate::ledger::encode_secret(&held);
        // The layout a scalar's own serde gave (stores written before keep decoding): count,
        // then per share the leaf (varint), the holder and the 32 canonical value bytes.
        let mut expected = vec![2u8, 7];
        expected.extend_from_slice(hs[0].as_bytes());
        expected.extend_from_slice(&d.shares[0].value_bytes()[..]);
        expected.extend_from_slice(&[0xac, 0x02]);
        expected.extend_from_slice(hs[1].as_bytes());
        expected.extend_from_slice(&d.shares[1].value_bytes()[..]);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(&bytes[..], &crate::ledger::encode(&held)[..]);
        let back: Held = crate::ledger::decode(&bytes).unwrap();
        assert_eq!(back.shares[0].0, 7);
        assert_eq!(back.shares[1].0, 300);
        verify_share(&back.shares[0].1, &c, 2).unwrap();
        verify_share(&back.shares[1].1, &c, 2).unwrap();
    }

    /// A record with shares, as a holder keeps them (`dealing::HeldSector`'s field).
    #[derive(Serialize, Deserialize)]
    struct Held {
        #[serde(with = "secret_shares")]
        shares: Vec<(u64, Share)>,
    }

    #[test]
    fn growing_a_share_list_keeps_every_share_in_order() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let hs = members(3, 4);
        let d = deal(&LeafSecret::random(&mut rng), &hs, 2, &mut rng).unwrap();
        let mut out = Vec::new();
        for i in 0..37u64 {
            secret_shares::push_wiped(&mut out, (i, d.shares[(i % 3) as usize].clone()));
        }
        assert_eq!(out.len(), 37);
        for (i, (leaf, share)) in out.iter().enumerate() {
            assert_eq!(*leaf, i as u64);
            assert_eq!(share.holder, hs[i % 3]);
        }
    }

    #[test]
    fn cached_encodings_equal_the_recompressed_points() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let hs = members(4, 2);
        // More points than one compression block, and a zero secret (the identity point, whose
        // batch inversion input is zero) in the middle of a block.
        let mut secrets: Vec<LeafSecret> =
            (0..1500).map(|_| LeafSecret::random(&mut rng)).collect();
        secrets[700] = LeafSecret::from_canonical_bytes(&[0; 32]).unwrap();
        let dealt = deal_batch(secrets.iter().map(|s| (s, &hs[..])), 3, &mut rng).unwrap();
        assert!(dealt.len() * 3 > COMPRESS_BLOCK);
        for (secret, d) in secrets.iter().zip(&dealt) {
            let c = &d.commitment;
            assert_eq!(c.threshold(), 3);
            assert_eq!(
                c.secret_point(),
                secret.scalar() * RISTRETTO_BASEPOINT_TABLE
            );
            let recompressed: Vec<[u8; 32]> =
                c.points().iter().map(|p| p.compress().to_bytes()).collect();
            assert_eq!(c.encoded().as_bytes(), &recompressed[..]);
            assert_eq!(
                c.to_compressed(),
                c.points().iter().map(|p| p.compress()).collect::<Vec<_>>()
            );
            for s in &d.shares {
                verify_share(s, c, 3).unwrap();
            }
        }
        assert_eq!(dealt[700].commitment.encoded().as_bytes()[0], [0; 32]);
        // The single-secret path encodes the same way.
        let d = deal(&secrets[0], &hs, 2, &mut rng).unwrap();
        let recompressed: Vec<[u8; 32]> = d
            .commitment
            .points()
            .iter()
            .map(|p| p.compress().to_bytes())
            .collect();
        assert_eq!(d.commitment.encoded().as_bytes(), &recompressed[..]);
        // And so does a commitment built from points.
        let built = Commitment::try_from(d.commitment.points().to_vec()).unwrap();
        assert_eq!(built.encoded(), d.commitment.encoded());
    }

    #[test]
    fn encoded_commitment_decodes_strictly_and_keeps_the_wire_encoding() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let d = deal(&LeafSecret::random(&mut rng), &members(4, 5), 3, &mut rng).unwrap();
        let c = &d.commitment;
        // Same bytes as the former `Vec<RistrettoPoint>` encoding, in both forms.
        let legacy = postcard::to_allocvec(&c.points().to_vec()).unwrap();
        assert_eq!(postcard::to_allocvec(c).unwrap(), legacy);
        assert_eq!(postcard::to_allocvec(c.encoded()).unwrap(), legacy);
        // Round trips, each form from the other's bytes.
        let back: Commitment = postcard::from_bytes(&legacy).unwrap();
        assert_eq!(&back, c);
        assert_eq!(back.points(), c.points());
        let enc: EncodedCommitment = postcard::from_bytes(&legacy).unwrap();
        assert_eq!(&enc, c.encoded());
        let decoded = enc.decode().unwrap();
        assert_eq!(decoded.points(), c.points());
        assert_eq!(decoded.encoded(), c.encoded());

        // An invalid point: the encoded form carries it, decoding names it, and the usable form
        // cannot be decoded from it.
        let mut bad = legacy.clone();
        bad[1 + 32..1 + 64].copy_from_slice(&[0xff; 32]);
        let enc: EncodedCommitment = postcard::from_bytes(&bad).unwrap();
        assert_eq!(enc.threshold(), 3);
        assert_eq!(
            enc.decode().unwrap_err(),
            ShamirError::InvalidPoint { index: 1 }
        );
        assert!(postcard::from_bytes::<Commitment>(&bad).is_err());
        // A non-canonical encoding of a valid point (the field element p, i.e. 0, unreduced)
        // is invalid too.
        let mut p_bytes = [0xff; 32];
        p_bytes[0] = 0xed;
        p_bytes[31] = 0x7f;
        let noncanonical = EncodedCommitment::try_from(vec![p_bytes]).unwrap();
        assert_eq!(
            noncanonical.decode().unwrap_err(),
            ShamirError::InvalidPoint { index: 0 }
        );

        // Point counts outside 1..=MAX_THRESHOLD are refused by both forms.
        for n in [0, MAX_THRESHOLD + 1] {
            let points = vec![c.points()[0]; n];
            let bytes = postcard::to_allocvec(&points).unwrap();
            assert!(postcard::from_bytes::<EncodedCommitment>(&bytes).is_err());
            assert!(postcard::from_bytes::<Commitment>(&bytes).is_err());
            assert!(EncodedCommitment::try_from(vec![[0; 32]; n]).is_err());
        }
        let full = vec![c.points()[0]; MAX_THRESHOLD];
        let bytes = postcard::to_allocvec(&full).unwrap();
        assert_eq!(
            postcard::from_bytes::<Commitment>(&bytes)
                .unwrap()
                .threshold(),
            MAX_THRESHOLD
        );
    }

    pub(crate) fn roundtrip<T: Serialize + for<'de> Deserialize<'de>>(v: &T) -> T {
        postcard::from_bytes(&postcard::to_allocvec(v).unwrap()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn any_k_of_r_reconstruct_and_fewer_fail(
            seed in any::<u64>(), r in 2usize..7, k_off in 0usize..5, pick in any::<u64>()
        ) {
            let k = 1 + k_off % r;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let hs = members(r, 7);
            let secret = LeafSecret::random(&mut rng);
            let d = deal(&secret, &hs, k, &mut rng).unwrap();
            for s in &d.shares {
                verify_share(s, &d.commitment, k).unwrap();
            }
            // A pseudo-random subset of exactly k shares, in a scrambled order.
            let mut order: Vec<usize> = (0..r).collect();
            let mut p = pick;
            for i in (1..r).rev() {
                order.swap(i, (p % (i as u64 + 1)) as usize);
                p /= i as u64 + 1;
            }
            let chosen: Vec<Share> = order[..k].iter().map(|&i| d.shares[i].clone()).collect();
            let back = reconstruct(&chosen, k).unwrap();
            prop_assert!(back.ct_eq(&secret));
            prop_assert_eq!(back.scalar() * RISTRETTO_BASEPOINT_TABLE, d.commitment.secret_point());
            let fewer = &chosen[..k - 1];
            let is_not_enough = matches!(
                reconstruct(fewer, k),
                Err(ShamirError::NotEnoughShares { .. })
            );
            prop_assert!(is_not_enough);
        }
    }
}
