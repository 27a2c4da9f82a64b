//! Light-client verification: pure functions that need only the chain id, epoch 0's checkpoint
//! key and the bytes a possibly hostile server hands over.
//!
//! [`Trusted`] is what a client keeps: the chain id, the sequence number of the next checkpoint
//! it expects, the Ed25519 key that must sign it, and the latest master LMS key it has seen.
//! [`Trusted::walk`] verifies a list of checkpoints link by link (each of this chain, numbered
//! exactly one more than the last, signed under `verify_strict` by the key in force, whose
//! `next_key` becomes the key in force) and advances only if every link holds;
//! [`Trusted::verify_signature`] accepts an LMS signature only under a master key a verified
//! checkpoint named — the latest one, or an earlier key (with another identifier `I`) that a
//! key rotation replaced, since the federation still allocates that key's last leaves while
//! the next key is in force: same LMS and LM-OTS type codes, same
//! identifier `I`, same root `T[1]` — and never at a leaf the key-generation audit retired: those
//! one-time keys were rebuilt in public, so anyone can sign at them. The checkpoint commits to
//! the retired set's digest; the client checks the list it is handed against it
//! ([`Trusted::accept_retired`]) and refuses a signature at a retired leaf `q`
//! ([`LightClientError::RetiredLeaf`]), or any signature while it holds no checked list.
//! [`verify_checkpoint`] checks one checkpoint under a given key. Every rejection has its own
//! error variant. Design and threat model: `docs/light-client.md`.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::checkpoint::{Checkpoint, CheckpointError, MasterKey};
use crate::lms::{self, LmsPublicKey, LmsSignature, VerifyError};
use crate::retired::{RetiredError, RetiredLeaves};

/// A field of the RFC 8554 LMS public key, naming which one differs from the checkpoint's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyField {
    /// The LMS type code (tree height).
    LmsType,
    /// The LM-OTS type code (Winternitz parameter).
    LmotsType,
    /// The tree identifier `I`.
    Id,
    /// The root `T[1]`.
    Root,
}

impl std::fmt::Display for KeyField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyField::LmsType => "LMS type code",
            KeyField::LmotsType => "LM-OTS type code",
            KeyField::Id => "identifier I",
            KeyField::Root => "root T[1]",
        })
    }
}

/// Why a light client rejected what it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightClientError {
    /// The group key given (`genesis_group_key`, the anchor) is not a valid Ed25519 public key.
    #[error("group key is not a valid Ed25519 key")]
    BadGroupKey,
    /// The checkpoint bytes do not decode.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint is for another chain.
    #[error("checkpoint is for another chain")]
    WrongChain,
    /// The checkpoint signature is not 64 bytes.
    #[error("checkpoint signature has length {0}, expected 64")]
    SignatureLength(usize),
    /// The group's signature on the checkpoint does not verify under the key in force (forged,
    /// or signed by another key).
    #[error("checkpoint signature does not verify under the key in force")]
    BadCheckpointSignature,
    /// The signature verifies, but under the key that the last rotation retired: after a
    /// rotation only the new key signs.
    #[error("checkpoint {seq} is signed by the key retired at the last rotation")]
    SignedByRetiredKey {
        /// The checkpoint's sequence number.
        seq: u64,
    },
    /// The checkpoint's sequence number is below the one expected: replayed, or already
    /// verified.
    #[error("checkpoint {got} is stale: expected {expected} (replayed or already verified)")]
    Stale {
        /// The sequence number expected.
        expected: u64,
        /// The checkpoint's.
        got: u64,
    },
    /// The checkpoint's sequence number is above the one expected and the expected one comes
    /// later in the list.
    #[error("checkpoint {got} comes before {expected}: the list is out of order")]
    Reordered {
        /// The sequence number expected.
        expected: u64,
        /// The checkpoint's.
        got: u64,
    },
    /// The checkpoint's sequence number is above the one expected and the expected one is not
    /// in the list: checkpoints were left out.
    #[error("checkpoint {got} skips ahead: checkpoint {expected} is missing")]
    Gap {
        /// The sequence number expected.
        expected: u64,
        /// The checkpoint's.
        got: u64,
    },
    /// A correctly signed checkpoint names a next key that is not a valid Ed25519 key.
    #[error("checkpoint {seq} names a next key that is not a valid Ed25519 key")]
    BadNextKey {
        /// The checkpoint's sequence number.
        seq: u64,
    },
    /// The checkpoint was made before the master root was final: it vouches for no LMS key.
    #[error("checkpoint carries no master key (made before the master root was final)")]
    NoMasterKey,
    /// A field of the LMS public key differs from the checkpoint's master key (the first that
    /// differs, in encoding order).
    #[error("LMS public key's {0} differs from the checkpoint's master key")]
    KeyMismatch(KeyField),
    /// The LMS public key or signature is malformed or does not verify.
    #[error("LMS signature rejected: {0}")]
    Lms(#[from] VerifyError),
    /// The signature is at a leaf the key-generation audit retired: its seed was rebuilt in
    /// public, so anyone can produce a signature there that verifies under the master key.
    #[error(
        "signature is at leaf {q}, which the key-generation audit retired: its one-time key is \
         public, so the signature proves nothing"
    )]
    RetiredLeaf {
        /// The signature's leaf index.
        q: u32,
    },
    /// No checked list of retired leaves for the master key in force: without it a signature at
    /// a retired leaf (a forgery) cannot be told from an honest one.
    #[error(
        "no verified list of the leaves the audit retired for the master key in force \
         (supply the list the checkpoint commits to)"
    )]
    RetiredUnknown,
    /// The list of retired leaves given does not hash to the digest the checkpoint commits to.
    #[error(
        "the list of {len} retired leaves does not match the digest the checkpoint commits to"
    )]
    RetiredMismatch {
        /// How many leaves the refused list names.
        len: usize,
    },
    /// The list of retired leaves is not a canonical set.
    #[error(transparent)]
    Retired(#[from] RetiredError),
}

/// Verifies a checkpoint of chain `chain_id` signed by `genesis_group_key` and returns it. The
/// key is the one the client trusts for this checkpoint; to follow rotations from epoch 0's key,
/// use [`Trusted::walk`], which also checks the sequence numbers.
pub fn verify_checkpoint(
    genesis_group_key: &[u8; 32],
    chain_id: &[u8; 32],
    checkpoint: &[u8],
    signature: &[u8],
) -> Result<Checkpoint, LightClientError> {
    let key =
        VerifyingKey::from_bytes(genesis_group_key).map_err(|_| LightClientError::BadGroupKey)?;
    let decoded = Checkpoint::from_bytes(checkpoint)?;
    if decoded.chain_id != *chain_id {
        return Err(LightClientError::WrongChain);
    }
    check_signature(&key, checkpoint, signature)?;
    Ok(decoded)
}

/// `verify_strict` of a 64-byte signature over exactly `message`.
fn check_signature(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), LightClientError> {
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| LightClientError::SignatureLength(signature.len()))?;
    key.verify_strict(message, &Signature::from_bytes(&signature))
        .map_err(|_| LightClientError::BadCheckpointSignature)
}

/// What a light client trusts after verifying checkpoints `0..next_seq`, and keeps between
/// runs so that the next walk starts from here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trusted {
    /// The chain id's 32-byte form (`ledger::chain_digest` of the genesis `chain_id`).
    pub chain_id: [u8; 32],
    /// The sequence number of the next checkpoint (0 before any is verified).
    pub next_seq: u64,
    /// The Ed25519 key that signs checkpoint `next_seq`: epoch 0's DKG key at the start, then
    /// the `next_key` of the last verified checkpoint.
    pub key: [u8; 32],
    /// The key the last rotation retired (only to name [`LightClientError::SignedByRetiredKey`];
    /// never trusted).
    pub retired_key: Option<[u8; 32]>,
    /// The master LMS key of the latest verified checkpoint that carries one.
    pub master_key: Option<MasterKey>,
    /// The retired-leaves digest that checkpoint commits to (zeros while `master_key` is
    /// `None`).
    #[serde(default)]
    pub retired_digest: [u8; 32],
    /// The retired leaves, once a list matching `retired_digest` was given
    /// ([`accept_retired`](Self::accept_retired)); reset when a checkpoint with another key or
    /// digest is verified. [`verify_signature`](Self::verify_signature) needs it.
    #[serde(default)]
    pub retired: Option<RetiredLeaves>,
    /// Master keys named by earlier verified checkpoints and replaced by a key with another
    /// identifier (key rotation), oldest first: signatures under them still verify.
    #[serde(default)]
    pub earlier_keys: Vec<TrustedKey>,
    /// Epoch and height of the last verified checkpoint (0 before any).
    pub epoch: u64,
    /// See `epoch`.
    pub height: u64,
}

/// A master key an earlier verified checkpoint named, with its retired leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// The key.
    pub master_key: MasterKey,
    /// The retired-leaves digest its checkpoints commit to.
    pub retired_digest: [u8; 32],
    /// The retired leaves, once a list matching `retired_digest` was given.
    pub retired: Option<RetiredLeaves>,
}

/// A walk stopped at the checkpoint at `position` (0-based) in the list given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint #{position} of the list: {error}")]
pub struct WalkError {
    /// Index in the list given to [`Trusted::walk`].
    pub position: usize,
    /// Why it was rejected.
    pub error: LightClientError,
}

impl Trusted {
    /// The start of a walk: nothing verified yet, checkpoint 0 must be signed by `epoch0_key`
    /// (epoch 0's Ed25519 DKG key, which the ledger makes the first checkpoint key).
    pub fn new(chain_id: [u8; 32], epoch0_key: [u8; 32]) -> Result<Self, LightClientError> {
        VerifyingKey::from_bytes(&epoch0_key).map_err(|_| LightClientError::BadGroupKey)?;
        Ok(Trusted {
            chain_id,
            next_seq: 0,
            key: epoch0_key,
            retired_key: None,
            master_key: None,
            retired_digest: [0; 32],
            retired: None,
            earlier_keys: Vec::new(),
            epoch: 0,
            height: 0,
        })
    }

    /// Verifies one link: checkpoint `next_seq` of this chain, signed by the key in force.
    /// On success adopts its `next_key` (recording a rotation) and master key, and returns it;
    /// on error nothing changes.
    pub fn advance(
        &mut self,
        checkpoint: &[u8],
        signature: &[u8],
    ) -> Result<Checkpoint, LightClientError> {
        let cp = Checkpoint::from_bytes(checkpoint)?;
        if cp.chain_id != self.chain_id {
            return Err(LightClientError::WrongChain);
        }
        let expected = self.next_seq;
        if cp.seq < expected {
            return Err(LightClientError::Stale {
                expected,
                got: cp.seq,
            });
        }
        if cp.seq > expected {
            return Err(LightClientError::Gap {
                expected,
                got: cp.seq,
            });
        }
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| LightClientError::BadGroupKey)?;
        if let Err(e) = check_signature(&key, checkpoint, signature) {
            let retired = self
                .retired_key
                .and_then(|k| VerifyingKey::from_bytes(&k).ok())
                .is_some_and(|k| check_signature(&k, checkpoint, signature).is_ok());
            return Err(if retired {
                LightClientError::SignedByRetiredKey { seq: cp.seq }
            } else {
                e
            });
        }
        VerifyingKey::from_bytes(&cp.next_key)
            .map_err(|_| LightClientError::BadNextKey { seq: cp.seq })?;
        if cp.next_key != self.key {
            self.retired_key = Some(self.key);
            self.key = cp.next_key;
        }
        if !cp.master_key.is_none() {
            if let Some(old) = self.master_key.filter(|k| k.id != cp.master_key.id) {
                // A rotation: the replaced key stays trusted for its last leaves.
                self.earlier_keys.retain(|k| k.master_key.id != old.id);
                self.earlier_keys.push(TrustedKey {
                    master_key: old,
                    retired_digest: self.retired_digest,
                    retired: self.retired.take(),
                });
            }
            let same =
                self.master_key == Some(cp.master_key) && self.retired_digest == cp.retired_digest;
            if !same {
                self.retired = None;
            }
            self.master_key = Some(cp.master_key);
            self.retired_digest = cp.retired_digest;
        }
        self.next_seq = cp.seq.saturating_add(1);
        self.epoch = cp.epoch;
        self.height = cp.height;
        Ok(cp)
    }

    /// Verifies `links` (checkpoint bytes, signature) in order with [`advance`](Self::advance)
    /// and returns the checkpoints. All or nothing: if any link fails, `self` is unchanged and
    /// the error names its position. A checkpoint numbered above the expected one is
    /// `Reordered` if the expected one comes later in the list, else `Gap`.
    pub fn walk<'a, I>(&mut self, links: I) -> Result<Vec<Checkpoint>, WalkError>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let links: Vec<(&[u8], &[u8])> = links.into_iter().collect();
        let mut next = self.clone();
        let mut out = Vec::with_capacity(links.len());
        for (position, (checkpoint, signature)) in links.iter().enumerate() {
            match next.advance(checkpoint, signature) {
                Ok(cp) => out.push(cp),
                Err(LightClientError::Gap { expected, got }) => {
                    let later = links[position + 1..]
                        .iter()
                        .any(|(c, _)| Checkpoint::from_bytes(c).is_ok_and(|c| c.seq == expected));
                    let error = if later {
                        LightClientError::Reordered { expected, got }
                    } else {
                        LightClientError::Gap { expected, got }
                    };
                    return Err(WalkError { position, error });
                }
                Err(error) => return Err(WalkError { position, error }),
            }
        }
        *self = next;
        Ok(out)
    }

    /// Adopts `leaves` as the retired leaves of every trusted master key (the one in force
    /// and [`earlier_keys`](Self::earlier_keys)) whose checkpoint commits to their digest:
    /// `NoMasterKey` before any checkpoint carries a key, `Retired(NotSorted)` for a list that
    /// is not strictly increasing, `RetiredMismatch` if no trusted key commits to that set. On
    /// error nothing changes.
    pub fn accept_retired(&mut self, leaves: &[u64]) -> Result<(), LightClientError> {
        if self.master_key.is_none() {
            return Err(LightClientError::NoMasterKey);
        }
        let retired = RetiredLeaves::from_sorted(leaves.to_vec())?;
        let digest = retired.digest();
        let fits = |d: &[u8; 32]| bool::from(digest.ct_eq(d));
        let mut adopted = false;
        if fits(&self.retired_digest) {
            self.retired = Some(retired.clone());
            adopted = true;
        }
        for k in self
            .earlier_keys
            .iter_mut()
            .filter(|k| fits(&k.retired_digest))
        {
            k.retired = Some(retired.clone());
            adopted = true;
        }
        if !adopted {
            return Err(LightClientError::RetiredMismatch { len: retired.len() });
        }
        Ok(())
    }

    /// Whether some trusted master key has no checked list of retired leaves yet.
    pub fn needs_retired(&self) -> bool {
        (self.master_key.is_some() && self.retired.is_none())
            || self.earlier_keys.iter().any(|k| k.retired.is_none())
    }

    /// Verifies an LMS signature (one-level HSS encodings) under a trusted master key: the one
    /// of the latest verified checkpoint that carries one (`NoMasterKey` if none does yet), or
    /// an earlier key with the public key's identifier. Refuses a key that differs from the
    /// trusted one (`KeyMismatch`, against the key in force when no trusted key has that
    /// identifier), a signature at a retired leaf (`RetiredLeaf`), and every signature while no
    /// list matching the key's retired digest was accepted (`RetiredUnknown`).
    pub fn verify_signature(
        &self,
        lms_public_key_hss: &[u8],
        message: &[u8],
        lms_signature_hss: &[u8],
    ) -> Result<(), LightClientError> {
        let in_force = self.master_key.ok_or(LightClientError::NoMasterKey)?;
        let pk = LmsPublicKey::decode_hss(lms_public_key_hss).map_err(VerifyError::from)?;
        let (master_key, retired) = match self
            .earlier_keys
            .iter()
            .find(|k| k.master_key.id == pk.id && in_force.id != pk.id)
        {
            Some(k) => (k.master_key, k.retired.as_ref()),
            None => (in_force, self.retired.as_ref()),
        };
        check_key(&master_key, &pk)?;
        let retired = retired.ok_or(LightClientError::RetiredUnknown)?;
        verify_unretired(lms_public_key_hss, retired, message, lms_signature_hss)
    }

    /// Verifies an LMS signature (one-level HSS encoding; it does not name its key) under
    /// whichever trusted master key it verifies under: the key in force first, then the keys
    /// a rotation replaced, newest first. Returns that key; if none verifies it, the error of
    /// the key in force (`NoMasterKey` before any checkpoint carries one).
    pub fn verify_under_any(
        &self,
        message: &[u8],
        lms_signature_hss: &[u8],
    ) -> Result<MasterKey, LightClientError> {
        let in_force = self.master_key.ok_or(LightClientError::NoMasterKey)?;
        let earlier = self.earlier_keys.iter().rev().map(|k| k.master_key);
        let mut first_error = None;
        for key in std::iter::once(in_force).chain(earlier) {
            match self.verify_signature(&key.encode_hss()?, message, lms_signature_hss) {
                Ok(()) => return Ok(key),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(LightClientError::NoMasterKey))
    }
}

/// Verifies an LMS signature (one-level HSS encodings) on `message` under a public key that must
/// be exactly `checkpoint.master_key` (see [`check_key`]), with `retired` the leaves the
/// checkpoint's digest commits to (`RetiredMismatch` otherwise) and the signature's leaf not
/// among them (`RetiredLeaf`).
pub fn verify_signature(
    checkpoint: &Checkpoint,
    retired: &RetiredLeaves,
    lms_public_key_hss: &[u8],
    message: &[u8],
    lms_signature_hss: &[u8],
) -> Result<(), LightClientError> {
    let pk = LmsPublicKey::decode_hss(lms_public_key_hss).map_err(VerifyError::from)?;
    check_key(&checkpoint.master_key, &pk)?;
    if !bool::from(retired.digest().ct_eq(&checkpoint.retired_digest)) {
        return Err(LightClientError::RetiredMismatch { len: retired.len() });
    }
    verify_unretired(lms_public_key_hss, retired, message, lms_signature_hss)
}

/// Verifies an LMS signature (one-level HSS encodings) under the given key, refusing it first if
/// its leaf `q` is in `retired` (`RetiredLeaf`). The key and the list are the caller's to trust
/// (`seedfed verify --pubkey` with `--retired`): this is RFC 8554 verification plus the one
/// check a plain RFC 8554 verifier cannot make.
pub fn verify_unretired(
    lms_public_key_hss: &[u8],
    retired: &RetiredLeaves,
    message: &[u8],
    lms_signature_hss: &[u8],
) -> Result<(), LightClientError> {
    let sig = LmsSignature::decode_hss(lms_signature_hss).map_err(VerifyError::from)?;
    if retired.contains(u64::from(sig.q)) {
        return Err(LightClientError::RetiredLeaf { q: sig.q });
    }
    lms::verify_hss_bytes(lms_public_key_hss, message, lms_signature_hss)?;
    Ok(())
}

/// Checks that `pk` is the master key a checkpoint commits to: `NoMasterKey` if it commits to
/// none yet, else `KeyMismatch` naming the first field (LMS type code, LM-OTS type code, `I`,
/// root) that differs. The root is compared in constant time.
pub fn check_key(master_key: &MasterKey, pk: &LmsPublicKey) -> Result<(), LightClientError> {
    if master_key.is_none() {
        return Err(LightClientError::NoMasterKey);
    }
    if pk.lms_type.typecode() != master_key.lms_type {
        return Err(LightClientError::KeyMismatch(KeyField::LmsType));
    }
    if pk.ots_type.typecode() != master_key.lmots_type {
        return Err(LightClientError::KeyMismatch(KeyField::LmotsType));
    }
    if pk.id != master_key.id {
        return Err(LightClientError::KeyMismatch(KeyField::Id));
    }
    if !bool::from(pk.root.ct_eq(&master_key.root)) {
        return Err(LightClientError::KeyMismatch(KeyField::Root));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{self, tests::sample_checkpoint, CheckpointError};
    use crate::lmots::{self, LeafSeed, LmotsType};
    use crate::lms::{interior_hash, leaf_hash, LmsType};
    use crate::shamir::tests::members;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    const MESSAGE: &[u8] = b"release 1.2.3 sha256 0123abcd";

    /// The leaves of the fixture's tree the "audit" retired: their seeds count as public.
    const RETIRED: [u64; 2] = [4, 21];
    /// The leaf of the honest signature.
    const HONEST_Q: u32 = 13;

    struct Fixture {
        group_key: [u8; 32],
        checkpoint: Vec<u8>,
        signature: [u8; 64],
        lms_key: Vec<u8>,
        lms_signature: Vec<u8>,
        retired: RetiredLeaves,
        /// A forgery: a signature at retired leaf 4 on a message the federation never signed,
        /// made from the leaf's (public) seed alone.
        forged: Vec<u8>,
    }

    const FORGED_MESSAGE: &[u8] = b"release 6.6.6 sha256 evil";

    /// A real federation in miniature: an H5/W4 LMS tree, a 3-of-5 Ed25519 DKG, and a checkpoint
    /// on the tree's root and retired leaves signed by 3 members.
    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let (lms_type, ots_type, id) = (LmsType::H5, LmotsType::W4, [9u8; 16]);
            let n = 32usize;
            let seeds: Vec<LeafSeed> = (0..n)
                .map(|q| LeafSeed::from_bytes([q as u8 ^ 0xa5; 32]))
                .collect();
            let mut t = vec![[0u8; 32]; 2 * n];
            for (q, seed) in seeds.iter().enumerate() {
                let k = lmots::leaf_public_key(ots_type, &id, q as u32, seed);
                t[n + q] = leaf_hash(&id, (n + q) as u32, &k);
            }
            for r in (1..n).rev() {
                t[r] = interior_hash(&id, r as u32, &t[2 * r], &t[2 * r + 1]);
            }
            let sign_at = |q: u32, message: &[u8]| {
                let mut path = Vec::new();
                let mut r = n + q as usize;
                while r > 1 {
                    path.push(t[r ^ 1]);
                    r /= 2;
                }
                lms::sign(
                    lms_type,
                    ots_type,
                    &id,
                    q,
                    &seeds[q as usize],
                    message,
                    path,
                )
                .unwrap()
                .encode_hss()
            };
            let pk = LmsPublicKey {
                lms_type,
                ots_type,
                id,
                root: t[1],
            };
            let retired = RetiredLeaves::new(RETIRED);

            let mut rng = ChaCha20Rng::seed_from_u64(77);
            let ms = members(5, 0x61);
            let (keys, public) = checkpoint::run_dkg_in_memory(&ms, 3, &mut rng).unwrap();
            let mut cp = sample_checkpoint();
            cp.master_key = MasterKey::from(&pk);
            cp.retired_digest = retired.digest();
            let mut nonces = BTreeMap::new();
            let mut commitments = BTreeMap::new();
            for m in &ms[1..4] {
                let (nn, c) = checkpoint::commit(&keys[m], &mut rng);
                nonces.insert(*m, nn);
                commitments.insert(*m, c);
            }
            let package = checkpoint::signing_package(&cp, &commitments).unwrap();
            let shares = ms[1..4]
                .iter()
                .map(|m| {
                    let s = checkpoint::sign(&cp, &package, nonces.remove(m).unwrap(), m, &keys[m])
                        .unwrap();
                    (*m, s)
                })
                .collect();
            let signature = checkpoint::aggregate(&package, &shares, &public).unwrap();
            Fixture {
                group_key: checkpoint::group_key(&public).unwrap(),
                checkpoint: cp.to_bytes().to_vec(),
                signature,
                lms_key: pk.encode_hss(),
                lms_signature: sign_at(HONEST_Q, MESSAGE),
                retired,
                forged: sign_at(RETIRED[0] as u32, FORGED_MESSAGE),
            }
        })
    }

    fn chain() -> [u8; 32] {
        sample_checkpoint().chain_id
    }

    #[test]
    fn honest_checkpoint_and_signature_verify() {
        let f = fixture();
        let cp = verify_checkpoint(&f.group_key, &chain(), &f.checkpoint, &f.signature).unwrap();
        assert_eq!(cp.to_bytes().as_slice(), f.checkpoint.as_slice());
        verify_signature(&cp, &f.retired, &f.lms_key, MESSAGE, &f.lms_signature).unwrap();
    }

    #[test]
    fn wrong_chain_root_and_lengths_are_rejected() {
        let f = fixture();
        let mut other = chain();
        other[31] ^= 1;
        assert_eq!(
            verify_checkpoint(&f.group_key, &other, &f.checkpoint, &f.signature).unwrap_err(),
            LightClientError::WrongChain
        );
        assert_eq!(
            verify_checkpoint(&f.group_key, &chain(), &f.checkpoint, &f.signature[..63])
                .unwrap_err(),
            LightClientError::SignatureLength(63)
        );
        // A checkpoint with another master root (even if it were signed) rejects the LMS key.
        let mut cp = Checkpoint::from_bytes(&f.checkpoint).unwrap();
        cp.master_key.root[0] ^= 1;
        assert_eq!(
            verify_signature(&cp, &f.retired, &f.lms_key, MESSAGE, &f.lms_signature).unwrap_err(),
            LightClientError::KeyMismatch(KeyField::Root)
        );
        // A key that is not an Ed25519 point (the first y that does not decompress).
        let bad = (0u8..=255)
            .map(|b| [b; 32])
            .find(|k| {
                curve25519_dalek::edwards::CompressedEdwardsY(*k)
                    .decompress()
                    .is_none()
            })
            .unwrap();
        assert_eq!(
            verify_checkpoint(&bad, &chain(), &f.checkpoint, &f.signature).unwrap_err(),
            LightClientError::BadGroupKey
        );
        // Another group's key (a valid point) does not verify the signature.
        let (_, public) =
            checkpoint::run_dkg_in_memory(&members(3, 0x62), 2, &mut ChaCha20Rng::seed_from_u64(5))
                .unwrap();
        let other_key = checkpoint::group_key(&public).unwrap();
        assert_eq!(
            verify_checkpoint(&other_key, &chain(), &f.checkpoint, &f.signature).unwrap_err(),
            LightClientError::BadCheckpointSignature
        );
    }

    #[test]
    fn the_checkpoint_key_is_what_seedfed_pub_holds() {
        let f = fixture();
        let cp = verify_checkpoint(&f.group_key, &chain(), &f.checkpoint, &f.signature).unwrap();
        assert_eq!(cp.master_key.encode_hss().unwrap(), f.lms_key);
    }

    /// A public key with the checkpoint's root but another type code or identifier is refused,
    /// naming the field, before any signature check.
    #[test]
    fn same_root_with_other_type_codes_or_identifier_is_rejected() {
        let f = fixture();
        let cp = Checkpoint::from_bytes(&f.checkpoint).unwrap();
        let pk = LmsPublicKey::decode_hss(&f.lms_key).unwrap();
        let variants = [
            (
                LmsPublicKey {
                    lms_type: LmsType::H10,
                    ..pk.clone()
                },
                KeyField::LmsType,
            ),
            (
                LmsPublicKey {
                    ots_type: LmotsType::W8,
                    ..pk.clone()
                },
                KeyField::LmotsType,
            ),
            (
                LmsPublicKey {
                    id: [8u8; 16],
                    ..pk.clone()
                },
                KeyField::Id,
            ),
        ];
        for (other, field) in variants {
            assert_eq!(other.root, cp.master_key.root);
            assert_eq!(
                verify_signature(
                    &cp,
                    &f.retired,
                    &other.encode_hss(),
                    MESSAGE,
                    &f.lms_signature
                )
                .unwrap_err(),
                LightClientError::KeyMismatch(field)
            );
        }
        // Symmetrically: a checkpoint committing to another type code or I refuses the real key.
        let mk = cp.master_key;
        let mut id = mk.id;
        id[0] ^= 0x80;
        let changes = [
            (
                MasterKey {
                    lms_type: LmsType::H15.typecode(),
                    ..mk
                },
                KeyField::LmsType,
            ),
            (
                MasterKey {
                    lmots_type: LmotsType::W2.typecode(),
                    ..mk
                },
                KeyField::LmotsType,
            ),
            (MasterKey { id, ..mk }, KeyField::Id),
        ];
        for (master_key, field) in changes {
            let other = Checkpoint { master_key, ..cp };
            assert_eq!(
                verify_signature(&other, &f.retired, &f.lms_key, MESSAGE, &f.lms_signature)
                    .unwrap_err(),
                LightClientError::KeyMismatch(field)
            );
        }
        assert_eq!(
            LightClientError::KeyMismatch(KeyField::Id).to_string(),
            "LMS public key's identifier I differs from the checkpoint's master key"
        );
    }

    #[test]
    fn a_checkpoint_before_the_master_key_vouches_for_no_key() {
        let f = fixture();
        let mut cp = Checkpoint::from_bytes(&f.checkpoint).unwrap();
        cp.master_key = MasterKey::NONE;
        assert_eq!(
            verify_signature(&cp, &f.retired, &f.lms_key, MESSAGE, &f.lms_signature).unwrap_err(),
            LightClientError::NoMasterKey
        );
    }

    // ---- The chain walk ----

    /// Ordinary Ed25519 keys stand in for the DKG keys: a FROST aggregate is an RFC 8032
    /// signature (the fixture above checks that), and these are fast and deterministic.
    fn sk(i: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[i; 32])
    }

    fn vk(i: u8) -> [u8; 32] {
        sk(i).verifying_key().to_bytes()
    }

    type Link = (Vec<u8>, Vec<u8>);

    fn link(cp: &Checkpoint, signer: u8) -> Link {
        use ed25519_dalek::Signer;
        let bytes = cp.to_bytes().to_vec();
        let sig = sk(signer).sign(&bytes).to_bytes().to_vec();
        (bytes, sig)
    }

    fn cp(seq: u64, next: u8, master: bool) -> Checkpoint {
        let pk = LmsPublicKey::decode_hss(&fixture().lms_key).unwrap();
        Checkpoint {
            chain_id: chain(),
            seq,
            epoch: seq / 2 + 1,
            height: 100 * (seq + 1),
            master_key: if master {
                MasterKey::from(&pk)
            } else {
                MasterKey::NONE
            },
            next_key: vk(next),
            validator_set_hash: [seq as u8; 32],
            retired_digest: if master {
                fixture().retired.digest()
            } else {
                [0; 32]
            },
        }
    }

    /// Keys 0, 1, 2 in force in turn: 0 signs seq 0 and the rotation seq 1 (next: 1); 1 signs
    /// seq 2 (the first with the master key) and the rotation seq 3 (next: 2); 2 signs seq 4.
    fn honest_chain() -> Vec<Link> {
        vec![
            link(&cp(0, 0, false), 0),
            link(&cp(1, 1, false), 0),
            link(&cp(2, 1, true), 1),
            link(&cp(3, 2, true), 1),
            link(&cp(4, 2, true), 2),
        ]
    }

    fn walk(t: &mut Trusted, links: &[Link]) -> Result<Vec<Checkpoint>, WalkError> {
        t.walk(links.iter().map(|(c, s)| (c.as_slice(), s.as_slice())))
    }

    fn start() -> Trusted {
        Trusted::new(chain(), vk(0)).unwrap()
    }

    /// Walks `links` from the start and returns the error, checking the cache did not move.
    fn rejected(links: &[Link]) -> WalkError {
        let mut t = start();
        let err = walk(&mut t, links).unwrap_err();
        assert_eq!(t, start(), "a failed walk leaves the cache unchanged");
        err
    }

    fn at(position: usize, error: LightClientError) -> WalkError {
        WalkError { position, error }
    }

    #[test]
    fn walk_follows_two_rotations_from_epoch_0s_key() {
        let f = fixture();
        let mut t = start();
        let cps = walk(&mut t, &honest_chain()).unwrap();
        assert_eq!(
            cps.iter().map(|c| c.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(t.next_seq, 5);
        assert_eq!(t.key, vk(2));
        assert_eq!(t.retired_key, Some(vk(1)));
        assert_eq!((t.epoch, t.height), (3, 500));
        assert_eq!(t.master_key, Some(cp(4, 2, true).master_key));
        assert_eq!(t.retired_digest, f.retired.digest());
        t.accept_retired(f.retired.as_slice()).unwrap();
        t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
            .unwrap();
        // A checkpoint key 2 signs extends the chain; key 0 no longer verifies anything.
        let next = link(&cp(5, 2, true), 2);
        let mut t2 = t.clone();
        assert_eq!(t2.advance(&next.0, &next.1).unwrap().seq, 5);
        assert_eq!(
            verify_checkpoint(&vk(0), &chain(), &next.0, &next.1).unwrap_err(),
            LightClientError::BadCheckpointSignature
        );
    }

    #[test]
    fn a_walk_resumes_from_the_cache_and_refuses_what_it_already_verified() {
        let links = honest_chain();
        let mut whole = start();
        walk(&mut whole, &links).unwrap();
        let mut t = start();
        walk(&mut t, &links[..2]).unwrap();
        assert_eq!((t.next_seq, t.key, t.master_key), (2, vk(1), None));
        // The cache survives a round trip through serde (what a client stores between runs).
        let json = serde_json::to_string(&t).unwrap();
        let mut t: Trusted = serde_json::from_str(&json).unwrap();
        walk(&mut t, &links[2..]).unwrap();
        assert_eq!(t, whole);
        // Re-sending verified checkpoints is a replay.
        assert_eq!(
            walk(&mut t, &links[..1]).unwrap_err(),
            at(
                0,
                LightClientError::Stale {
                    expected: 5,
                    got: 0
                }
            )
        );
        // An empty list verifies nothing and changes nothing.
        assert_eq!(walk(&mut t, &[]).unwrap(), vec![]);
        assert_eq!(t, whole);
    }

    #[test]
    fn a_forged_checkpoint_signature_is_rejected() {
        let mut links = honest_chain();
        links[2].1[10] ^= 1;
        assert_eq!(
            rejected(&links),
            at(2, LightClientError::BadCheckpointSignature)
        );
        // The right signature over other content: a master root the group never signed.
        let mut links = honest_chain();
        let mut forged = cp(2, 1, true);
        forged.master_key.root[0] ^= 1;
        links[2].0 = forged.to_bytes().to_vec();
        assert_eq!(
            rejected(&links),
            at(2, LightClientError::BadCheckpointSignature)
        );
        // A truncated signature.
        let mut links = honest_chain();
        links[0].1.pop();
        assert_eq!(
            rejected(&links),
            at(0, LightClientError::SignatureLength(63))
        );
    }

    #[test]
    fn a_checkpoint_of_another_chain_is_rejected() {
        let mut other = cp(0, 0, false);
        other.chain_id[0] ^= 1;
        assert_eq!(
            rejected(&[link(&other, 0)]),
            at(0, LightClientError::WrongChain)
        );
        // A client of another chain rejects this chain's honest checkpoints.
        let mut t = Trusted::new(other.chain_id, vk(0)).unwrap();
        assert_eq!(
            walk(&mut t, &honest_chain()).unwrap_err(),
            at(0, LightClientError::WrongChain)
        );
        // Bytes that are no checkpoint.
        assert_eq!(
            rejected(&[(vec![0; 12], vec![0; 64])]),
            at(
                0,
                LightClientError::Checkpoint(CheckpointError::Decode("wrong length"))
            )
        );
    }

    #[test]
    fn a_checkpoint_signed_by_the_retired_key_after_a_rotation_is_rejected() {
        // After seq 1 rotated to key 1, key 0 (the retired one) signs seq 2.
        let mut links = honest_chain();
        links[2] = link(&cp(2, 1, true), 0);
        assert_eq!(
            rejected(&links),
            at(2, LightClientError::SignedByRetiredKey { seq: 2 })
        );
        // Only the key retired by the last rotation is named; one two rotations back is a
        // wrong key like any other.
        let mut links = honest_chain();
        links[4] = link(&cp(4, 2, true), 0);
        assert_eq!(
            rejected(&links),
            at(4, LightClientError::BadCheckpointSignature)
        );
    }

    #[test]
    fn a_checkpoint_signed_under_another_key_is_rejected() {
        // An outsider's key 9 signs checkpoint 0, and a rotation to itself.
        assert_eq!(
            rejected(&[link(&cp(0, 9, false), 9)]),
            at(0, LightClientError::BadCheckpointSignature)
        );
        let mut links = honest_chain();
        links[1] = link(&cp(1, 9, false), 9);
        assert_eq!(
            rejected(&links),
            at(1, LightClientError::BadCheckpointSignature)
        );
        // Key 1 before key 0 rotated to it.
        let mut links = honest_chain();
        links[1] = link(&cp(1, 1, false), 1);
        assert_eq!(
            rejected(&links),
            at(1, LightClientError::BadCheckpointSignature)
        );
    }

    #[test]
    fn reordered_replayed_and_skipped_checkpoints_are_rejected() {
        let h = honest_chain();
        let pick = |seqs: &[usize]| seqs.iter().map(|&i| h[i].clone()).collect::<Vec<_>>();
        assert_eq!(
            rejected(&pick(&[0, 2, 1])),
            at(
                1,
                LightClientError::Reordered {
                    expected: 1,
                    got: 2
                }
            )
        );
        assert_eq!(
            rejected(&pick(&[0, 1, 1])),
            at(
                2,
                LightClientError::Stale {
                    expected: 2,
                    got: 1
                }
            )
        );
        assert_eq!(
            rejected(&pick(&[0, 1, 0])),
            at(
                2,
                LightClientError::Stale {
                    expected: 2,
                    got: 0
                }
            )
        );
        assert_eq!(
            rejected(&pick(&[0, 1, 3, 4])),
            at(
                2,
                LightClientError::Gap {
                    expected: 2,
                    got: 3
                }
            )
        );
        assert_eq!(
            rejected(&pick(&[1, 2])),
            at(
                0,
                LightClientError::Gap {
                    expected: 0,
                    got: 1
                }
            )
        );
        // Skipping the rotation seq 1 and presenting key 1's checkpoint is a gap, not a key error.
        assert_eq!(
            rejected(&pick(&[0, 2])),
            at(
                1,
                LightClientError::Gap {
                    expected: 1,
                    got: 2
                }
            )
        );
        // A valid signature on a renumbered checkpoint does not exist: renumbering is forgery.
        let mut links = pick(&[0]);
        let mut renumbered = cp(0, 0, false);
        renumbered.seq = 1;
        links.push((renumbered.to_bytes().to_vec(), h[0].1.clone()));
        assert_eq!(
            rejected(&links),
            at(1, LightClientError::BadCheckpointSignature)
        );
    }

    #[test]
    fn a_signed_next_key_that_is_no_point_is_rejected() {
        let bad = (0u8..=255)
            .map(|b| [b; 32])
            .find(|k| {
                curve25519_dalek::edwards::CompressedEdwardsY(*k)
                    .decompress()
                    .is_none()
            })
            .unwrap();
        let mut c = cp(0, 0, false);
        c.next_key = bad;
        assert_eq!(
            rejected(&[link(&c, 0)]),
            at(0, LightClientError::BadNextKey { seq: 0 })
        );
        assert_eq!(
            Trusted::new(chain(), bad).unwrap_err(),
            LightClientError::BadGroupKey
        );
    }

    #[test]
    fn lms_signatures_verify_only_under_the_latest_verified_master_key() {
        let f = fixture();
        // Before any checkpoint carrying the master key, nothing verifies.
        let mut t = start();
        walk(&mut t, &honest_chain()[..2]).unwrap();
        assert_eq!(
            t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::NoMasterKey
        );
        walk(&mut t, &honest_chain()[2..]).unwrap();
        t.accept_retired(f.retired.as_slice()).unwrap();
        t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
            .unwrap();
        // A wrong authentication path: the last 32 bytes are the top sibling of the path.
        let mut sig = f.lms_signature.clone();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert_eq!(
            t.verify_signature(&f.lms_key, MESSAGE, &sig).unwrap_err(),
            LightClientError::Lms(VerifyError::Mismatch)
        );
        // A signature under another LMS key (another root) is refused before any hashing.
        let mut other = LmsPublicKey::decode_hss(&f.lms_key).unwrap();
        other.root[3] ^= 1;
        assert_eq!(
            t.verify_signature(&other.encode_hss(), MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::KeyMismatch(KeyField::Root)
        );
        // Another message.
        assert_eq!(
            t.verify_signature(&f.lms_key, b"release 6.6.6", &f.lms_signature)
                .unwrap_err(),
            LightClientError::Lms(VerifyError::Mismatch)
        );
        // A later checkpoint with a new master key replaces the old one.
        let mut newer = cp(5, 2, true);
        newer.master_key.root[0] ^= 1;
        let l = link(&newer, 2);
        t.advance(&l.0, &l.1).unwrap();
        assert_eq!(
            t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::KeyMismatch(KeyField::Root)
        );
    }

    /// Key rotation: a checkpoint naming a key with another identifier keeps the replaced key
    /// trusted (the federation still allocates its last leaves), with its checked list; the
    /// new key needs its own list; a key no checkpoint named is refused by its identifier.
    #[test]
    fn a_key_replaced_by_rotation_stays_trusted_for_its_signatures() {
        let f = fixture();
        let mut t = start();
        walk(&mut t, &honest_chain()).unwrap();
        t.accept_retired(f.retired.as_slice()).unwrap();
        let mut next = cp(5, 2, true);
        next.master_key.id[0] ^= 1;
        next.master_key.root[0] ^= 1;
        next.retired_digest = RetiredLeaves::new(std::collections::BTreeSet::from([9u64])).digest();
        let l = link(&next, 2);
        t.advance(&l.0, &l.1).unwrap();
        assert_eq!(t.earlier_keys.len(), 1);
        assert!(t.needs_retired());
        // The replaced key's signatures still verify, its retired leaves still refused.
        t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
            .unwrap();
        assert_eq!(
            t.verify_signature(&f.lms_key, FORGED_MESSAGE, &f.forged)
                .unwrap_err(),
            LightClientError::RetiredLeaf { q: 4 }
        );
        // The new key has no list yet; a list no trusted key commits to is refused.
        let mut new_key = LmsPublicKey::decode_hss(&f.lms_key).unwrap();
        new_key.id[0] ^= 1;
        new_key.root[0] ^= 1;
        assert_eq!(
            t.verify_signature(&new_key.encode_hss(), MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::RetiredUnknown
        );
        assert_eq!(
            t.accept_retired(&[8]).unwrap_err(),
            LightClientError::RetiredMismatch { len: 1 }
        );
        t.accept_retired(&[9]).unwrap();
        assert!(!t.needs_retired());
        // Under the new key, the old key's signature does not verify.
        assert_eq!(
            t.verify_signature(&new_key.encode_hss(), MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::Lms(VerifyError::Mismatch)
        );
        // Without naming a key: the replaced key verifies it; a forgery at its retired leaf
        // is refused with the in-force key's reason.
        let replaced = LmsPublicKey::decode_hss(&f.lms_key).unwrap();
        assert_eq!(
            t.verify_under_any(MESSAGE, &f.lms_signature).unwrap(),
            MasterKey::from(&replaced)
        );
        assert_eq!(
            t.verify_under_any(b"release 6.6.6", &f.lms_signature)
                .unwrap_err(),
            LightClientError::Lms(VerifyError::Mismatch)
        );
        // A key with an identifier no checkpoint named is refused as not the key in force.
        let mut unknown = LmsPublicKey::decode_hss(&f.lms_key).unwrap();
        unknown.id[1] ^= 1;
        assert_eq!(
            t.verify_signature(&unknown.encode_hss(), MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::KeyMismatch(KeyField::Id)
        );
        // An older key with the right identifier but another root is refused too.
        let mut forged_old = LmsPublicKey::decode_hss(&f.lms_key).unwrap();
        forged_old.root[5] ^= 1;
        assert_eq!(
            t.verify_signature(&forged_old.encode_hss(), MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::KeyMismatch(KeyField::Root)
        );
    }

    // ---- Retired leaves ----

    /// The forgery this module exists to stop: the audit made leaf 4's seed public, so a
    /// signature at leaf 4 on any message verifies under the master key with a plain RFC 8554
    /// verifier. The client that followed the checkpoints refuses it, and still accepts the
    /// honest signature.
    #[test]
    fn a_signature_at_a_retired_leaf_is_refused_though_rfc_8554_accepts_it() {
        let f = fixture();
        let forged = LmsSignature::decode_hss(&f.forged).unwrap();
        assert_eq!(u64::from(forged.q), RETIRED[0]);
        lms::verify_hss_bytes(&f.lms_key, FORGED_MESSAGE, &f.forged).unwrap();
        let mut t = start();
        walk(&mut t, &honest_chain()).unwrap();
        t.accept_retired(f.retired.as_slice()).unwrap();
        assert_eq!(
            t.verify_signature(&f.lms_key, FORGED_MESSAGE, &f.forged)
                .unwrap_err(),
            LightClientError::RetiredLeaf { q: 4 }
        );
        t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
            .unwrap();
        // The single-checkpoint form and the key-file form refuse it too.
        let cp = verify_checkpoint(&f.group_key, &chain(), &f.checkpoint, &f.signature).unwrap();
        assert_eq!(
            verify_signature(&cp, &f.retired, &f.lms_key, FORGED_MESSAGE, &f.forged).unwrap_err(),
            LightClientError::RetiredLeaf { q: 4 }
        );
        assert_eq!(
            verify_unretired(&f.lms_key, &f.retired, FORGED_MESSAGE, &f.forged).unwrap_err(),
            LightClientError::RetiredLeaf { q: 4 }
        );
        verify_unretired(&f.lms_key, &f.retired, MESSAGE, &f.lms_signature).unwrap();
        assert_eq!(
            LightClientError::RetiredLeaf { q: 4 }.to_string(),
            "signature is at leaf 4, which the key-generation audit retired: its one-time key is \
             public, so the signature proves nothing"
        );
    }

    #[test]
    fn only_the_retired_list_the_checkpoint_commits_to_is_accepted() {
        let f = fixture();
        let mut t = start();
        walk(&mut t, &honest_chain()).unwrap();
        // Without a list nothing verifies, the honest signature neither.
        assert_eq!(
            t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::RetiredUnknown
        );
        // A hostile server's lists: the forged leaf left out, another added, none, unsorted.
        let before = t.clone();
        for (list, error) in [
            (vec![21], LightClientError::RetiredMismatch { len: 1 }),
            (
                vec![4, 13, 21],
                LightClientError::RetiredMismatch { len: 3 },
            ),
            (vec![], LightClientError::RetiredMismatch { len: 0 }),
            (
                vec![21, 4],
                LightClientError::Retired(RetiredError::NotSorted { position: 1 }),
            ),
            (
                vec![4, 4, 21],
                LightClientError::Retired(RetiredError::NotSorted { position: 1 }),
            ),
        ] {
            assert_eq!(t.accept_retired(&list).unwrap_err(), error);
            assert_eq!(t, before, "a refused list changes nothing");
        }
        let cp = Checkpoint::from_bytes(&f.checkpoint).unwrap();
        assert_eq!(
            verify_signature(
                &cp,
                &RetiredLeaves::new([21]),
                &f.lms_key,
                FORGED_MESSAGE,
                &f.forged
            )
            .unwrap_err(),
            LightClientError::RetiredMismatch { len: 1 }
        );
        // Before any checkpoint carries the key there is nothing to check a list against.
        let mut early = start();
        walk(&mut early, &honest_chain()[..2]).unwrap();
        assert_eq!(
            early.accept_retired(f.retired.as_slice()).unwrap_err(),
            LightClientError::NoMasterKey
        );
        // The accepted list is part of the cache and survives a serde round trip.
        t.accept_retired(f.retired.as_slice()).unwrap();
        let t: Trusted = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(t.retired, Some(f.retired.clone()));
        assert_eq!(
            t.verify_signature(&f.lms_key, FORGED_MESSAGE, &f.forged)
                .unwrap_err(),
            LightClientError::RetiredLeaf { q: 4 }
        );
        // A cache without the retired fields (written before them) holds no list: it refuses.
        let mut old = serde_json::to_value(&t).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.remove("retired");
        obj.remove("retired_digest");
        let old: Trusted = serde_json::from_value(old).unwrap();
        assert_eq!(
            old.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::RetiredUnknown
        );
    }

    #[test]
    fn a_checkpoint_with_another_retired_digest_resets_the_list() {
        let f = fixture();
        let mut t = start();
        walk(&mut t, &honest_chain()).unwrap();
        t.accept_retired(f.retired.as_slice()).unwrap();
        // The same key and digest again: the list stays.
        let same = link(&cp(5, 2, true), 2);
        t.advance(&same.0, &same.1).unwrap();
        assert_eq!(t.retired, Some(f.retired.clone()));
        // A signed checkpoint naming another set: the old list no longer counts.
        let mut other = cp(6, 2, true);
        other.retired_digest = RetiredLeaves::new([21]).digest();
        let l = link(&other, 2);
        t.advance(&l.0, &l.1).unwrap();
        assert_eq!(t.retired, None);
        assert_eq!(
            t.verify_signature(&f.lms_key, MESSAGE, &f.lms_signature)
                .unwrap_err(),
            LightClientError::RetiredUnknown
        );
        assert_eq!(
            t.accept_retired(f.retired.as_slice()).unwrap_err(),
            LightClientError::RetiredMismatch { len: 2 }
        );
        t.accept_retired(&[21]).unwrap();
        // Leaf 4 is no longer retired under this checkpoint: the forgery is a valid signature
        // there, which is why the list must come from the checkpoint and nowhere else.
        t.verify_signature(&f.lms_key, FORGED_MESSAGE, &f.forged)
            .unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_bit_flip_in_checkpoint_or_signature_or_key_is_rejected(
            which in 0usize..3, bit in any::<usize>()
        ) {
            let f = fixture();
            let mut key = f.group_key;
            let mut cp = f.checkpoint.clone();
            let mut sig = f.signature;
            let target: &mut [u8] = match which {
                0 => &mut key,
                1 => &mut cp,
                _ => &mut sig,
            };
            let bit = bit % (8 * target.len());
            target[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_checkpoint(&key, &chain(), &cp, &sig).is_err());
        }

        #[test]
        fn any_bit_flip_anywhere_in_the_chain_is_rejected(
            which in 0usize..5, sig in any::<bool>(), bit in any::<usize>()
        ) {
            let mut links = honest_chain();
            let target = if sig { &mut links[which].1 } else { &mut links[which].0 };
            let bit = bit % (8 * target.len());
            target[bit / 8] ^= 1 << (bit % 8);
            let mut t = start();
            let err = walk(&mut t, &links).unwrap_err();
            prop_assert_eq!(err.position, which);
            prop_assert_eq!(t, start());
        }

        #[test]
        fn any_bit_flip_in_lms_key_message_or_signature_is_rejected(
            which in 0usize..3, bit in any::<usize>()
        ) {
            let f = fixture();
            let cp = Checkpoint::from_bytes(&f.checkpoint).unwrap();
            let mut key = f.lms_key.clone();
            let mut msg = MESSAGE.to_vec();
            let mut sig = f.lms_signature.clone();
            let target: &mut [u8] = match which {
                0 => &mut key,
                1 => &mut msg,
                _ => &mut sig,
            };
            let bit = bit % (8 * target.len());
            target[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_signature(&cp, &f.retired, &key, &msg, &sig).is_err());
        }
    }
}
