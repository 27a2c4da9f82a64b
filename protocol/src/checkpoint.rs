//! Threshold-signed checkpoints: the validators' Ed25519 FROST key (frost-ed25519 3.0) signs a
//! [`Checkpoint`] so that a light client holding the group key can trust its master root.
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

use crate::dkg::{self, DkgError};
use crate::member::MemberId;

/// The domain label that starts every encoded checkpoint.
pub const DOMAIN: &[u8; 24] = b"seedfed-checkpoint/v1\0\0\0";

/// Errors of checkpoint encoding and threshold signing. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The bytes are not a canonical checkpoint encoding.
    #[error("malformed checkpoint encoding: {0}")]
    Decode(&'static str),
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

/// What the federation attests at a height: the chain, the epoch, the master LMS root in force
/// and a hash of the validator set and of the group keys in force after this checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The chain id's 32-byte form, `ledger::chain_digest(chain_id)`.
    pub chain_id: [u8; 32],
    /// Epoch number.
    pub epoch: u64,
    /// Ledger height of the checkpointed block.
    pub height: u64,
    /// Root `T[1]` of the federation's master LMS public key.
    pub master_root: [u8; 32],
    /// Hash of the validator set and of the group keys in force after this checkpoint
    /// (`ledger::validator_set_hash`).
    pub validator_set_hash: [u8; 32],
}

impl Checkpoint {
    /// Encoded length: 24 + 32 + 8 + 8 + 32 + 32 = 136 bytes.
    pub const ENCODED_LEN: usize = DOMAIN.len() + 32 + 8 + 8 + 32 + 32;

    /// `DOMAIN ‖ chain_id ‖ u64be(epoch) ‖ u64be(height) ‖ master_root ‖ validator_set_hash`:
    /// the exact bytes the group signs.
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        let mut at = 0;
        for part in [
            &DOMAIN[..],
            &self.chain_id,
            &self.epoch.to_be_bytes(),
            &self.height.to_be_bytes(),
            &self.master_root,
            &self.validator_set_hash,
        ] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }

    /// Strict inverse of [`to_bytes`](Self::to_bytes): wrong length or domain is an error.
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
        Ok(Checkpoint {
            chain_id: take32(0),
            epoch: take8(32),
            height: take8(40),
            master_root: take32(48),
            validator_set_hash: take32(80),
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
pub fn sign(
    checkpoint: &Checkpoint,
    package: &SigningPackage,
    nonces: &SigningNonces,
    member: &MemberId,
    key: &KeyPackage,
) -> Result<SignatureShare, CheckpointError> {
    if package.message().as_slice() != checkpoint.to_bytes().as_slice() {
        return Err(CheckpointError::MessageMismatch);
    }
    if *key.identifier() != identifier(member)? {
        return Err(CheckpointError::UnknownSigner(*member));
    }
    frost_ed25519::round2::sign(package, nonces, key)
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
            epoch: 9,
            height: 1234,
            master_root: [0x5e; 32],
            validator_set_hash: [0x7a; 32],
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
            let mut share = sign(checkpoint, &package, &nonces[m], m, &keys[m])?;
            if tamper.contains(m) {
                // Another member's share under the same package: well-formed, wrong for m.
                let other = signers.iter().find(|o| *o != m).unwrap();
                share = sign(checkpoint, &package, &nonces[other], other, &keys[other])?;
            }
            shares.insert(*m, share);
        }
        aggregate(&package, &shares, public)
    }

    #[test]
    fn encoding_round_trips_and_is_strict() {
        let c = sample_checkpoint();
        let bytes = c.to_bytes();
        assert_eq!(Checkpoint::from_bytes(&bytes).unwrap(), c);
        assert!(Checkpoint::from_bytes(&bytes[..135]).is_err());
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(Checkpoint::from_bytes(&long).is_err());
        let mut bad = bytes;
        bad[0] ^= 1;
        assert_eq!(
            Checkpoint::from_bytes(&bad).unwrap_err(),
            CheckpointError::Decode("wrong domain label")
        );
        // Every field lands in the encoding.
        let mut d = c;
        d.height += 1;
        assert_ne!(d.to_bytes(), bytes);
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
        other.master_root[0] ^= 1;
        let package = signing_package(&other, &commitments).unwrap();
        assert_eq!(
            sign(&c, &package, &n0, &ms[0], &keys[&ms[0]]).unwrap_err(),
            CheckpointError::MessageMismatch
        );
        let package = signing_package(&c, &commitments).unwrap();
        assert_eq!(
            sign(&c, &package, &n0, &ms[1], &keys[&ms[0]]).unwrap_err(),
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
