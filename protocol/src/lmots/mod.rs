//! LM-OTS one-time signatures (RFC 8554 section 4) with the SHA-256, N = 32 parameter sets;
//! each one-time key `(I, q)` has its own secret [`LeafSeed`], from which the private values are
//! derived as in RFC 8554 Appendix A. Guarantees: keys and signatures are byte-for-byte the
//! RFC's, so any RFC 8554 verifier accepts ours; decoders are strict and never panic. Design and
//! performance: `docs/lms.md`.

mod blocks;
mod chains;
mod encoding;
mod keygen;
mod keys;
mod params;
mod signing;

pub(crate) use blocks::{blocks_for, digest_blocks, lay_padding, put, Block};
pub use encoding::DecodeError;
pub use keygen::leaf_public_key;
pub(crate) use keygen::KeygenScratch;
pub use keys::{LeafSeed, LmotsPublicKey, LmotsSignature};
pub use params::LmotsType;
pub use signing::{candidate_public_key, derive_randomizer, sign, sign_with_randomizer, verify};

/// The strict reader of the RFC 8554 decoders (here and in `lms`).
pub(crate) type Reader<'a> = crate::bytes::Reader<'a, DecodeError>;

/// Hash output length `n` (bytes) of every parameter set here.
pub const N: usize = 32;
/// Length of the tree identifier `I`.
pub const ID_LEN: usize = 16;
/// The tree identifier `I` (RFC 8554 section 5.1).
pub type Identifier = [u8; ID_LEN];
/// A 32-byte hash value (a public key `K`, a tree node, a chain value).
pub type HashValue = [u8; N];

/// The `D_PBLC` domain of the public key hash `K`.
pub(crate) const D_PBLC: u16 = 0x8080;
/// The `D_MESG` domain of the message hash `Q`.
pub(crate) const D_MESG: u16 = 0x8181;
