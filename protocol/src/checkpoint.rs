//! Threshold-signed checkpoints: the validators' Ed25519 FROST key (frost-ed25519 3.0) signs a
//! [`Checkpoint`] so that a light client holding the group key can trust the federation's master
//! LMS public key. The checkpoint commits to the whole RFC 8554 public key ([`MasterKey`]: both
//! type codes, the identifier `I` and the root `T[1]`), not only the root, so a server cannot
//! hand a client the right root under another parameter set or identifier. With the master key
//! it commits to the digest of the leaves the audit retired ([`crate::retired`]), whose one-time
//! keys are public: a client refuses signatures at them.
//! Guarantees: the signed bytes ([`Checkpoint::to_bytes`]) start with a domain label, have fixed
//! widths and decode back to exactly one checkpoint; the aggregate is a plain RFC 8032 signature
//! that `verify_strict` accepts; [`aggregate`] names every member whose share is bad.
//!
//! Encoding, signing rounds and tests: `docs/light-client.md`.

use std::collections::BTreeMap;

use frost_ed25519::keys::{KeyPackage, PublicKeyPackage};
pub use frost_ed25519::round1::{SigningCommitments, SigningNonces};
pub use frost_ed25519::round2::SignatureShare;
use frost_ed25519::{Ed25519Sha512, Identifier, SigningPackage};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::dkg::{self, DkgError};
use crate::lmots::{DecodeError, LmotsType};
use crate::lms::{LmsPublicKey, LmsType};
use crate::member::MemberId;

/// The domain label that starts every encoded checkpoint.
pub const DOMAIN: &[u8; 24] = b"seedfed-checkpoint/v3\0\0\0";

/// Errors of checkpoint encoding and threshold signing. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The bytes are not a canonical checkpoint encoding.
    #[error("malformed checkpoint encoding: {0}")]
    Decode(&'static str),
    /// The checkpoint was made before the master root was final: its master key is all zeros.
    #[error("checkpoint carries no master key (made before the master root was final)")]
    NoMasterKey,
    /// The master key's type codes are not a supported RFC 8554 parameter set.
    #[error("checkpoint master key is not a valid LMS public key: {0}")]
    BadMasterKey(DecodeError),
    /// The signing package's message is not the checkpoint the signer was asked to sign.
    #[error("signing package message is not this checkpoint")]
    MessageMismatch,
    /// Some signature shares do not verify; these members sent them.
    #[error("invalid signature shares from {culprits:?}")]
    BadShares {
        /// The members whose shares are invalid.
        culprits: Vec<MemberId>,
    },
    /// A share or commitment from someone not in the group, or the key package is not the
    /// member's.
    #[error("member {0:?} is not a signer of this group")]
    UnknownSigner(MemberId),
    /// frost rejected a step for another reason.
    #[error("frost signing step failed: {0}")]
    Frost(String),
    /// DKG error (identifier derivation, in-memory DKG).
    #[error(transparent)]
    Dkg(#[from] DkgError),
}

/// The federation's master LMS public key as a checkpoint commits to it: exactly the fields of
/// an RFC 8554 LMS public key (section 5.3). The type codes are kept as raw `u32`s so that every
/// value, including the all-zero [`MasterKey::NONE`] of checkpoints made before the master root
/// is final, encodes and decodes; [`public_key`](Self::public_key) checks them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MasterKey {
    /// LMS type code (RFC 8554 `type`, e.g. 5 for `LMS_SHA256_M32_H5`).
    pub lms_type: u32,
    /// LM-OTS type code (RFC 8554 `otstype`, e.g. 3 for `LMOTS_SHA256_N32_W4`).
    pub lmots_type: u32,
    /// Tree identifier `I`.
    pub id: [u8; 16],
    /// Root `T[1]`.
    pub root: [u8; 32],
}

impl MasterKey {
    /// No key yet: what checkpoints carry before the master root is final.
    pub const NONE: MasterKey = MasterKey {
        lms_type: 0,
        lmots_type: 0,
        id: [0; 16],
        root: [0; 32],
    };

    /// Encoded length: 4 + 4 + 16 + 32 = 56 bytes, the RFC 8554 LMS public key's.
    pub const ENCODED_LEN: usize = 4 + 4 + 16 + 32;

    /// Whether this is [`MasterKey::NONE`].
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// `u32be(lms_type) ‖ u32be(lmots_type) ‖ I ‖ root`: for a valid key, the RFC 8554 encoding
    /// of the LMS public key ([`LmsPublicKey::encode`]).
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..4].copy_from_slice(&self.lms_type.to_be_bytes());
        out[4..8].copy_from_slice(&self.lmots_type.to_be_bytes());
        out[8..24].copy_from_slice(&self.id);
        out[24..].copy_from_slice(&self.root);
        out
    }

    /// Inverse of [`to_bytes`](Self::to_bytes) (every 56-byte string is some `MasterKey`).
    pub fn from_bytes(bytes: &[u8; Self::ENCODED_LEN]) -> Self {
        let mut lms_type = [0u8; 4];
        lms_type.copy_from_slice(&bytes[..4]);
        let mut lmots_type = [0u8; 4];
        lmots_type.copy_from_slice(&bytes[4..8]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[8..24]);
        let mut root = [0u8; 32];
        root.copy_from_slice(&bytes[24..]);
        MasterKey {
            lms_type: u32::from_be_bytes(lms_type),
            lmots_type: u32::from_be_bytes(lmots_type),
            id,
            root,
        }
    }

    /// The LMS public key: `NoMasterKey` for [`MasterKey::NONE`], `BadMasterKey` if a type code is
    /// not a supported parameter set.
    pub fn public_key(&self) -> Result<LmsPublicKey, CheckpointError> {
        if self.is_none() {
            return Err(CheckpointError::NoMasterKey);
        }
        Ok(LmsPublicKey {
            lms_type: LmsType::from_typecode(self.lms_type)
                .map_err(CheckpointError::BadMasterKey)?,
            ots_type: LmotsType::from_typecode(self.lmots_type)
                .map_err(CheckpointError::BadMasterKey)?,
            id: self.id,
            root: self.root,
        })
    }

    /// The one-level HSS encoding of the public key (`u32be(1) ‖ LMS public key`, 60 bytes):
    /// the bytes of `seedfed.pub`, what RFC 8554 verifiers and [`light_client`] take.
    ///
    /// [`light_client`]: crate::light_client
    pub fn encode_hss(&self) -> Result<Vec<u8>, CheckpointError> {
        Ok(self.public_key()?.encode_hss())
    }
}

impl From<&LmsPublicKey> for MasterKey {
    fn from(pk: &LmsPublicKey) -> Self {
        MasterKey {
            lms_type: pk.lms_type.typecode(),
            lmots_type: pk.ots_type.typecode(),
            id: pk.id,
            root: pk.root,
        }
    }
}

/// What the federation attests at a height: the chain, the checkpoint's place in the chain of
/// checkpoints, the epoch, the master LMS public key in force, the Ed25519 group key that signs
/// the next checkpoint, a hash of the validator set and of the group keys in force after this
/// checkpoint, and the digest of the leaves the audit retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The chain id's 32-byte form, `ledger::chain_digest(chain_id)`.
    pub chain_id: [u8; 32],
    /// Sequence number: 0 for the chain's first checkpoint, then one more for each (no gaps).
    pub seq: u64,
    /// Epoch number.
    pub epoch: u64,
    /// Ledger height of the checkpointed block.
    pub height: u64,
    /// The federation's master LMS public key ([`MasterKey::NONE`] before the master root is
    /// final).
    pub master_key: MasterKey,
    /// The Ed25519 group key that signs checkpoint `seq + 1`: the key that signed this one,
    /// or, for a rotation checkpoint, the new epoch's DKG key.
    pub next_key: [u8; 32],
    /// Hash of the validator set and of the group keys in force after this checkpoint
    /// (`ledger::validator_set_hash`).
    pub validator_set_hash: [u8; 32],
    /// [`RetiredLeaves::digest`](crate::retired::RetiredLeaves::digest) of the leaves the audit
    /// retired (their seeds are public: a verifier refuses signatures at them); all zeros
    /// exactly when `master_key` is [`MasterKey::NONE`] (the set is fixed only once the master
    /// root is final).
    pub retired_digest: [u8; 32],
}

impl Checkpoint {
    /// Encoded length: 24 + 32 + 8 + 8 + 8 + 56 + 32 + 32 + 32 = 232 bytes.
    pub const ENCODED_LEN: usize =
        DOMAIN.len() + 32 + 8 + 8 + 8 + MasterKey::ENCODED_LEN + 32 + 32 + 32;

    /// Offset of the master key (the RFC 8554 public key) in the encoding.
    pub const MASTER_KEY_AT: usize = DOMAIN.len() + 32 + 8 + 8 + 8;

    /// `DOMAIN ‖ chain_id ‖ u64be(seq) ‖ u64be(epoch) ‖ u64be(height) ‖ u32be(lms_type)
    /// ‖ u32be(lmots_type) ‖ I ‖ root ‖ next_key ‖ validator_set_hash ‖ retired_digest`: the
    /// exact bytes the group signs.
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        let mut at = 0;
        for part in [
            &DOMAIN[..],
            &self.chain_id,
            &self.seq.to_be_bytes(),
            &self.epoch.to_be_bytes(),
            &self.height.to_be_bytes(),
            &self.master_key.to_bytes(),
            &self.next_key,
            &self.validator_set_hash,
            &self.retired_digest,
        ] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }

    /// Strict inverse of [`to_bytes`](Self::to_bytes): wrong length or domain is an error, and
    /// so is a retired-leaves digest without a master key (or no digest with one).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        if bytes.len() != Self::ENCODED_LEN {
            return Err(CheckpointError::Decode("wrong length"));
        }
        let (domain, rest) = bytes.split_at(DOMAIN.len());
        if domain != DOMAIN {
            return Err(CheckpointError::Decode("wrong domain label"));
        }
        let take32 = |at: usize| {
            let mut a = [0u8; 32];
            a.copy_from_slice(&rest[at..at + 32]);
            a
        };
        let take8 = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&rest[at..at + 8]);
            u64::from_be_bytes(a)
        };
        let key_at = Self::MASTER_KEY_AT - DOMAIN.len();
        let mut key = [0u8; MasterKey::ENCODED_LEN];
        key.copy_from_slice(&rest[key_at..key_at + MasterKey::ENCODED_LEN]);
        let next_at = key_at + MasterKey::ENCODED_LEN;
        let master_key = MasterKey::from_bytes(&key);
        let retired_digest = take32(next_at + 64);
        if master_key.is_none() != (retired_digest == [0; 32]) {
            return Err(CheckpointError::Decode(
                "retired-leaves digest without a master key, or a master key without one",
            ));
        }
        Ok(Checkpoint {
            chain_id: take32(0),
            seq: take8(32),
            epoch: take8(40),
            height: take8(48),
            master_key,
            next_key: take32(next_at),
            validator_set_hash: take32(next_at + 32),
            retired_digest,
        })
    }
}

/// A member's frost-ed25519 identifier (same derivation as the root key's).
pub fn identifier(member: &MemberId) -> Result<Identifier, CheckpointError> {
    Ok(dkg::identifier_for::<Ed25519Sha512>(member)?)
}

/// The group's Ed25519 public key bytes: what verifies its checkpoints (light clients pin epoch
/// 0's; the ledger records each completed DKG's).
pub fn group_key(public: &PublicKeyPackage) -> Result<[u8; 32], CheckpointError> {
    let bytes = public
        .verifying_key()
        .serialize()
        .map_err(|e| CheckpointError::Frost(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| CheckpointError::Frost("group key is not 32 bytes".into()))
}

/// Runs the Ed25519 DKG in memory (all-honest path; the ledger and the epoch agent use
/// `dkg::Ceremony` with `Ed25519Sha512`).
pub fn run_dkg_in_memory<R: RngCore + CryptoRng>(
    members: &[MemberId],
    t: u16,
    rng: &mut R,
) -> Result<(BTreeMap<MemberId, KeyPackage>, PublicKeyPackage), CheckpointError> {
    Ok(dkg::run_in_memory_for::<Ed25519Sha512, R>(members, t, rng)?)
}

/// Round 1: fresh nonces (keep secret, use once) and their public commitments.
pub fn commit<R: RngCore + CryptoRng>(
    key: &KeyPackage,
    rng: &mut R,
) -> (SigningNonces, SigningCommitments) {
    frost_ed25519::round1::commit(key.signing_share(), rng)
}

/// The coordinator's signing package: the checkpoint and the commitments of the chosen signers
/// (at least the threshold).
pub fn signing_package(
    checkpoint: &Checkpoint,
    commitments: &BTreeMap<MemberId, SigningCommitments>,
) -> Result<SigningPackage, CheckpointError> {
    let mut by_id = BTreeMap::new();
    for (m, c) in commitments {
        by_id.insert(identifier(m)?, *c);
    }
    Ok(SigningPackage::new(by_id, &checkpoint.to_bytes()))
}

/// Round 2: `member`'s signature share on `checkpoint`, refusing a package for any other message.
/// The nonces are taken by value and dropped (wiped) here, used or not: one `commit` signs at
/// most once, and a retried attempt must commit afresh.
pub fn sign(
    checkpoint: &Checkpoint,
    package: &SigningPackage,
    nonces: SigningNonces,
    member: &MemberId,
    key: &KeyPackage,
) -> Result<SignatureShare, CheckpointError> {
    if package.message().as_slice() != checkpoint.to_bytes().as_slice() {
        return Err(CheckpointError::MessageMismatch);
    }
    if *key.identifier() != identifier(member)? {
        return Err(CheckpointError::UnknownSigner(*member));
    }
    frost_ed25519::round2::sign(package, &nonces, key)
        .map_err(|e| CheckpointError::Frost(e.to_string()))
}

/// Aggregates the shares into a 64-byte Ed25519 signature, verifying each share; bad shares are
/// `BadShares` naming every culprit.
pub fn aggregate(
    package: &SigningPackage,
    shares: &BTreeMap<MemberId, SignatureShare>,
    public: &PublicKeyPackage,
) -> Result<[u8; 64], CheckpointError> {
    let mut by_id = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (m, s) in shares {
        let id = identifier(m)?;
        if !public.verifying_shares().contains_key(&id) {
            return Err(CheckpointError::UnknownSigner(*m));
        }
        by_id.insert(id, *s);
        names.insert(id, *m);
    }
    let signature = frost_core::aggregate_custom(
        package,
        &by_id,
        public,
        frost_core::CheaterDetection::AllCheaters,
    )
    .map_err(|e| {
        let culprits: Vec<MemberId> = e
            .culprits()
            .iter()
            .filter_map(|id| names.get(id).copied())
            .collect();
        if culprits.is_empty() {
            CheckpointError::Frost(e.to_string())
        } else {
            CheckpointError::BadShares { culprits }
        }
    })?;
    let bytes = signature
        .serialize()
        .map_err(|e| CheckpointError::Frost(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| CheckpointError::Frost("signature is not 64 bytes".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::shamir::tests::members;
    use ed25519_dalek::{Signature, VerifyingKey};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    pub(crate) fn sample_checkpoint() -> Checkpoint {
        Checkpoint {
            chain_id: [0xc1; 32],
            seq: 3,
            epoch: 9,
            height: 1234,
            master_key: MasterKey {
                lms_type: LmsType::H10.typecode(),
                lmots_type: LmotsType::W4.typecode(),
                id: [0x1d; 16],
                root: [0x5e; 32],
            },
            next_key: [0x4b; 32],
            validator_set_hash: [0x7a; 32],
            retired_digest: [0x3e; 32],
        }
    }

    /// Runs the whole signing flow with `signers`; `tamper` corrupts these members' shares.
    fn sign_with(
        keys: &BTreeMap<MemberId, KeyPackage>,
        public: &PublicKeyPackage,
        checkpoint: &Checkpoint,
        signers: &[MemberId],
        tamper: &[MemberId],
        rng: &mut ChaCha20Rng,
    ) -> Result<[u8; 64], CheckpointError> {
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for m in signers {
            let (n, c) = commit(&keys[m], rng);
            nonces.insert(*m, n);
            commitments.insert(*m, c);
        }
        let package = signing_package(checkpoint, &commitments)?;
        let mut shares = BTreeMap::new();
        for m in signers {
            let mut share = sign(checkpoint, &package, nonces[m].clone(), m, &keys[m])?;
            if tamper.contains(m) {
                // Another member's share under the same package: well-formed, wrong for m.
                let other = signers.iter().find(|o| *o != m).unwrap();
                share = sign(
                    checkpoint,
                    &package,
                    nonces[other].clone(),
                    other,
                    &keys[other],
                )?;
            }
            shares.insert(*m, share);
        }
        aggregate(&package, &shares, public)
    }

    #[test]
    fn encoding_round_trips_and_is_strict() {
        let c = sample_checkpoint();
        let bytes = c.to_bytes();
        assert_eq!(Checkpoint::ENCODED_LEN, 232);
        assert_eq!(Checkpoint::from_bytes(&bytes).unwrap(), c);
        let none = Checkpoint {
            master_key: MasterKey::NONE,
            retired_digest: [0; 32],
            ..c
        };
        assert_eq!(Checkpoint::from_bytes(&none.to_bytes()).unwrap(), none);
        // No retired-leaves digest without a master key, and none missing with one.
        let inconsistent =
            "retired-leaves digest without a master key, or a master key without one";
        for bad in [
            Checkpoint {
                retired_digest: [0; 32],
                ..c
            },
            Checkpoint {
                master_key: MasterKey::NONE,
                ..c
            },
        ] {
            assert_eq!(
                Checkpoint::from_bytes(&bad.to_bytes()).unwrap_err(),
                CheckpointError::Decode(inconsistent)
            );
        }
        // Versions 1 (160 bytes) and 2 (200 bytes) are not version 3.
        for len in [0, 159, 160, 199, 200, 231] {
            assert_eq!(
                Checkpoint::from_bytes(&bytes[..len]).unwrap_err(),
                CheckpointError::Decode("wrong length")
            );
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(
            Checkpoint::from_bytes(&long).unwrap_err(),
            CheckpointError::Decode("wrong length")
        );
        let mut bad = bytes;
        bad[0] ^= 1;
        assert_eq!(
            Checkpoint::from_bytes(&bad).unwrap_err(),
            CheckpointError::Decode("wrong domain label")
        );
        // Every field lands in the encoding, the master key's four as well.
        let variants: [fn(&mut Checkpoint); 11] = [
            |d| d.chain_id[5] ^= 1,
            |d| d.seq += 1,
            |d| d.epoch += 1,
            |d| d.height += 1,
            |d| d.master_key.lms_type += 1,
            |d| d.master_key.lmots_type += 1,
            |d| d.master_key.id[15] ^= 1,
            |d| d.master_key.root[0] ^= 1,
            |d| d.next_key[0] ^= 1,
            |d| d.validator_set_hash[31] ^= 1,
            |d| d.retired_digest[7] ^= 1,
        ];
        for change in variants {
            let mut d = c;
            change(&mut d);
            assert_ne!(d.to_bytes(), bytes);
            assert_eq!(Checkpoint::from_bytes(&d.to_bytes()).unwrap(), d);
        }
    }

    #[test]
    fn master_key_is_the_rfc_8554_public_key_in_place_of_the_root() {
        let c = sample_checkpoint();
        let pk = c.master_key.public_key().unwrap();
        assert_eq!(pk.lms_type, LmsType::H10);
        assert_eq!(pk.ots_type, LmotsType::W4);
        assert_eq!(MasterKey::from(&pk), c.master_key);
        // The signed bytes carry exactly the RFC 8554 encoding after chain id, seq, epoch,
        // height; then the next key, the validator-set hash and the retired-leaves digest.
        let bytes = c.to_bytes();
        assert_eq!(Checkpoint::MASTER_KEY_AT, 80);
        assert_eq!(&bytes[80..136], pk.encode().as_slice());
        assert_eq!(&bytes[136..168], &c.next_key);
        assert_eq!(&bytes[168..200], &c.validator_set_hash);
        assert_eq!(&bytes[200..], &c.retired_digest);
        assert_eq!(c.master_key.to_bytes().as_slice(), pk.encode().as_slice());
        assert_eq!(
            MasterKey::from_bytes(&c.master_key.to_bytes()),
            c.master_key
        );
        // `seedfed.pub`: the one-level HSS encoding, which decodes back to the same key.
        let hss = c.master_key.encode_hss().unwrap();
        assert_eq!(hss, pk.encode_hss());
        assert_eq!(LmsPublicKey::decode_hss(&hss).unwrap(), pk);
        // No key yet, or type codes that are no parameter set, give no public key.
        assert!(MasterKey::NONE.is_none() && MasterKey::default().is_none());
        assert_eq!(
            MasterKey::NONE.encode_hss().unwrap_err(),
            CheckpointError::NoMasterKey
        );
        let mut bad = c.master_key;
        bad.lms_type = 4;
        assert_eq!(
            bad.public_key().unwrap_err(),
            CheckpointError::BadMasterKey(DecodeError::UnknownLmsType(4))
        );
        let mut bad = c.master_key;
        bad.lmots_type = 0;
        assert_eq!(
            bad.encode_hss().unwrap_err(),
            CheckpointError::BadMasterKey(DecodeError::UnknownLmotsType(0))
        );
    }

    #[test]
    fn threshold_signature_verifies_with_ed25519_dalek() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let ms = members(5, 0x51);
        let (keys, public) = run_dkg_in_memory(&ms, 3, &mut rng).unwrap();
        let gk = VerifyingKey::from_bytes(&group_key(&public).unwrap()).unwrap();
        let c = sample_checkpoint();
        for signers in [&ms[..3], &ms[2..], &ms[..]] {
            let sig = sign_with(&keys, &public, &c, signers, &[], &mut rng).unwrap();
            gk.verify_strict(&c.to_bytes(), &Signature::from_bytes(&sig))
                .unwrap();
            let mut other = c;
            other.epoch += 1;
            assert!(gk
                .verify_strict(&other.to_bytes(), &Signature::from_bytes(&sig))
                .is_err());
        }
        // Fewer than the threshold cannot sign.
        assert!(sign_with(&keys, &public, &c, &ms[..2], &[], &mut rng).is_err());
    }

    #[test]
    fn bad_shares_are_attributed() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ms = members(5, 0x52);
        let (keys, public) = run_dkg_in_memory(&ms, 3, &mut rng).unwrap();
        let c = sample_checkpoint();
        let err = sign_with(&keys, &public, &c, &ms[..4], &[ms[1], ms[3]], &mut rng).unwrap_err();
        assert_eq!(
            err,
            CheckpointError::BadShares {
                culprits: vec![ms[1], ms[3]]
            }
        );
    }

    #[test]
    fn signers_refuse_other_messages_and_foreign_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let ms = members(3, 0x53);
        let (keys, _) = run_dkg_in_memory(&ms, 2, &mut rng).unwrap();
        let c = sample_checkpoint();
        let (n0, c0) = commit(&keys[&ms[0]], &mut rng);
        let (_, c1) = commit(&keys[&ms[1]], &mut rng);
        let commitments = BTreeMap::from([(ms[0], c0), (ms[1], c1)]);
        let mut other = c;
        other.master_key.root[0] ^= 1;
        let package = signing_package(&other, &commitments).unwrap();
        assert_eq!(
            sign(&c, &package, n0.clone(), &ms[0], &keys[&ms[0]]).unwrap_err(),
            CheckpointError::MessageMismatch
        );
        let package = signing_package(&c, &commitments).unwrap();
        assert_eq!(
            sign(&c, &package, n0, &ms[1], &keys[&ms[0]]).unwrap_err(),
            CheckpointError::UnknownSigner(ms[1])
        );
    }

    #[test]
    fn identifiers_use_the_member_derivation() {
        let ms = members(3, 0x54);
        for m in &ms {
            let mut input = b"seedfed-member-x/v1".to_vec();
            input.extend_from_slice(m.as_bytes());
            assert_eq!(identifier(m).unwrap(), Identifier::derive(&input).unwrap());
        }
        assert_ne!(identifier(&ms[0]).unwrap(), identifier(&ms[1]).unwrap());
    }
}
