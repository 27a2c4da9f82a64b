//! The LM-OTS values: a leaf's secret seed, a one-time public key, a one-time signature.
//!
//! Guarantees: a [`LeafSeed`] zeroizes on drop and prints as `LeafSeed([redacted])`; public
//! keys and signatures are plain data whose byte encodings live in `encoding`.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::params::LmotsType;
use super::{HashValue, Identifier, N};

/// A leaf's 32-byte secret seed (RFC 8554 Appendix A `SEED`); zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LeafSeed([u8; N]);

impl LeafSeed {
    /// Wraps seed bytes (the caller should erase its own copy).
    pub fn from_bytes(bytes: [u8; N]) -> Self {
        LeafSeed(bytes)
    }

    /// Copies seed bytes into a new seed, built in place: no unwiped temporary of ours (the
    /// caller wipes `bytes`, e.g. by holding them in a `Zeroizing`).
    pub fn copy_from(bytes: &[u8; N]) -> Self {
        let mut seed = LeafSeed([0; N]);
        seed.0.copy_from_slice(bytes);
        seed
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl std::fmt::Debug for LeafSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeafSeed([redacted])")
    }
}

/// An LM-OTS public key (RFC 8554 section 4.3): type, `I`, `q`, `K`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmotsPublicKey {
    /// Parameter set.
    pub ots_type: LmotsType,
    /// Tree identifier.
    pub id: Identifier,
    /// Leaf index.
    pub q: u32,
    /// The public key hash `K`.
    pub k: HashValue,
}

/// An LM-OTS signature (RFC 8554 section 4.5): type, randomizer `C`, `p` chain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmotsSignature {
    /// Parameter set.
    pub ots_type: LmotsType,
    /// The randomizer `C`.
    pub c: HashValue,
    /// The `p` chain values `y[i]`.
    pub y: Vec<HashValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_debug_is_redacted() {
        let s = LeafSeed::from_bytes([0xab; 32]);
        let d = format!("{s:?}");
        assert!(d.contains("[redacted]") && !d.contains("ab") && !d.contains("171"));
    }
}
