//! End-to-end encryption of secret material to a member's X25519 key (ChaCha20-Poly1305).
//! [`seal`] keys each box with an ephemeral-static and a static-static X25519 secret: it opens only
//! for its recipient, only under the claimed sender's key and only with the same associated data.
//! [`seal_ephemeral`] leaves out the static-static part so that a recipient can publicly reveal one
//! box ([`reveal_ephemeral`], with a proof) without exposing any long-term secret.
//!
//! [`reveal_pairwise`] discloses, with the same kind of proof, the static Diffie–Hellman point of
//! two members (for a mask dispute of `reconstruct`, where one of the two is known to be faulty
//! and already knows it).
//!
//! Construction, the reveal proof and [`pairwise_secret`]'s use: `docs/sharing.md` (`seal`).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{clamp_integer, Scalar};
use curve25519_dalek::traits::IsIdentity;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::hash::{hash32, hash64, Domain};

const SEAL_KEY: Domain = Domain::new("seedfed-seal-key");
const SEAL_EPH_KEY: Domain = Domain::new("seedfed-seal-eph");
const REVEAL: Domain = Domain::new("seedfed-seal-rvl");
const POSSESSION: Domain = Domain::new("seedfed-x25519po");
const PAIR_REVEAL: Domain = Domain::new("seedfed-seal-pr");
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
    /// The ephemeral key is not a point of Curve25519 (it lies on the twist).
    #[error("ephemeral key is not on the curve")]
    NotOnCurve,
    /// A revealed shared secret's proof does not verify.
    #[error("revealed shared secret has an invalid proof")]
    BadReveal,
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
    aead_seal(&key, &eph_pub, ad, plaintext)
}

/// Opens a box sealed by `sender` to `recipient`'s key with the same `ad`.
pub fn open(
    recipient: &StaticSecret,
    sender: &PublicKey,
    ad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    check_length(sealed)?;
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
    aead_open(&key, ad, sealed)
}

fn ephemeral_box_key(
    es: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hash32(SEAL_EPH_KEY, es, &[0; 16], &[ephemeral, recipient]))
}

/// Encrypts under a key that is fresh per box (it mixes in a fresh ephemeral), so the fixed
/// nonce never repeats under one key.
fn aead_seal(
    key: &[u8; 32],
    eph_pub: &PublicKey,
    ad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, SealError> {
    let ciphertext = ChaCha20Poly1305::new(key.into())
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

fn aead_open(key: &[u8; 32], ad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, SealError> {
    ChaCha20Poly1305::new(key.into())
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

fn check_length(sealed: &Sealed) -> Result<(), SealError> {
    if sealed.ciphertext.len() < 16 || sealed.ciphertext.len() > MAX_CIPHERTEXT {
        return Err(SealError::Length(sealed.ciphertext.len()));
    }
    Ok(())
}

/// Encrypts `plaintext` to `recipient` under an ephemeral-static key only, binding `ad`. The box
/// does not authenticate its sender: the caller signs it.
pub fn seal_ephemeral<R: RngCore + CryptoRng>(
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
    let key = ephemeral_box_key(es.as_bytes(), eph_pub.as_bytes(), recipient.as_bytes());
    aead_seal(&key, &eph_pub, ad, plaintext)
}

/// Opens a [`seal_ephemeral`] box with the recipient's secret.
pub fn open_ephemeral(
    recipient: &StaticSecret,
    ad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    open_ephemeral_to(recipient, PublicKey::from(recipient).as_bytes(), ad, sealed)
}

/// [`open_ephemeral`] for a caller that already knows the public key the box was sealed to
/// (deriving it from the secret is a base-point multiplication, paid for every box otherwise).
/// If `recipient_public` is not `recipient`'s public key the box does not open.
pub fn open_ephemeral_to(
    recipient: &StaticSecret,
    recipient_public: &[u8; 32],
    ad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    check_length(sealed)?;
    let es = recipient.diffie_hellman(&PublicKey::from(sealed.ephemeral));
    if !es.was_contributory() {
        return Err(SealError::NonContributory);
    }
    let key = ephemeral_box_key(es.as_bytes(), &sealed.ephemeral, recipient_public);
    aead_open(&key, ad, sealed)
}

/// Whether a box's ephemeral key can be valid at all: a point of Curve25519 (not of its twist)
/// outside the small-order subgroup. Anyone can check this; a box that fails it is the sender's
/// fault, provably, without any reveal.
pub fn ephemeral_is_valid(sealed: &Sealed) -> bool {
    ephemeral_edwards(&sealed.ephemeral).is_ok()
}

/// The prime-order part `8·E` of the ephemeral key's Edwards form (sign 0), or why it has none.
fn ephemeral_edwards(ephemeral: &[u8; 32]) -> Result<EdwardsPoint, SealError> {
    let e = MontgomeryPoint(*ephemeral)
        .to_edwards(0)
        .ok_or(SealError::NotOnCurve)?
        .mul_by_cofactor();
    if e.is_identity() {
        return Err(SealError::NonContributory);
    }
    Ok(e)
}

/// The ephemeral-static Diffie–Hellman output of one box, disclosed by its recipient with a
/// proof that it is correct: `Q = x·E` on the Edwards curve (whose Montgomery `u` is the X25519
/// output) and a Chaum–Pedersen proof `(c, z)` that `log_{8B} P = log_{8E} Q`, where `P` is the
/// Edwards form (sign 0) of the recipient's X25519 public key and `x/8` the exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedSecret {
    /// `Q`, compressed Edwards.
    pub point: [u8; 32],
    /// Challenge `c` (canonical scalar bytes).
    pub challenge: [u8; 32],
    /// Response `z` (canonical scalar bytes).
    pub response: [u8; 32],
}

impl RevealedSecret {
    /// Encoded length.
    pub const LEN: usize = 96;

    /// `point ‖ challenge ‖ response`.
    pub fn to_bytes(&self) -> [u8; 96] {
        let mut out = [0u8; 96];
        out[..32].copy_from_slice(&self.point);
        out[32..64].copy_from_slice(&self.challenge);
        out[64..].copy_from_slice(&self.response);
        out
    }

    /// Inverse of [`to_bytes`](Self::to_bytes) (no validation: [`open_revealed`] checks).
    pub fn from_bytes(bytes: &[u8; 96]) -> Self {
        let mut point = [0u8; 32];
        let mut challenge = [0u8; 32];
        let mut response = [0u8; 32];
        point.copy_from_slice(&bytes[..32]);
        challenge.copy_from_slice(&bytes[32..64]);
        response.copy_from_slice(&bytes[64..]);
        RevealedSecret {
            point,
            challenge,
            response,
        }
    }
}

fn reveal_challenge(
    domain: Domain,
    key: &[u8; 32],
    label: &[u8; 32],
    q: &EdwardsPoint,
    a1: &EdwardsPoint,
    a2: &EdwardsPoint,
) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&hash64(
        domain,
        &[],
        &[0; 16],
        &[
            key,
            label,
            q.compress().as_bytes(),
            a1.compress().as_bytes(),
            a2.compress().as_bytes(),
        ],
    ))
}

/// The Chaum–Pedersen proof behind every reveal: `Q = s·base` with a proof that
/// `log_{8B} P = log_{base} Q`, where `P = s·(8B)` is the sign-0 Edwards lift of `secret`'s
/// X25519 public key (see [`edwards_exponent`]). `base` has prime order; `label` names it in
/// the challenge, under `domain`.
fn prove_dh<R: RngCore + CryptoRng>(
    secret: &StaticSecret,
    base: &EdwardsPoint,
    domain: Domain,
    label: &[u8; 32],
    rng: &mut R,
) -> Result<RevealedSecret, SealError> {
    let public = PublicKey::from(secret);
    let s = edwards_exponent(secret)?;
    let b8 = ED25519_BASEPOINT_POINT.mul_by_cofactor();
    let q = base * *s;
    let r = Zeroizing::new(Scalar::random(rng));
    let a1 = b8 * *r;
    let a2 = base * *r;
    let c = reveal_challenge(domain, public.as_bytes(), label, &q, &a1, &a2);
    let z = *r + c * *s;
    Ok(RevealedSecret {
        point: q.compress().to_bytes(),
        challenge: c.to_bytes(),
        response: z.to_bytes(),
    })
}

/// Checks a [`prove_dh`] proof for the X25519 public key `key` and returns `Q`; `BadReveal` if
/// it fails.
fn verify_dh(
    key: &[u8; 32],
    base: &EdwardsPoint,
    domain: Domain,
    label: &[u8; 32],
    revealed: &RevealedSecret,
) -> Result<EdwardsPoint, SealError> {
    let p = recipient_edwards(key).ok_or(SealError::NonContributory)?;
    let q = CompressedEdwardsY(revealed.point)
        .decompress()
        .filter(|q| q.is_torsion_free() && !q.is_identity())
        .ok_or(SealError::BadReveal)?;
    let c = Option::<Scalar>::from(Scalar::from_canonical_bytes(revealed.challenge))
        .ok_or(SealError::BadReveal)?;
    let z = Option::<Scalar>::from(Scalar::from_canonical_bytes(revealed.response))
        .ok_or(SealError::BadReveal)?;
    let b8 = ED25519_BASEPOINT_POINT.mul_by_cofactor();
    let a1 = b8 * z - p * c;
    let a2 = base * z - q * c;
    if reveal_challenge(domain, key, label, &q, &a1, &a2) != c {
        return Err(SealError::BadReveal);
    }
    Ok(q)
}

/// The recipient's public key in Edwards form (sign 0), prime order by construction of X25519
/// keys; `None` if it is not a valid point.
fn recipient_edwards(recipient: &[u8; 32]) -> Option<EdwardsPoint> {
    let p = MontgomeryPoint(*recipient).to_edwards(0)?;
    (p.is_torsion_free() && !p.is_identity()).then_some(p)
}

/// Discloses the ephemeral-static secret of `sealed` (addressed to `recipient`) with a proof,
/// so that anyone can open this one box with [`open_revealed`].
pub fn reveal_ephemeral<R: RngCore + CryptoRng>(
    recipient: &StaticSecret,
    sealed: &Sealed,
    rng: &mut R,
) -> Result<RevealedSecret, SealError> {
    let e8 = ephemeral_edwards(&sealed.ephemeral)?;
    prove_dh(recipient, &e8, REVEAL, &sealed.ephemeral, rng)
}

/// Checks `revealed` for the box `sealed` addressed to `recipient` and opens it with `ad`.
/// `BadReveal` if the proof fails (the revealer lied); `Authentication` if the proof holds but
/// the box does not open (the sender made a bad box).
pub fn open_revealed(
    recipient: &PublicKey,
    ad: &[u8],
    sealed: &Sealed,
    revealed: &RevealedSecret,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    check_length(sealed)?;
    let e8 = ephemeral_edwards(&sealed.ephemeral)?;
    let q = verify_dh(
        recipient.as_bytes(),
        &e8,
        REVEAL,
        &sealed.ephemeral,
        revealed,
    )?;
    let es = q.to_montgomery().to_bytes();
    let key = ephemeral_box_key(&es, &sealed.ephemeral, recipient.as_bytes());
    aead_open(&key, ad, sealed)
}

/// The static Diffie–Hellman point of `me` and `peer` on the Edwards curve: `D = s_me·P_peer =
/// s_me·s_peer·(8B)`, the same from both sides (compressed). It determines the pair's X25519
/// output ([`pairwise_secret`] is the `u` of `8·D`). Secret while both members keep it so.
pub fn pairwise_point(
    me: &StaticSecret,
    peer: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let p = recipient_edwards(peer).ok_or(SealError::NonContributory)?;
    let s = edwards_exponent(me)?;
    Ok(Zeroizing::new((p * *s).compress().to_bytes()))
}

/// Discloses [`pairwise_point`] of `me` and `peer` with a proof (`log_{8B} P_me = log_{P_peer}
/// D`) that anyone checks with [`verify_pairwise`]. It exposes the pair's static secret, for
/// every use of it: only for a pair whose other member is provably faulty (and knows it).
pub fn reveal_pairwise<R: RngCore + CryptoRng>(
    me: &StaticSecret,
    peer: &[u8; 32],
    rng: &mut R,
) -> Result<RevealedSecret, SealError> {
    let p = recipient_edwards(peer).ok_or(SealError::NonContributory)?;
    prove_dh(me, &p, PAIR_REVEAL, peer, rng)
}

/// Checks a [`reveal_pairwise`] by the owner of `revealer` about `peer` and returns the
/// pairwise point (compressed); `BadReveal` if the proof fails.
pub fn verify_pairwise(
    revealer: &[u8; 32],
    peer: &[u8; 32],
    revealed: &RevealedSecret,
) -> Result<[u8; 32], SealError> {
    let p = recipient_edwards(peer).ok_or(SealError::NonContributory)?;
    Ok(verify_dh(revealer, &p, PAIR_REVEAL, peer, revealed)?
        .compress()
        .to_bytes())
}

/// The exponent `s` with `P = s·(8B)`, where `P` is the sign-0 Edwards lift of `secret`'s
/// X25519 public key: X25519 multiplies by the clamped integer x, a multiple of 8, so
/// `x·E = (x/8)·(8E)`; the sign of `s` is the one that matches the lift.
fn edwards_exponent(secret: &StaticSecret) -> Result<Zeroizing<Scalar>, SealError> {
    let public = PublicKey::from(secret);
    let p = recipient_edwards(public.as_bytes()).ok_or(SealError::NonContributory)?;
    let clamped = Zeroizing::new(clamp_integer(secret.to_bytes()));
    let mut eighth = Zeroizing::new([0u8; 32]);
    for i in 0..32 {
        let hi = if i < 31 { clamped[i + 1] << 5 } else { 0 };
        eighth[i] = (clamped[i] >> 3) | hi;
    }
    let mut s = Zeroizing::new(Scalar::from_bytes_mod_order(*eighth));
    if ED25519_BASEPOINT_POINT.mul_by_cofactor() * *s != p {
        *s = -*s;
    }
    Ok(s)
}

/// Whether `key` is an X25519 public key that can receive sealed shares: its canonical encoding
/// (`u < 2^255 − 19`, top bit clear), a point of Curve25519 rather than its twist, and of prime
/// order (not in the small-order subgroup, so no Diffie–Hellman output with it is predictable).
/// Keys made by X25519 key generation always pass.
pub fn x25519_key_is_valid(key: &[u8; 32]) -> bool {
    let top_bit_clear = key[31] & 0x80 == 0;
    let below_p = !(key[31] == 0x7f && key[1..31].iter().all(|b| *b == 0xff) && key[0] >= 0xed);
    top_bit_clear && below_p && recipient_edwards(key).is_some()
}

/// A Schnorr proof that the owner of an X25519 key knows its secret, bound to `context` (for
/// admission: chain, peer id), so a peer cannot register another's key as its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PossessionProof {
    /// Challenge `c` (canonical scalar bytes).
    pub challenge: [u8; 32],
    /// Response `z` (canonical scalar bytes).
    pub response: [u8; 32],
}

fn possession_challenge(key: &[u8; 32], context: &[u8], a: &EdwardsPoint) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&hash64(
        POSSESSION,
        &[],
        &[0; 16],
        &[key, context, a.compress().as_bytes()],
    ))
}

/// Proves possession of `secret` for `context`.
pub fn prove_possession<R: RngCore + CryptoRng>(
    secret: &StaticSecret,
    context: &[u8],
    rng: &mut R,
) -> Result<PossessionProof, SealError> {
    let s = edwards_exponent(secret)?;
    let r = Zeroizing::new(Scalar::random(rng));
    let a = ED25519_BASEPOINT_POINT.mul_by_cofactor() * *r;
    let c = possession_challenge(PublicKey::from(secret).as_bytes(), context, &a);
    Ok(PossessionProof {
        challenge: c.to_bytes(),
        response: (*r + c * *s).to_bytes(),
    })
}

/// Checks a [`PossessionProof`] of `key` for `context`; also checks the key itself
/// ([`x25519_key_is_valid`]).
pub fn verify_possession(key: &[u8; 32], context: &[u8], proof: &PossessionProof) -> bool {
    if !x25519_key_is_valid(key) {
        return false;
    }
    let Some(p) = recipient_edwards(key) else {
        return false;
    };
    let (Some(c), Some(z)) = (
        Option::<Scalar>::from(Scalar::from_canonical_bytes(proof.challenge)),
        Option::<Scalar>::from(Scalar::from_canonical_bytes(proof.response)),
    ) else {
        return false;
    };
    let a = ED25519_BASEPOINT_POINT.mul_by_cofactor() * z - p * c;
    possession_challenge(key, context, &a) == c
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
    fn ephemeral_box_reveal_opens_for_anyone_and_rejects_lies() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for round in 0..8 {
            let b = StaticSecret::random_from_rng(&mut rng);
            let c = StaticSecret::random_from_rng(&mut rng);
            let pb = PublicKey::from(&b);
            let boxed = seal_ephemeral(&pb, b"ctx", b"share", &mut rng).unwrap();
            assert!(ephemeral_is_valid(&boxed));
            assert_eq!(&open_ephemeral(&b, b"ctx", &boxed).unwrap()[..], b"share");
            assert_eq!(
                open_ephemeral(&c, b"ctx", &boxed).unwrap_err(),
                SealError::Authentication
            );
            let rev = reveal_ephemeral(&b, &boxed, &mut rng).unwrap();
            assert_eq!(
                &open_revealed(&pb, b"ctx", &boxed, &rev).unwrap()[..],
                b"share",
                "round {round}"
            );
            assert_eq!(
                RevealedSecret::from_bytes(&rev.to_bytes()),
                rev,
                "encoding round trip"
            );
            // The revealed point's u-coordinate is exactly the X25519 output.
            let es = b.diffie_hellman(&PublicKey::from(boxed.ephemeral));
            let q = CompressedEdwardsY(rev.point).decompress().unwrap();
            assert_eq!(q.to_montgomery().to_bytes(), *es.as_bytes());
            // Someone else's reveal (c's secret) does not verify for b's box.
            let fake = reveal_ephemeral(&c, &boxed, &mut rng).unwrap();
            assert_eq!(
                open_revealed(&pb, b"ctx", &boxed, &fake).unwrap_err(),
                SealError::BadReveal
            );
            // Any bit flip in the reveal is rejected.
            for bit in [0usize, 7, 255, 256, 300, 511, 512, 700, 767] {
                let mut bytes = rev.to_bytes();
                bytes[bit / 8] ^= 1 << (bit % 8);
                let bad = RevealedSecret::from_bytes(&bytes);
                assert!(
                    open_revealed(&pb, b"ctx", &boxed, &bad).is_err(),
                    "bit {bit}"
                );
            }
            // A box whose ciphertext was altered: the reveal holds, the box does not open.
            let mut t = boxed.clone();
            t.ciphertext[0] ^= 1;
            let rev_t = reveal_ephemeral(&b, &t, &mut rng).unwrap();
            assert_eq!(
                open_revealed(&pb, b"ctx", &t, &rev_t).unwrap_err(),
                SealError::Authentication
            );
        }
    }

    #[test]
    fn invalid_ephemerals_are_detected() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let b = StaticSecret::random_from_rng(&mut rng);
        let mut boxed = seal_ephemeral(&PublicKey::from(&b), b"", b"x", &mut rng).unwrap();
        boxed.ephemeral = [0; 32];
        assert!(!ephemeral_is_valid(&boxed));
        // u = 2 is on the twist of Curve25519.
        let mut u2 = [0u8; 32];
        u2[0] = 2;
        boxed.ephemeral = u2;
        assert!(!ephemeral_is_valid(&boxed));
        assert_eq!(
            reveal_ephemeral(&b, &boxed, &mut rng).unwrap_err(),
            SealError::NotOnCurve
        );
    }

    #[test]
    fn pairwise_reveal_is_symmetric_checked_and_bound_to_the_pair() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let c = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb, pc) = (
            PublicKey::from(&a).to_bytes(),
            PublicKey::from(&b).to_bytes(),
            PublicKey::from(&c).to_bytes(),
        );
        let d = pairwise_point(&a, &pb).unwrap();
        assert_eq!(*d, *pairwise_point(&b, &pa).unwrap());
        // It determines the X25519 output of the pair.
        let eight_d = CompressedEdwardsY(*d)
            .decompress()
            .unwrap()
            .mul_by_cofactor();
        assert_eq!(
            eight_d.to_montgomery().to_bytes(),
            *pairwise_secret(&a, &PublicKey::from(pb)).unwrap()
        );
        let rev = reveal_pairwise(&a, &pb, &mut rng).unwrap();
        assert_eq!(verify_pairwise(&pa, &pb, &rev).unwrap(), *d);
        // The other side's reveal gives the same point.
        let rev_b = reveal_pairwise(&b, &pa, &mut rng).unwrap();
        assert_eq!(verify_pairwise(&pb, &pa, &rev_b).unwrap(), *d);
        // Claimed for another revealer or another peer, or altered: refused.
        assert_eq!(
            verify_pairwise(&pc, &pb, &rev).unwrap_err(),
            SealError::BadReveal
        );
        assert_eq!(
            verify_pairwise(&pa, &pc, &rev).unwrap_err(),
            SealError::BadReveal
        );
        // c's true point with b, passed off as a's.
        let other = reveal_pairwise(&c, &pb, &mut rng).unwrap();
        assert_eq!(
            verify_pairwise(&pa, &pb, &other).unwrap_err(),
            SealError::BadReveal
        );
        for bit in [0usize, 255, 256, 511, 512, 767] {
            let mut bytes = rev.to_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(verify_pairwise(&pa, &pb, &RevealedSecret::from_bytes(&bytes)).is_err());
        }
        // An ephemeral-box reveal is no pairwise reveal (domain separation).
        let boxed = seal_ephemeral(&PublicKey::from(pb), b"", b"x", &mut rng).unwrap();
        let eph = reveal_ephemeral(&b, &boxed, &mut rng).unwrap();
        assert!(verify_pairwise(&pb, &pa, &eph).is_err());
        assert!(pairwise_point(&a, &[0; 32]).is_err());
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

    #[test]
    fn x25519_keys_are_checked_for_canonical_prime_order_points() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for _ in 0..16 {
            let sk = StaticSecret::random_from_rng(&mut rng);
            assert!(x25519_key_is_valid(PublicKey::from(&sk).as_bytes()));
        }
        // Low-order points: 0, 1, and the order-8 point of RFC 7748 test vectors.
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(
            &hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                .expect("hex"),
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        for bad in [[0u8; 32], one, order8] {
            assert!(!x25519_key_is_valid(&bad));
        }
        // Non-canonical encodings: top bit set, and u = p + 9 (the base point plus p).
        let mut base = [0u8; 32];
        base[0] = 9;
        assert!(x25519_key_is_valid(&base));
        let mut high = base;
        high[31] |= 0x80;
        assert!(!x25519_key_is_valid(&high));
        let mut over = [0xffu8; 32];
        over[31] = 0x7f;
        over[0] = 0xed + 9;
        assert!(!x25519_key_is_valid(&over));
        // A point on the twist (u = 2 is not on Curve25519).
        let mut two = [0u8; 32];
        two[0] = 2;
        assert!(!x25519_key_is_valid(&two));
    }

    #[test]
    fn possession_proofs_bind_key_and_context() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let sk = StaticSecret::random_from_rng(&mut rng);
        let pk = PublicKey::from(&sk).to_bytes();
        let proof = prove_possession(&sk, b"chain/peer", &mut rng).expect("prove");
        assert!(verify_possession(&pk, b"chain/peer", &proof));
        assert!(!verify_possession(&pk, b"chain/other-peer", &proof));
        let other = PublicKey::from(&StaticSecret::random_from_rng(&mut rng)).to_bytes();
        assert!(!verify_possession(&other, b"chain/peer", &proof));
        let mut bad = proof;
        bad.response[0] ^= 1;
        assert!(!verify_possession(&pk, b"chain/peer", &bad));
        assert!(!verify_possession(&[0; 32], b"chain/peer", &proof));
    }
}
