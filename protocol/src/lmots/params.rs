//! The LM-OTS parameter sets with SHA-256 and n = 32 (RFC 8554 section 4.1, table in 8.1).
//!
//! Guarantees: the type codes, `w`, `p`, `ls` and signature lengths are the RFC's exactly;
//! [`LmotsType::from_typecode`] accepts only the four SHA-256/N32 codes and names any other.

use super::blocks::blocks_for;
use super::encoding::DecodeError;
use super::N;

/// The LM-OTS parameter sets with SHA-256 and n = 32 (RFC 8554 section 4.1, table in 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LmotsType {
    /// `LMOTS_SHA256_N32_W1`, type code 1.
    W1,
    /// `LMOTS_SHA256_N32_W2`, type code 2.
    W2,
    /// `LMOTS_SHA256_N32_W4`, type code 3.
    W4,
    /// `LMOTS_SHA256_N32_W8`, type code 4.
    W8,
}

impl LmotsType {
    /// All supported sets.
    pub const ALL: [LmotsType; 4] = [LmotsType::W1, LmotsType::W2, LmotsType::W4, LmotsType::W8];

    /// The RFC 8554 type code.
    pub const fn typecode(self) -> u32 {
        match self {
            LmotsType::W1 => 1,
            LmotsType::W2 => 2,
            LmotsType::W4 => 3,
            LmotsType::W8 => 4,
        }
    }

    /// Parses a type code.
    pub fn from_typecode(code: u32) -> Result<Self, DecodeError> {
        match code {
            1 => Ok(LmotsType::W1),
            2 => Ok(LmotsType::W2),
            3 => Ok(LmotsType::W4),
            4 => Ok(LmotsType::W8),
            other => Err(DecodeError::UnknownLmotsType(other)),
        }
    }

    /// Winternitz parameter `w` (bits per digit).
    pub const fn w(self) -> u32 {
        match self {
            LmotsType::W1 => 1,
            LmotsType::W2 => 2,
            LmotsType::W4 => 4,
            LmotsType::W8 => 8,
        }
    }

    /// Number of hash chains `p`.
    pub const fn p(self) -> usize {
        match self {
            LmotsType::W1 => 265,
            LmotsType::W2 => 133,
            LmotsType::W4 => 67,
            LmotsType::W8 => 34,
        }
    }

    /// Left shift `ls` of the checksum.
    pub const fn ls(self) -> u32 {
        match self {
            LmotsType::W1 => 7,
            LmotsType::W2 => 6,
            LmotsType::W4 => 4,
            LmotsType::W8 => 0,
        }
    }

    /// Largest digit value, `2^w - 1` (the chain length).
    pub const fn max_digit(self) -> u32 {
        (1 << self.w()) - 1
    }

    /// Length of an encoded LM-OTS signature: `4 + n * (p + 1)`.
    pub const fn signature_len(self) -> usize {
        4 + N * (self.p() + 1)
    }

    /// SHA-256 compressions to compute one leaf public key `K`: `p` key derivations, `p`
    /// chains of `2^w - 1` steps, and the blocks of `H(I || q || D_PBLC || y[0..p])`.
    pub const fn keygen_compressions(self) -> u64 {
        let p = self.p() as u64;
        p + p * self.max_digit() as u64 + blocks_for(22 + N * self.p()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_sets_match_rfc_table() {
        // RFC 8554 section 4.1 table / Appendix B: (w, p, ls, sig len).
        let expect = [
            (LmotsType::W1, 1, 265, 7, 8516),
            (LmotsType::W2, 2, 133, 6, 4292),
            (LmotsType::W4, 4, 67, 4, 2180),
            (LmotsType::W8, 8, 34, 0, 1124),
        ];
        for (t, w, p, ls, len) in expect {
            assert_eq!((t.w(), t.p(), t.ls(), t.signature_len()), (w, p, ls, len));
            assert_eq!(LmotsType::from_typecode(t.typecode()), Ok(t));
        }
        assert_eq!(
            LmotsType::from_typecode(5),
            Err(DecodeError::UnknownLmotsType(5))
        );
    }
}
