//! Domain-separated BLAKE2b, the hash for everything that is not an LMS structure.
//!
//! Every use names its purpose in the 16-byte BLAKE2 personalisation field (the domain) and may
//! put position data (level, index) in the 16-byte salt field, so two uses can never collide
//! even on equal inputs. Inputs are length-prefixed so concatenations are unambiguous.

use blake2::digest::consts::{U32, U64};
use blake2::digest::Mac;
use blake2::Blake2bMac;

/// A 16-byte BLAKE2 personalisation naming one purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain(pub [u8; 16]);

impl Domain {
    /// Builds a domain from an ASCII label of at most 16 bytes (zero-padded).
    pub const fn new(label: &str) -> Self {
        let bytes = label.as_bytes();
        assert!(bytes.len() <= 16, "domain label longer than 16 bytes");
        let mut out = [0u8; 16];
        let mut i = 0;
        while i < bytes.len() {
            out[i] = bytes[i];
            i += 1;
        }
        Domain(out)
    }
}

/// Hashes length-prefixed `parts` under `domain`, keyed by `key` (may be empty) with `salt`.
pub fn hash32(domain: Domain, key: &[u8], salt: &[u8; 16], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Blake2bMac::<U32>::new_with_salt_and_personal(key, salt, &domain.0)
        .unwrap_or_else(|_| unreachable!("key is at most 64 bytes by construction"));
    feed(&mut mac, parts);
    mac.finalize().into_bytes().into()
}

/// Like [`hash32`] with a 64-byte output (for wide reduction to a scalar).
pub fn hash64(domain: Domain, key: &[u8], salt: &[u8; 16], parts: &[&[u8]]) -> [u8; 64] {
    let mut mac = Blake2bMac::<U64>::new_with_salt_and_personal(key, salt, &domain.0)
        .unwrap_or_else(|_| unreachable!("key is at most 64 bytes by construction"));
    feed(&mut mac, parts);
    mac.finalize().into_bytes().into()
}

fn feed<M: Mac>(mac: &mut M, parts: &[&[u8]]) {
    for part in parts {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part);
    }
}

/// A salt carrying a (level, index) position: level in bytes 0..4, index in bytes 4..12.
pub fn position_salt(level: u32, index: u64) -> [u8; 16] {
    let mut salt = [0u8; 16];
    salt[..4].copy_from_slice(&level.to_le_bytes());
    salt[4..12].copy_from_slice(&index.to_le_bytes());
    salt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate() {
        let a = hash32(Domain::new("a"), &[], &[0; 16], &[b"x"]);
        let b = hash32(Domain::new("b"), &[], &[0; 16], &[b"x"]);
        assert_ne!(a, b);
    }

    #[test]
    fn salts_separate() {
        let d = Domain::new("d");
        assert_ne!(
            hash32(d, &[], &position_salt(1, 0), &[b"x"]),
            hash32(d, &[], &position_salt(0, 1), &[b"x"])
        );
    }

    #[test]
    fn parts_are_length_prefixed() {
        let d = Domain::new("d");
        assert_ne!(
            hash32(d, &[], &[0; 16], &[b"ab", b"c"]),
            hash32(d, &[], &[0; 16], &[b"a", b"bc"])
        );
    }

    #[test]
    fn keyed_differs_from_unkeyed() {
        let d = Domain::new("d");
        assert_ne!(
            hash32(d, b"k", &[0; 16], &[b"x"]),
            hash32(d, &[], &[0; 16], &[b"x"])
        );
        assert_ne!(hash64(d, b"k", &[0; 16], &[b"x"])[..32], hash32(d, b"k", &[0; 16], &[b"x"]));
    }
}
