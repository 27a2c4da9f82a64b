//! Member identities: a member of the federation is named by its Ed25519 public key (from which
//! its libp2p `PeerId` is derived); its X25519 key for end-to-end share encryption is bound to it
//! by the admission record. Everything that needs a per-member value (Shamir x-coordinates,
//! rendezvous weights) derives it from these 32 bytes.

use serde::{Deserialize, Serialize};

/// A member's Ed25519 public key bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberId(pub [u8; 32]);

impl MemberId {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberId({})", hex::encode(&self.0[..6]))
    }
}

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
