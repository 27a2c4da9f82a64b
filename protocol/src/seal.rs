//! End-to-end encryption of secret material to a member's X25519 key.
//!
//! [`seal`] encrypts with ChaCha20-Poly1305 under a key derived from two Diffie–Hellman outputs:
//! ephemeral-static (`es`, fresh per message: forward secrecy against a later leak of the
//! sender's key, and a unique key so the fixed nonce is never reused) and static-static (`ss`:
//! only the claimed sender or the recipient can produce a box that opens, so a box that opens
//! under sender X's public key really comes from X — the recipient can attribute it, though it
//! cannot prove that to a third party). The caller's associated data (session, epoch, leaf,
//! sender, recipient…) is authenticated, so a box is rejected in any other context (replay).
//! DH outputs that are all zero (low-order peer keys) are refused.
//!
//! [`pairwise_secret`] is the plain static-static X25519 secret two members share, used for
//! masks (`reconstruct`); it is only ever used as a key to a domain-separated hash.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::hash::{hash32, Domain};

const SEAL_KEY: Domain = Domain::new("seedfed-seal-key");
/// Largest ciphertext [`open`] accepts (16 MiB: a repair vector of ~500k scalars).
pub const MAX_CIPHERTEXT: usize = 16 << 20;

/// Errors from sealing and opening. Never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A Diffie–Hellman output was all zero (a low-order public key).
    #[error("non-contributory X25519 key")]
    NonContributory,
    /// The box did not authenticate: wrong key, wrong context, or tampered.
    #[error("ciphertext does not authenticate (wrong key, wrong context, or tampered)")]
    Authentication,
    /// The ciphertext is longer than [`MAX_CIPHERTEXT`] or shorter than a tag.
    #[error("ciphertext length {0} out of range")]
    Length(usize),
}

/// An encrypted, authenticated box: the sender's ephemeral X25519 public key and the
/// ChaCha20-Poly1305 ciphertext (plaintext length + 16-byte tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// Ciphertext with tag.
    pub ciphertext: Vec<u8>,
}

/// The static-static X25519 secret between `me` and `peer`; refuses all-zero outputs.
pub fn pairwise_secret(
    me: &StaticSecret,
    peer: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let shared = me.diffie_hellman(peer);
    if !shared.was_contributory() {
        return Err(SealError::NonContributory);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

fn box_key(
    es: &[u8; 32],
    ss: &[u8; 32],
    ephemeral: &[u8; 32],
    sender: &PublicKey,
    recipient: &PublicKey,
) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hash32(
        SEAL_KEY,
        ss,
        &[0; 16],
        &[es, ephemeral, sender.as_bytes(), recipient.as_bytes()],
    ))
}

/// Encrypts `plaintext` from `sender` to `recipient`, binding `ad`.
pub fn seal<R: RngCore + CryptoRng>(
    sender: &StaticSecret,
    recipient: &PublicKey,
    ad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Sealed, SealError> {
    let eph = EphemeralSecret::random_from_rng(&mut *rng);
    let eph_pub = PublicKey::from(&eph);
    let es = eph.diffie_hellman(recipient);
    if !es.was_contributory() {
        return Err(SealError::NonContributory);
    }
    let ss = pairwise_secret(sender, recipient)?;
    let key = box_key(
        es.as_bytes(),
        &ss,
        eph_pub.as_bytes(),
        &PublicKey::from(sender),
        recipient,
    );
    let cipher = ChaCha20Poly1305::new((&*key).into());
    // The key is fresh per message (fresh ephemeral), so a fixed nonce never repeats under a key.
    let ciphertext = cipher
        .encrypt(
            &[0u8; 12].into(),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .map_err(|_| SealError::Length(plaintext.len()))?;
    Ok(Sealed {
        ephemeral: eph_pub.to_bytes(),
        ciphertext,
    })
}

/// Opens a box sealed by `sender` to `recipient`'s key with the same `ad`.
pub fn open(
    recipient: &StaticSecret,
    sender: &PublicKey,
    ad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.ciphertext.len() < 16 || sealed.ciphertext.len() > MAX_CIPHERTEXT {
        return Err(SealError::Length(sealed.ciphertext.len()));
    }
    let eph_pub = PublicKey::from(sealed.ephemeral);
    let es = recipient.diffie_hellman(&eph_pub);
    if !es.was_contributory() {
        return Err(SealError::NonContributory);
    }
    let ss = pairwise_secret(recipient, sender)?;
    let key = box_key(
        es.as_bytes(),
        &ss,
        &sealed.ephemeral,
        sender,
        &PublicKey::from(recipient),
    );
    let cipher = ChaCha20Poly1305::new((&*key).into());
    cipher
        .decrypt(
            &[0u8; 12].into(),
            Payload {
                msg: &sealed.ciphertext,
                aad: ad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn seal_open_round_trip_and_rejections() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let c = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb, pc) = (
            PublicKey::from(&a),
            PublicKey::from(&b),
            PublicKey::from(&c),
        );
        let boxed = seal(&a, &pb, b"ctx", b"hello", &mut rng).unwrap();
        assert_eq!(&open(&b, &pa, b"ctx", &boxed).unwrap()[..], b"hello");
        // Wrong context (replay elsewhere), wrong claimed sender, wrong recipient, tampering.
        assert_eq!(
            open(&b, &pa, b"other", &boxed).unwrap_err(),
            SealError::Authentication
        );
        assert_eq!(
            open(&b, &pc, b"ctx", &boxed).unwrap_err(),
            SealError::Authentication
        );
        assert_eq!(
            open(&c, &pa, b"ctx", &boxed).unwrap_err(),
            SealError::Authentication
        );
        let mut t = boxed.clone();
        t.ciphertext[0] ^= 1;
        assert_eq!(
            open(&b, &pa, b"ctx", &t).unwrap_err(),
            SealError::Authentication
        );
        let mut t = boxed.clone();
        t.ciphertext.truncate(3);
        assert_eq!(open(&b, &pa, b"ctx", &t).unwrap_err(), SealError::Length(3));
        // A low-order ephemeral key is refused.
        let mut t = boxed;
        t.ephemeral = [0; 32];
        assert_eq!(
            open(&b, &pa, b"ctx", &t).unwrap_err(),
            SealError::NonContributory
        );
        let _ = pc;
    }

    #[test]
    fn pairwise_secret_is_symmetric() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        assert_eq!(
            *pairwise_secret(&a, &PublicKey::from(&b)).unwrap(),
            *pairwise_secret(&b, &PublicKey::from(&a)).unwrap()
        );
        assert_eq!(
            pairwise_secret(&a, &PublicKey::from([0u8; 32])).unwrap_err(),
            SealError::NonContributory
        );
    }
}
