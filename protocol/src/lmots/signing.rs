//! LM-OTS signing and verification (RFC 8554 Algorithms 3 and 4b) with seedfed's deterministic
//! randomizer. Guarantees: signatures are the RFC's bytes for the given `C`, so any RFC 8554
//! verifier accepts them; [`verify`] is a pure function that compares `Kc` with `K` in constant
//! time and rejects a signature of another parameter set.

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::blocks::{blocks_for, digest_blocks, lay_padding, put, Block};
use super::chains::{prefix, run_chains, ChainJob};
use super::keygen::KBuffer;
use super::keys::{LeafSeed, LmotsPublicKey, LmotsSignature};
use super::params::LmotsType;
use super::{HashValue, Identifier, D_MESG, N};

/// The randomizer `C` seedfed uses: `C = SHA-256(I || u32str(q) || u16str(0xfffd) ||
/// u8str(0xff) || SEED || "seedfed-lmots-C" || message)`.
///
/// It is deterministic (every party that reconstructs the leaf seed computes the same
/// signature), unpredictable without the seed, bound to the message, and domain-separated from
/// the `x_q[i]` derivation (which uses `i < p <= 265` where this uses `0xfffd`, the value the
/// RFC 8554 reference implementation reserves for its randomizer seed).
///
/// The pre-image holds the seed, so it is laid out in block buffers of ours that are wiped
/// afterwards (a `Sha256` hasher would keep the seed's bytes in its block buffer, unwiped).
pub fn derive_randomizer(id: &Identifier, q: u32, seed: &LeafSeed, message: &[u8]) -> HashValue {
    const TAG: &[u8] = b"seedfed-lmots-C";
    let head = [&id[..], &q.to_be_bytes(), &0xfffdu16.to_be_bytes(), &[0xff]];
    let head_len: usize = head.iter().map(|h| h.len()).sum();
    let len = head_len + N + TAG.len() + message.len();
    let mut blocks = vec![Block::default(); blocks_for(len)];
    let mut off = 0;
    for part in head.into_iter().chain([&seed.expose()[..], TAG, message]) {
        put(&mut blocks, off, part);
        off += part.len();
    }
    lay_padding(&mut blocks, len);
    let c = digest_blocks(&blocks);
    for b in blocks.iter_mut() {
        b.as_mut_slice().zeroize();
    }
    c
}

/// Signs `message` with leaf `q`, using the deterministic randomizer [`derive_randomizer`].
pub fn sign(
    ots_type: LmotsType,
    id: &Identifier,
    q: u32,
    seed: &LeafSeed,
    message: &[u8],
) -> LmotsSignature {
    let c = derive_randomizer(id, q, seed, message);
    sign_with_randomizer(ots_type, id, q, seed, &c, message)
}

/// Signs `message` with leaf `q` and a caller-chosen randomizer `C` (which must be
/// unpredictable to anyone who does not hold the seed).
pub fn sign_with_randomizer(
    ots_type: LmotsType,
    id: &Identifier,
    q: u32,
    seed: &LeafSeed,
    c: &HashValue,
    message: &[u8],
) -> LmotsSignature {
    let digits = message_digits(ots_type, id, q, c, message);
    let mut jobs: Vec<ChainJob> = digits
        .iter()
        .enumerate()
        .map(|(i, &a)| ChainJob {
            i: i as u16,
            j0: 0xff,
            steps: 1 + u16::from(a),
            value: *seed.expose(),
        })
        .collect();
    run_chains(&prefix(id, q), &mut jobs);
    let y = jobs.iter().map(|j| j.value).collect();
    jobs.zeroize();
    LmotsSignature { ots_type, c: *c, y }
}

/// RFC 8554 Algorithm 4b: the candidate public key hash `Kc` for `signature` on `message`
/// under `(I, q)`. Returns `None` if the signature's type differs from `expected`.
pub fn candidate_public_key(
    expected: LmotsType,
    id: &Identifier,
    q: u32,
    signature: &LmotsSignature,
    message: &[u8],
) -> Option<HashValue> {
    if signature.ots_type != expected || signature.y.len() != expected.p() {
        return None;
    }
    let digits = message_digits(expected, id, q, &signature.c, message);
    let max = expected.max_digit() as u16;
    let mut jobs: Vec<ChainJob> = digits
        .iter()
        .zip(&signature.y)
        .enumerate()
        .map(|(i, (&a, y))| ChainJob {
            i: i as u16,
            j0: a,
            steps: max - u16::from(a),
            value: *y,
        })
        .collect();
    let pre = prefix(id, q);
    run_chains(&pre, &mut jobs);
    let mut kbuf = KBuffer::new(expected, id);
    kbuf.set_q(q);
    for (i, job) in jobs.iter().enumerate() {
        kbuf.set_y(i, &job.value);
    }
    Some(kbuf.digest())
}

/// Verifies an LM-OTS signature against a full LM-OTS public key.
pub fn verify(public_key: &LmotsPublicKey, signature: &LmotsSignature, message: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    match candidate_public_key(
        public_key.ots_type,
        &public_key.id,
        public_key.q,
        signature,
        message,
    ) {
        Some(kc) => bool::from(kc.ct_eq(&public_key.k)),
        None => false,
    }
}

/// `Q || Cksm(Q)` split into `p` digits of `w` bits, `Q = H(I || q || D_MESG || C || message)`.
fn message_digits(
    ots_type: LmotsType,
    id: &Identifier,
    q: u32,
    c: &HashValue,
    message: &[u8],
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(id);
    h.update(q.to_be_bytes());
    h.update(D_MESG.to_be_bytes());
    h.update(c);
    h.update(message);
    let qhash: [u8; N] = h.finalize().into();
    let w = ots_type.w();
    let digits_in_q = (N * 8) as u32 / w;
    let mut sum: u32 = 0;
    for i in 0..digits_in_q {
        sum += ots_type.max_digit() - u32::from(coef(&qhash, i, w));
    }
    let cksm = ((sum << ots_type.ls()) as u16).to_be_bytes();
    let mut buf = [0u8; N + 2];
    buf[..N].copy_from_slice(&qhash);
    buf[N..].copy_from_slice(&cksm);
    (0..ots_type.p() as u32).map(|i| coef(&buf, i, w)).collect()
}

/// RFC 8554 `coef(S, i, w)`.
fn coef(s: &[u8], i: u32, w: u32) -> u8 {
    let per_byte = 8 / w;
    let byte = s[(i / per_byte) as usize];
    let shift = 8 - (w * (i % per_byte) + w);
    ((u32::from(byte) >> shift) & ((1 << w) - 1)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lmots::leaf_public_key;

    /// The randomizer over our own wiped blocks is the formula's SHA-256, at message lengths
    /// that end the pre-image in the first block, exactly at its padding limit, and later.
    #[test]
    fn randomizer_is_the_documented_sha256() {
        let id = [3u8; 16];
        let seed = LeafSeed::from_bytes([4u8; 32]);
        for len in [0usize, 32, 49, 50, 55, 56, 64, 119, 120, 1000] {
            let message: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let want: HashValue = Sha256::new()
                .chain_update(id)
                .chain_update(9u32.to_be_bytes())
                .chain_update(0xfffdu16.to_be_bytes())
                .chain_update([0xff])
                .chain_update(seed.expose())
                .chain_update(b"seedfed-lmots-C")
                .chain_update(&message)
                .finalize()
                .into();
            assert_eq!(
                derive_randomizer(&id, 9, &seed, &message),
                want,
                "len {len}"
            );
        }
    }

    #[test]
    fn sign_verify_each_set() {
        let id = [1u8; 16];
        let seed = LeafSeed::from_bytes([2u8; 32]);
        for t in LmotsType::ALL {
            let pk = LmotsPublicKey {
                ots_type: t,
                id,
                q: 3,
                k: leaf_public_key(t, &id, 3, &seed),
            };
            let sig = sign(t, &id, 3, &seed, b"hello");
            assert!(verify(&pk, &sig, b"hello"));
            assert!(!verify(&pk, &sig, b"hellp"));
            let dec = LmotsSignature::decode(&sig.encode()).unwrap();
            assert_eq!(dec, sig);
            assert_eq!(LmotsPublicKey::decode(&pk.encode()).unwrap(), pk);
        }
    }

    #[test]
    fn coef_matches_rfc_example() {
        // RFC 8554 section 3.1.3: S = 0x1234.
        let s = [0x12, 0x34];
        assert_eq!(coef(&s, 7, 1), 0);
        assert_eq!(coef(&s, 0, 4), 1);
        assert_eq!(coef(&s, 3, 4), 4);
        assert_eq!(coef(&s, 1, 8), 0x34);
    }
}
