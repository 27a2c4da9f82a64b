//! Feldman commitments in their two forms: [`EncodedCommitment`], the wire and hashing form
//! (encodings counted, not decompressed), and [`Commitment`], valid points with their
//! encoding computed once. Why two forms: the module doc of `shamir`.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use frost_ristretto255::keys::VerifiableSecretSharingCommitment;
use serde::{Deserialize, Serialize};

use super::{x_coordinate, ShamirError, MAX_THRESHOLD};
use crate::member::MemberId;

/// A commitment as it travels and is hashed: the 32-byte ristretto255 encodings of its points,
/// 1 to [`MAX_THRESHOLD`] of them. Decoding from bytes checks only the count; the encodings are
/// checked to be points by [`EncodedCommitment::decode`], which every use of the points goes
/// through. Public.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "Vec<[u8; 32]>")]
pub struct EncodedCommitment(pub(super) Vec<[u8; 32]>);

impl TryFrom<Vec<[u8; 32]>> for EncodedCommitment {
    type Error = ShamirError;
    fn try_from(encodings: Vec<[u8; 32]>) -> Result<Self, ShamirError> {
        check_point_count(encodings.len())?;
        Ok(EncodedCommitment(encodings))
    }
}

impl Serialize for EncodedCommitment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl std::fmt::Debug for EncodedCommitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(hex::encode))
            .finish()
    }
}

impl AsRef<EncodedCommitment> for EncodedCommitment {
    fn as_ref(&self) -> &EncodedCommitment {
        self
    }
}

impl EncodedCommitment {
    /// The threshold k the commitment claims (number of encoded points).
    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    /// The points' encodings, in coefficient order.
    pub fn as_bytes(&self) -> &[[u8; 32]] {
        &self.0
    }

    /// Decompresses every point: the usable commitment, or [`ShamirError::InvalidPoint`]
    /// naming the first encoding that is not a canonical ristretto255 point.
    pub fn decode(&self) -> Result<Commitment, ShamirError> {
        let points = self
            .0
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                CompressedRistretto(*bytes)
                    .decompress()
                    .ok_or(ShamirError::InvalidPoint { index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Commitment {
            points,
            encoded: self.clone(),
        })
    }
}

fn check_point_count(n: usize) -> Result<(), ShamirError> {
    if n == 0 || n > MAX_THRESHOLD {
        return Err(ShamirError::InvalidThreshold { k: n, holders: n });
    }
    Ok(())
}

/// The Feldman commitment to one secret's polynomial: `C_j = a_j·G` for `j = 0..k`, so
/// `C_0 = secret·G`, with the points' encoding computed once (serialisation and hashing use it).
/// Public. Always 1..=[`MAX_THRESHOLD`] valid points: decoding rejects invalid points, an empty
/// vector and more than [`MAX_THRESHOLD`] points.
#[derive(Clone)]
pub struct Commitment {
    pub(super) points: Vec<RistrettoPoint>,
    /// `points[j].compress()`, for every `j`.
    pub(super) encoded: EncodedCommitment,
}

impl TryFrom<Vec<RistrettoPoint>> for Commitment {
    type Error = ShamirError;
    fn try_from(points: Vec<RistrettoPoint>) -> Result<Self, ShamirError> {
        check_point_count(points.len())?;
        let encoded = EncodedCommitment(points.iter().map(|p| p.compress().to_bytes()).collect());
        Ok(Commitment { points, encoded })
    }
}

impl From<Commitment> for Vec<RistrettoPoint> {
    fn from(c: Commitment) -> Self {
        c.points
    }
}

impl From<Commitment> for EncodedCommitment {
    fn from(c: Commitment) -> Self {
        c.encoded
    }
}

impl AsRef<EncodedCommitment> for Commitment {
    fn as_ref(&self) -> &EncodedCommitment {
        &self.encoded
    }
}

/// Equal points have equal (canonical) encodings, so comparing encodings compares points.
impl PartialEq for Commitment {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for Commitment {}

impl std::fmt::Debug for Commitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Commitment").field(&self.encoded).finish()
    }
}

impl Serialize for Commitment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.encoded.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Commitment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EncodedCommitment::deserialize(deserializer)?
            .decode()
            .map_err(serde::de::Error::custom)
    }
}

impl Commitment {
    /// The threshold k (number of coefficients).
    pub fn threshold(&self) -> usize {
        self.points.len()
    }

    /// `C_0 = secret·G`, the public image of the secret.
    pub fn secret_point(&self) -> RistrettoPoint {
        self.points[0]
    }

    /// The coefficient commitments.
    pub fn points(&self) -> &[RistrettoPoint] {
        &self.points
    }

    /// The points' encodings (computed once, not recompressed).
    pub fn encoded(&self) -> &EncodedCommitment {
        &self.encoded
    }

    /// Errors unless the commitment has exactly `k` points.
    pub fn check_threshold(&self, k: usize) -> Result<(), ShamirError> {
        if self.points.len() == k {
            Ok(())
        } else {
            Err(ShamirError::WrongThreshold {
                expected: k,
                got: self.points.len(),
            })
        }
    }

    /// `f(x)·G = Σ x^j·C_j`: the public image of the share at `x`.
    pub(crate) fn evaluate(&self, x: &Scalar) -> RistrettoPoint {
        RistrettoPoint::vartime_multiscalar_mul(powers(x, self.points.len()), self.points.iter())
    }

    /// The public share point `s_i·G` of `member` (the share it should hold).
    pub fn share_point(&self, member: &MemberId) -> Result<RistrettoPoint, ShamirError> {
        Ok(self.evaluate(&x_coordinate(member)?))
    }

    /// The same commitment as frost's type, for use with frost's APIs
    /// (e.g. `frost_ristretto255::keys::SecretShare::verify`).
    pub fn to_frost(&self) -> Result<VerifiableSecretSharingCommitment, ShamirError> {
        VerifiableSecretSharingCommitment::deserialize(self.encoded.0.clone())
            .map_err(|e| ShamirError::Interpolation(e.to_string()))
    }

    /// Compressed encodings of the points (copies of the cached encoding).
    pub fn to_compressed(&self) -> Vec<CompressedRistretto> {
        self.encoded
            .0
            .iter()
            .map(|b| CompressedRistretto(*b))
            .collect()
    }
}

/// `[1, x, x^2, …, x^(n−1)]`.
fn powers(x: &Scalar, n: usize) -> Vec<Scalar> {
    let mut out = Vec::with_capacity(n);
    let mut acc = Scalar::ONE;
    for _ in 0..n {
        out.push(acc);
        acc *= x;
    }
    out
}
