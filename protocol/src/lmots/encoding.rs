//! The RFC 8554 byte encodings of LM-OTS public keys and signatures, and the decode error
//! shared with `lms`.
//!
//! Guarantees: decoders are strict (known type codes, exact lengths, no trailing bytes), never
//! panic, and say what was wrong; `decode(encode(x)) == x` for every value.

use thiserror::Error;

use super::keys::{LmotsPublicKey, LmotsSignature};
use super::params::LmotsType;
use super::Reader;
use super::{ID_LEN, N};
use crate::bytes::ReadError;

/// A failure to decode an RFC 8554 / HSS byte encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer bytes than the encoding requires.
    #[error("input truncated: {what} needs {needed} bytes, only {had} present")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes required.
        needed: usize,
        /// Bytes present.
        had: usize,
    },
    /// Bytes left over after a complete encoding.
    #[error("{extra} unexpected trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// Number of surplus bytes.
        extra: usize,
    },
    /// An LM-OTS type code that is not one of the SHA-256/N32 sets.
    #[error("unknown or unsupported LM-OTS type code {0:#010x}")]
    UnknownLmotsType(u32),
    /// An LMS type code that is not one of the SHA-256/M32 sets.
    #[error("unknown or unsupported LMS type code {0:#010x}")]
    UnknownLmsType(u32),
    /// The leaf index does not exist in a tree of this height.
    #[error("leaf index {q} out of range for a tree of height {height}")]
    LeafOutOfRange {
        /// The leaf index found.
        q: u32,
        /// The tree height.
        height: u32,
    },
    /// An HSS level count outside what the decoder accepts.
    #[error("HSS level count {found} not accepted (allowed {min}..={max})")]
    UnsupportedLevels {
        /// Level count found.
        found: u32,
        /// Smallest accepted.
        min: u32,
        /// Largest accepted.
        max: u32,
    },
    /// An HSS signature whose signed-public-key count does not match the key's levels.
    #[error("HSS signature carries {found} signed public keys, expected {expected}")]
    WrongSignedKeyCount {
        /// Count found.
        found: u32,
        /// Count expected (levels - 1).
        expected: u32,
    },
}

impl From<ReadError> for DecodeError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Truncated { what, needed, had } => {
                DecodeError::Truncated { what, needed, had }
            }
            ReadError::TrailingBytes { what, extra } => DecodeError::TrailingBytes { what, extra },
        }
    }
}

impl LmotsPublicKey {
    /// Encoded length.
    pub const LEN: usize = 4 + ID_LEN + 4 + N;

    /// `u32str(type) || I || u32str(q) || K`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.ots_type.typecode().to_be_bytes());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.q.to_be_bytes());
        out.extend_from_slice(&self.k);
        out
    }

    /// Strict decode of [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "LM-OTS public key");
        let ots_type = LmotsType::from_typecode(r.u32()?)?;
        let id = r.array::<ID_LEN>()?;
        let q = r.u32()?;
        let k = r.array::<N>()?;
        r.finish()?;
        Ok(LmotsPublicKey { ots_type, id, q, k })
    }
}

impl LmotsSignature {
    /// `u32str(type) || C || y[0] || ... || y[p-1]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ots_type.signature_len());
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ots_type.typecode().to_be_bytes());
        out.extend_from_slice(&self.c);
        for y in &self.y {
            out.extend_from_slice(y);
        }
    }

    /// Strict decode: known type code and exactly `4 + 32 (p + 1)` bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "LM-OTS signature");
        let sig = Self::read(&mut r)?;
        r.finish()?;
        Ok(sig)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ots_type = LmotsType::from_typecode(r.u32()?)?;
        r.need(N * (ots_type.p() + 1))?;
        let c = r.array::<N>()?;
        let mut y = Vec::with_capacity(ots_type.p());
        for _ in 0..ots_type.p() {
            y.push(r.array::<N>()?);
        }
        Ok(LmotsSignature { ots_type, c, y })
    }
}
