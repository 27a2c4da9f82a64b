//! The consensus signing key: an Ed25519 key that signs this node's votes and proposals.
//!
//! The secret never leaves this type: it prints as `[redacted]`, zeroizes on drop, and the
//! state machine can only ask it to sign a digest.

use malachitebft_signing_ed25519 as ms;
use zeroize::Zeroize;

use crate::member::MemberId;

/// An Ed25519 consensus signing key; prints as `[redacted]` and zeroizes on drop.
pub struct ConsensusKey(ms::PrivateKey);

impl ConsensusKey {
    /// From a 32-byte Ed25519 seed (the same seed as the node's identity key).
    pub fn from_seed(mut seed: [u8; 32]) -> Self {
        let k = ConsensusKey(ms::PrivateKey::from(seed));
        seed.zeroize();
        k
    }

    /// The identity this key signs as.
    pub fn member_id(&self) -> MemberId {
        MemberId(*self.0.public_key().as_bytes())
    }

    /// Signs a vote or proposal sign digest (see `context`).
    pub(super) fn sign(&self, digest: &[u8; 32]) -> ms::Signature {
        self.0.sign(digest)
    }
}

impl std::fmt::Debug for ConsensusKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for ConsensusKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}
