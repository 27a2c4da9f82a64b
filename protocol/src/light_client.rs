//! Light-client verification: pure functions that need only the chain id, a group key the client
//! trusts (epoch 0's checkpoint key, or a later one vouched for by a rotation checkpoint) and the
//! bytes a possibly hostile server hands over. [`verify_checkpoint`] accepts exactly checkpoints
//! of this chain signed by that key (`verify_strict`); [`verify_signature`] accepts an LMS
//! signature only under the public key the checkpoint commits to: same LMS and LM-OTS type
//! codes, same identifier `I`, same root `T[1]`.
//!
//! Walking the checkpoint chain across key rotations is planned, not built: `docs/light-client.md`.

use ed25519_dalek::{Signature, VerifyingKey};
use subtle::ConstantTimeEq;

use crate::checkpoint::{Checkpoint, CheckpointError, MasterKey};
use crate::lms::{self, LmsPublicKey, VerifyError};

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
    /// The group key given (`genesis_group_key`) is not a valid Ed25519 public key.
    #[error("genesis group key is not a valid Ed25519 key")]
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
    /// The group's signature on the checkpoint does not verify.
    #[error("checkpoint signature does not verify under the genesis group key")]
    BadCheckpointSignature,
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
}

/// Verifies a checkpoint of chain `chain_id` signed by `genesis_group_key` and returns it. The
/// key is the one the client trusts: epoch 0's checkpoint key, or a later key that a rotation
/// checkpoint vouched for (the client must check that step itself; no function does yet).
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
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| LightClientError::SignatureLength(signature.len()))?;
    key.verify_strict(checkpoint, &Signature::from_bytes(&signature))
        .map_err(|_| LightClientError::BadCheckpointSignature)?;
    Ok(decoded)
}

/// Verifies an LMS signature (one-level HSS encodings) on `message` under a public key that must
/// be exactly `checkpoint.master_key` (see [`check_key`]).
pub fn verify_signature(
    checkpoint: &Checkpoint,
    lms_public_key_hss: &[u8],
    message: &[u8],
    lms_signature_hss: &[u8],
) -> Result<(), LightClientError> {
    let pk = LmsPublicKey::decode_hss(lms_public_key_hss).map_err(VerifyError::from)?;
    check_key(&checkpoint.master_key, &pk)?;
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
    use crate::checkpoint::{self, tests::sample_checkpoint};
    use crate::lmots::{self, LeafSeed, LmotsType};
    use crate::lms::{interior_hash, leaf_hash, LmsType};
    use crate::shamir::tests::members;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    const MESSAGE: &[u8] = b"release 1.2.3 sha256 0123abcd";

    struct Fixture {
        group_key: [u8; 32],
        checkpoint: Vec<u8>,
        signature: [u8; 64],
        lms_key: Vec<u8>,
        lms_signature: Vec<u8>,
    }

    /// A real federation in miniature: an H5/W4 LMS tree, a 3-of-5 Ed25519 DKG, and a checkpoint
    /// on the tree's root signed by 3 members.
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
            let q = 13u32;
            let mut path = Vec::new();
            let mut r = n + q as usize;
            while r > 1 {
                path.push(t[r ^ 1]);
                r /= 2;
            }
            let sig = lms::sign(
                lms_type,
                ots_type,
                &id,
                q,
                &seeds[q as usize],
                MESSAGE,
                path,
            )
            .unwrap();
            let pk = LmsPublicKey {
                lms_type,
                ots_type,
                id,
                root: t[1],
            };

            let mut rng = ChaCha20Rng::seed_from_u64(77);
            let ms = members(5, 0x61);
            let (keys, public) = checkpoint::run_dkg_in_memory(&ms, 3, &mut rng).unwrap();
            let mut cp = sample_checkpoint();
            cp.master_key = MasterKey::from(&pk);
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
                    let s = checkpoint::sign(&cp, &package, &nonces[m], m, &keys[m]).unwrap();
                    (*m, s)
                })
                .collect();
            let signature = checkpoint::aggregate(&package, &shares, &public).unwrap();
            Fixture {
                group_key: checkpoint::group_key(&public).unwrap(),
                checkpoint: cp.to_bytes().to_vec(),
                signature,
                lms_key: pk.encode_hss(),
                lms_signature: sig.encode_hss(),
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
        verify_signature(&cp, &f.lms_key, MESSAGE, &f.lms_signature).unwrap();
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
            verify_signature(&cp, &f.lms_key, MESSAGE, &f.lms_signature).unwrap_err(),
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
                verify_signature(&cp, &other.encode_hss(), MESSAGE, &f.lms_signature).unwrap_err(),
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
                verify_signature(&other, &f.lms_key, MESSAGE, &f.lms_signature).unwrap_err(),
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
            verify_signature(&cp, &f.lms_key, MESSAGE, &f.lms_signature).unwrap_err(),
            LightClientError::NoMasterKey
        );
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
            prop_assert!(verify_signature(&cp, &key, &msg, &sig).is_err());
        }
    }
}
