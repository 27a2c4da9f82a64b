//! LMS Merkle-tree signatures (RFC 8554 section 5) and their HSS wrapping (section 6), with the
//! RFC's byte encodings, so what seedfed publishes verifies in any RFC 8554 implementation.
//! Verification is a pure function of (public key, message, signature): it accepts iff the
//! one-time signature yields a leaf key whose path hashes to `T[1]`, type codes matching the key's.
//! Decoders are strict (known type codes, `q < 2^h`, exact lengths) and never panic.
//!
//! Encodings, guarantees, tests and performance: `docs/lms.md`.

use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::lmots::{
    self, blocks_for, digest_blocks, lay_padding, put, Block, DecodeError, HashValue, Identifier,
    LeafSeed, LmotsSignature, LmotsType, Reader, ID_LEN, N,
};

const D_LEAF: u16 = 0x8282;
const D_INTR: u16 = 0x8383;

/// The LMS parameter sets with SHA-256 and m = 32 (RFC 8554 section 5.1, table in 8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LmsType {
    /// `LMS_SHA256_M32_H5`, type code 5.
    H5,
    /// `LMS_SHA256_M32_H10`, type code 6.
    H10,
    /// `LMS_SHA256_M32_H15`, type code 7.
    H15,
    /// `LMS_SHA256_M32_H20`, type code 8.
    H20,
    /// `LMS_SHA256_M32_H25`, type code 9.
    H25,
}

impl LmsType {
    /// All supported sets.
    pub const ALL: [LmsType; 5] = [
        LmsType::H5,
        LmsType::H10,
        LmsType::H15,
        LmsType::H20,
        LmsType::H25,
    ];

    /// The RFC 8554 type code.
    pub const fn typecode(self) -> u32 {
        match self {
            LmsType::H5 => 5,
            LmsType::H10 => 6,
            LmsType::H15 => 7,
            LmsType::H20 => 8,
            LmsType::H25 => 9,
        }
    }

    /// Parses a type code.
    pub fn from_typecode(code: u32) -> Result<Self, DecodeError> {
        match code {
            5 => Ok(LmsType::H5),
            6 => Ok(LmsType::H10),
            7 => Ok(LmsType::H15),
            8 => Ok(LmsType::H20),
            9 => Ok(LmsType::H25),
            other => Err(DecodeError::UnknownLmsType(other)),
        }
    }

    /// The set with tree height `h`, if there is one.
    pub fn from_height(h: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.height() == h)
    }

    /// Tree height `h`.
    pub const fn height(self) -> u32 {
        match self {
            LmsType::H5 => 5,
            LmsType::H10 => 10,
            LmsType::H15 => 15,
            LmsType::H20 => 20,
            LmsType::H25 => 25,
        }
    }

    /// Number of leaves `2^h`.
    pub const fn leaves(self) -> u64 {
        1 << self.height()
    }
}

/// An LMS public key (RFC 8554 section 5.3): `u32str(type) || u32str(otstype) || I || T[1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmsPublicKey {
    /// Tree parameter set.
    pub lms_type: LmsType,
    /// One-time key parameter set.
    pub ots_type: LmotsType,
    /// Tree identifier `I`.
    pub id: Identifier,
    /// Root `T[1]`.
    pub root: HashValue,
}

impl LmsPublicKey {
    /// Encoded length (56 bytes).
    pub const LEN: usize = 8 + ID_LEN + N;

    /// RFC 8554 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.lms_type.typecode().to_be_bytes());
        out.extend_from_slice(&self.ots_type.typecode().to_be_bytes());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.root);
        out
    }

    /// Strict decode of [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "LMS public key");
        let pk = Self::read(&mut r)?;
        r.finish()?;
        Ok(pk)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let lms_type = LmsType::from_typecode(r.u32()?)?;
        let ots_type = LmotsType::from_typecode(r.u32()?)?;
        let id = r.array::<ID_LEN>()?;
        let root = r.array::<N>()?;
        Ok(LmsPublicKey {
            lms_type,
            ots_type,
            id,
            root,
        })
    }

    /// HSS encoding with one level: `u32str(1) || LMS public key`.
    pub fn encode_hss(&self) -> Vec<u8> {
        let mut out = 1u32.to_be_bytes().to_vec();
        out.extend_from_slice(&self.encode());
        out
    }

    /// Strict decode of a one-level HSS public key.
    pub fn decode_hss(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "HSS public key");
        let levels = r.u32()?;
        if levels != 1 {
            return Err(DecodeError::UnsupportedLevels {
                found: levels,
                min: 1,
                max: 1,
            });
        }
        let pk = Self::read(&mut r)?;
        r.finish()?;
        Ok(pk)
    }

    /// Verifies `signature` on `message` (RFC 8554 Algorithm 6a).
    pub fn verify(&self, message: &[u8], signature: &LmsSignature) -> Result<(), VerifyError> {
        verify(self, message, signature)
    }
}

/// An LMS signature (RFC 8554 section 5.4):
/// `u32str(q) || lmots_signature || u32str(type) || path[0] || ... || path[h-1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmsSignature {
    /// Leaf index.
    pub q: u32,
    /// The one-time signature.
    pub ots: LmotsSignature,
    /// Tree parameter set.
    pub lms_type: LmsType,
    /// Authentication path, from the leaf's sibling up to a child of the root.
    pub path: Vec<HashValue>,
}

impl LmsSignature {
    /// Encoded length for the given parameter sets.
    pub const fn encoded_len(lms_type: LmsType, ots_type: LmotsType) -> usize {
        4 + ots_type.signature_len() + 4 + N * lms_type.height() as usize
    }

    /// RFC 8554 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.lms_type, self.ots.ots_type));
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.q.to_be_bytes());
        self.ots.encode_into(out);
        out.extend_from_slice(&self.lms_type.typecode().to_be_bytes());
        for node in &self.path {
            out.extend_from_slice(node);
        }
    }

    /// Strict decode: known type codes, `q < 2^h`, exact length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "LMS signature");
        let sig = Self::read(&mut r)?;
        r.finish()?;
        Ok(sig)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let q = r.u32()?;
        let ots = LmotsSignature::read(r)?;
        let lms_type = LmsType::from_typecode(r.u32()?)?;
        let h = lms_type.height();
        if u64::from(q) >= lms_type.leaves() {
            return Err(DecodeError::LeafOutOfRange { q, height: h });
        }
        r.need(N * h as usize)?;
        let mut path = Vec::with_capacity(h as usize);
        for _ in 0..h {
            path.push(r.array::<N>()?);
        }
        Ok(LmsSignature {
            q,
            ots,
            lms_type,
            path,
        })
    }

    /// HSS encoding with one level: `u32str(0) || LMS signature`.
    pub fn encode_hss(&self) -> Vec<u8> {
        let mut out = 0u32.to_be_bytes().to_vec();
        self.encode_into(&mut out);
        out
    }

    /// Strict decode of a one-level HSS signature (`Nspk` must be 0).
    pub fn decode_hss(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "HSS signature");
        let nspk = r.u32()?;
        if nspk != 0 {
            return Err(DecodeError::WrongSignedKeyCount {
                found: nspk,
                expected: 0,
            });
        }
        let sig = Self::read(&mut r)?;
        r.finish()?;
        Ok(sig)
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The bytes were not a well-formed encoding.
    #[error("malformed encoding: {0}")]
    Decode(#[from] DecodeError),
    /// The signature's LMS type differs from the public key's.
    #[error("signature LMS type {found:?} does not match the key's {expected:?}")]
    LmsTypeMismatch {
        /// Key's type.
        expected: LmsType,
        /// Signature's type.
        found: LmsType,
    },
    /// The signature's LM-OTS type differs from the public key's.
    #[error("signature LM-OTS type {found:?} does not match the key's {expected:?}")]
    LmotsTypeMismatch {
        /// Key's type.
        expected: LmotsType,
        /// Signature's type.
        found: LmotsType,
    },
    /// Structurally invalid (path length, leaf index) for the key.
    #[error("signature shape invalid for this key: {0}")]
    Shape(&'static str),
    /// Well-formed, but the computed root differs from the public key's.
    #[error("signature does not verify under this public key")]
    Mismatch,
}

/// Why a signature could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    /// The leaf index is outside the tree.
    #[error("leaf index {q} out of range for a tree of height {height}")]
    LeafOutOfRange {
        /// Leaf index.
        q: u32,
        /// Tree height.
        height: u32,
    },
    /// The authentication path has the wrong number of nodes.
    #[error("authentication path has {found} nodes, tree height is {height}")]
    PathLength {
        /// Nodes given.
        found: usize,
        /// Tree height.
        height: u32,
    },
    /// The signature did not verify against the expected leaf or root: the seed or the
    /// path does not belong to this key.
    #[error("the produced signature does not verify: wrong leaf seed or authentication path")]
    WrongKeyMaterial,
}

/// Signs `message` with leaf `q` of the tree `(lms_type, ots_type, id)`, given the leaf's seed
/// and its full authentication path (`h` sibling nodes, leaf level first). The randomizer is
/// [`lmots::derive_randomizer`]. The caller is responsible for never signing twice with one `q`.
pub fn sign(
    lms_type: LmsType,
    ots_type: LmotsType,
    id: &Identifier,
    q: u32,
    seed: &LeafSeed,
    message: &[u8],
    path: Vec<HashValue>,
) -> Result<LmsSignature, SignError> {
    let h = lms_type.height();
    if u64::from(q) >= lms_type.leaves() {
        return Err(SignError::LeafOutOfRange { q, height: h });
    }
    if path.len() != h as usize {
        return Err(SignError::PathLength {
            found: path.len(),
            height: h,
        });
    }
    let ots = lmots::sign(ots_type, id, q, seed, message);
    Ok(LmsSignature {
        q,
        ots,
        lms_type,
        path,
    })
}

/// RFC 8554 Algorithm 6a: verifies `signature` on `message` under `public_key`.
pub fn verify(
    public_key: &LmsPublicKey,
    message: &[u8],
    signature: &LmsSignature,
) -> Result<(), VerifyError> {
    let root = candidate_root(public_key, message, signature)?;
    if bool::from(root.ct_eq(&public_key.root)) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Decodes both (one-level HSS encodings) and verifies: the light-client entry point.
pub fn verify_hss_bytes(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let pk = LmsPublicKey::decode_hss(public_key)?;
    let sig = LmsSignature::decode_hss(signature)?;
    verify(&pk, message, &sig)
}

/// The root `T[1]` that `signature` implies (RFC 8554 Algorithm 6a, steps up to the compare).
pub fn candidate_root(
    public_key: &LmsPublicKey,
    message: &[u8],
    signature: &LmsSignature,
) -> Result<HashValue, VerifyError> {
    if signature.lms_type != public_key.lms_type {
        return Err(VerifyError::LmsTypeMismatch {
            expected: public_key.lms_type,
            found: signature.lms_type,
        });
    }
    if signature.ots.ots_type != public_key.ots_type {
        return Err(VerifyError::LmotsTypeMismatch {
            expected: public_key.ots_type,
            found: signature.ots.ots_type,
        });
    }
    let h = public_key.lms_type.height();
    if u64::from(signature.q) >= public_key.lms_type.leaves() {
        return Err(VerifyError::Shape("leaf index out of range"));
    }
    if signature.path.len() != h as usize {
        return Err(VerifyError::Shape(
            "authentication path length differs from h",
        ));
    }
    let kc = lmots::candidate_public_key(
        public_key.ots_type,
        &public_key.id,
        signature.q,
        &signature.ots,
        message,
    )
    .ok_or(VerifyError::Shape("LM-OTS signature length"))?;
    let r = (1u32 << h) + signature.q;
    Ok(root_from_leaf(
        &public_key.id,
        r,
        &leaf_hash(&public_key.id, r, &kc),
        &signature.path,
    ))
}

/// Hashes up from node `r` (value `node`) along `path` to the root `T[1]`.
pub fn root_from_leaf(id: &Identifier, r: u32, node: &HashValue, path: &[HashValue]) -> HashValue {
    let mut r = r;
    let mut tmp = *node;
    for sib in path {
        tmp = if r & 1 == 1 {
            interior_hash(id, r / 2, sib, &tmp)
        } else {
            interior_hash(id, r / 2, &tmp, sib)
        };
        r /= 2;
    }
    tmp
}

/// `T[r] = H(I || u32str(r) || u16str(D_LEAF) || K)` for a leaf node `r = 2^h + q`.
pub fn leaf_hash(id: &Identifier, r: u32, k: &HashValue) -> HashValue {
    let mut b = [Block::default(); 1];
    lay_padding(&mut b, 22 + N);
    put(&mut b, 0, id);
    put(&mut b, ID_LEN, &r.to_be_bytes());
    put(&mut b, 20, &D_LEAF.to_be_bytes());
    put(&mut b, 22, k);
    digest_blocks(&b)
}

/// `T[r] = H(I || u32str(r) || u16str(D_INTR) || T[2r] || T[2r+1])` for an interior node.
pub fn interior_hash(id: &Identifier, r: u32, left: &HashValue, right: &HashValue) -> HashValue {
    const LEN: usize = 22 + 2 * N;
    let mut b = [Block::default(); blocks_for(LEN)];
    lay_padding(&mut b, LEN);
    put(&mut b, 0, id);
    put(&mut b, ID_LEN, &r.to_be_bytes());
    put(&mut b, 20, &D_INTR.to_be_bytes());
    put(&mut b, 22, left);
    put(&mut b, 22 + N, right);
    digest_blocks(&b)
}

/// A general HSS public key (RFC 8554 section 6.1): level count and the top LMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HssPublicKey {
    /// Number of levels `L` (1..=8).
    pub levels: u32,
    /// The top-level LMS public key.
    pub top: LmsPublicKey,
}

impl HssPublicKey {
    /// Strict decode of `u32str(L) || LMS public key`, `1 <= L <= 8`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "HSS public key");
        let levels = r.u32()?;
        if !(1..=8).contains(&levels) {
            return Err(DecodeError::UnsupportedLevels {
                found: levels,
                min: 1,
                max: 8,
            });
        }
        let top = LmsPublicKey::read(&mut r)?;
        r.finish()?;
        Ok(HssPublicKey { levels, top })
    }
}

/// Verifies a multi-level HSS signature (RFC 8554 Algorithm 6): each level's LMS signature
/// signs the next level's encoded public key, the last one signs `message`. seedfed itself
/// publishes one-level keys; this exists so the RFC's two-level test vectors can be checked.
pub fn verify_hss_multilevel(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let hpk = HssPublicKey::decode(public_key)?;
    let mut r = Reader::new(signature, "HSS signature");
    let nspk = r.u32()?;
    if nspk != hpk.levels - 1 {
        return Err(DecodeError::WrongSignedKeyCount {
            found: nspk,
            expected: hpk.levels - 1,
        }
        .into());
    }
    let mut key = hpk.top;
    for _ in 0..nspk {
        let sig = LmsSignature::read(&mut r)?;
        let next = LmsPublicKey::read(&mut r)?;
        verify(&key, &next.encode(), &sig)?;
        key = next;
    }
    let sig = LmsSignature::read(&mut r)?;
    r.finish()?;
    verify(&key, message, &sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_tree(
        lms_type: LmsType,
        ots_type: LmotsType,
        id: &Identifier,
    ) -> (Vec<HashValue>, Vec<LeafSeed>) {
        let h = lms_type.height();
        let n = 1usize << h;
        let seeds: Vec<LeafSeed> = (0..n)
            .map(|q| LeafSeed::from_bytes([q as u8 ^ 0x5a; 32]))
            .collect();
        let mut t = vec![[0u8; 32]; 2 * n];
        for q in 0..n {
            let k = lmots::leaf_public_key(ots_type, id, q as u32, &seeds[q]);
            t[n + q] = leaf_hash(id, (n + q) as u32, &k);
        }
        for r in (1..n).rev() {
            t[r] = interior_hash(id, r as u32, &t[2 * r], &t[2 * r + 1]);
        }
        (t, seeds)
    }

    fn path(t: &[HashValue], h: u32, q: u32) -> Vec<HashValue> {
        let mut r = (1usize << h) + q as usize;
        let mut out = Vec::new();
        while r > 1 {
            out.push(t[r ^ 1]);
            r /= 2;
        }
        out
    }

    #[test]
    fn sign_verify_roundtrip_h5() {
        let id = [3u8; 16];
        let (t, seeds) = small_tree(LmsType::H5, LmotsType::W8, &id);
        let pk = LmsPublicKey {
            lms_type: LmsType::H5,
            ots_type: LmotsType::W8,
            id,
            root: t[1],
        };
        for q in [0u32, 1, 17, 31] {
            let sig = sign(
                LmsType::H5,
                LmotsType::W8,
                &id,
                q,
                &seeds[q as usize],
                b"msg",
                path(&t, 5, q),
            )
            .unwrap();
            assert_eq!(pk.verify(b"msg", &sig), Ok(()));
            assert_eq!(pk.verify(b"msh", &sig), Err(VerifyError::Mismatch));
            let enc = sig.encode_hss();
            assert_eq!(verify_hss_bytes(&pk.encode_hss(), b"msg", &enc), Ok(()));
            assert_eq!(LmsSignature::decode(&sig.encode()).unwrap(), sig);
            // A signature for leaf q claimed for another leaf fails.
            let mut moved = sig.clone();
            moved.q ^= 1;
            assert_eq!(pk.verify(b"msg", &moved), Err(VerifyError::Mismatch));
        }
    }

    #[test]
    fn sign_rejects_bad_inputs() {
        let id = [0u8; 16];
        let seed = LeafSeed::from_bytes([0; 32]);
        let e = sign(
            LmsType::H5,
            LmotsType::W8,
            &id,
            32,
            &seed,
            b"",
            vec![[0; 32]; 5],
        );
        assert_eq!(e, Err(SignError::LeafOutOfRange { q: 32, height: 5 }));
        let e = sign(
            LmsType::H5,
            LmotsType::W8,
            &id,
            3,
            &seed,
            b"",
            vec![[0; 32]; 4],
        );
        assert_eq!(
            e,
            Err(SignError::PathLength {
                found: 4,
                height: 5
            })
        );
    }

    #[test]
    fn type_codes_match_rfc() {
        let codes: Vec<u32> = LmsType::ALL.iter().map(|t| t.typecode()).collect();
        assert_eq!(codes, vec![5, 6, 7, 8, 9]);
        for t in LmsType::ALL {
            assert_eq!(LmsType::from_typecode(t.typecode()), Ok(t));
            assert_eq!(LmsType::from_height(t.height()), Some(t));
        }
        assert_eq!(
            LmsType::from_typecode(4),
            Err(DecodeError::UnknownLmsType(4))
        );
        assert_eq!(LmsType::from_height(7), None);
    }
}
