//! Secrets at rest: store records that hold key material (the epoch agent's snapshot with its
//! DKG key shares and signing nonces; later, leaf shares) are sealed before they reach the
//! store, under a key derived from the node's identity secrets, which exist on disk only inside
//! the passphrase-encrypted keystore.
//!
//! Guarantees: a stolen data directory without the keystore passphrase reveals none of these
//! secrets; a sealed record opens only under the same identity and for the same label (a
//! record cannot be moved to another key of the store); a damaged record is an error, never
//! garbage. The key is zeroized on drop and prints as `[redacted]`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use seedfed_protocol::hash::{hash32, Domain};
use thiserror::Error;
use zeroize::Zeroizing;

const AT_REST: Domain = Domain::new("seedfed-at-rest");
/// Format byte of a sealed record.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Why a sealed record did not open. Carries no secret.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AtRestError {
    /// Too short, or an unknown format byte.
    #[error("sealed record is malformed (length {0})")]
    Malformed(usize),
    /// The record does not authenticate: another identity sealed it, it was written for
    /// another label, it was written unsealed by an older version, or it is damaged.
    #[error("sealed record does not open (another identity, another record, or damaged)")]
    Authentication,
}

/// The node's at-rest sealing key.
pub struct AtRestKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRestKey([redacted])")
    }
}

impl AtRestKey {
    /// Derives the key from the identity's Ed25519 seed and X25519 secret (keyed BLAKE2b,
    /// domain-separated): only a holder of the unlocked keystore can derive it.
    pub fn derive(identity_seed: &[u8; 32], x25519_secret: &[u8; 32]) -> Self {
        let mut input = Zeroizing::new([0u8; 64]);
        input[..32].copy_from_slice(identity_seed);
        input[32..].copy_from_slice(x25519_secret);
        AtRestKey(Zeroizing::new(hash32(AT_REST, &input[..], &[0; 16], &[])))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&self.0[..]))
    }

    /// Seals `plain` as the record `label`: `version ‖ nonce ‖ ciphertext`.
    pub fn seal(&self, label: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: label,
                },
            )
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 encryption of a buffer"));
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a record sealed by [`seal`](Self::seal) under the same label.
    pub fn open(&self, label: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AtRestError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(AtRestError::Malformed(sealed.len()));
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: label,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| AtRestError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::storage::ChainStore;
    use crate::store::{self, Backend};

    /// A secret that must never appear on disk in the clear.
    const MARKER: &[u8] = b"agent-secret-marker-0123456789abcdef";

    #[test]
    fn records_open_only_under_the_same_identity_and_label() {
        let key = AtRestKey::derive(&[1; 32], &[2; 32]);
        let sealed = key.seal(b"agent", MARKER);
        assert_eq!(&key.open(b"agent", &sealed).unwrap()[..], MARKER);
        assert_eq!(
            key.open(b"other", &sealed),
            Err(AtRestError::Authentication)
        );
        let other = AtRestKey::derive(&[1; 32], &[3; 32]);
        assert_eq!(
            other.open(b"agent", &sealed),
            Err(AtRestError::Authentication)
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            key.open(b"agent", &flipped),
            Err(AtRestError::Authentication)
        );
        assert_eq!(
            key.open(b"agent", &sealed[..10]),
            Err(AtRestError::Malformed(10))
        );
        // An unsealed record from an older version does not pass for a sealed one.
        assert!(key.open(b"agent", MARKER).is_err());
        assert_eq!(format!("{key:?}"), "AtRestKey([redacted])");
    }

    #[test]
    fn a_stolen_data_directory_holds_no_agent_secret() {
        let dir = tempfile::tempdir().unwrap();
        let key = AtRestKey::derive(&[5; 32], &[6; 32]);
        {
            let mut cs = ChainStore::new(store::open(dir.path(), Backend::Redb).unwrap());
            cs.put_agent(&key, MARKER).unwrap();
        }
        // Every byte of every file the store wrote: the marker is nowhere.
        let mut files = vec![dir.path().to_path_buf()];
        let mut seen = 0;
        while let Some(p) = files.pop() {
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                let raw = std::fs::read(&p).unwrap();
                seen += raw.len();
                assert!(
                    !raw.windows(MARKER.len()).any(|w| w == MARKER),
                    "{} holds the secret in the clear",
                    p.display()
                );
            }
        }
        assert!(seen > 0, "the store wrote nothing");
        // The node itself reads it back.
        let cs = ChainStore::new(store::open(dir.path(), Backend::Redb).unwrap());
        assert_eq!(&cs.agent(&key).unwrap().unwrap()[..], MARKER);
        let wrong = AtRestKey::derive(&[5; 32], &[7; 32]);
        assert!(cs.agent(&wrong).is_err());
    }
}
