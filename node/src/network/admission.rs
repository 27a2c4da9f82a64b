//! Signed admission records: the first thing two peers exchange after connecting.
//!
//! A record binds an Ed25519 identity (the `PeerId`) to its X25519 share-encryption key and
//! carries the proof-of-work from `seedfed_protocol::admission` over (chain id, peer id, X25519
//! key, nonce). The identity signs the record, so the X25519 key cannot be swapped by a relay.
//! A record is accepted only if it was presented by the peer it names, on our chain, with a
//! proof meeting the genesis difficulty.

use libp2p::identity::{Keypair, PublicKey};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use seedfed_protocol::admission::{possession_context, Proof, Puzzle};
use seedfed_protocol::seal::{self, PossessionProof};

/// Largest encoded admission message accepted on the wire.
pub const MAX_ADMISSION_MESSAGE_BYTES: u64 = 4096;

const SIGNING_DOMAIN: &[u8] = b"seedfed-admission-record-v1";

/// A peer's signed admission record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionRecord {
    /// Chain id the proof is bound to.
    pub chain_id: String,
    /// The Ed25519 public key in libp2p protobuf encoding (its hash is the `PeerId`).
    pub public_key: Vec<u8>,
    /// X25519 public key for share encryption.
    pub x25519: [u8; 32],
    /// Proof-of-work nonce.
    pub nonce: u64,
    /// Ed25519 signature over all the fields above.
    pub signature: Vec<u8>,
    /// Proof that the peer knows the X25519 key's secret, bound to (chain id, peer id).
    pub x25519_proof: PossessionProof,
}

/// Why a record was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AdmissionRejection {
    /// The public key does not decode.
    #[error("public key does not decode")]
    BadKey,
    /// The record names another peer than the one presenting it.
    #[error("record is for peer {claimed}, presented by {actual}")]
    WrongPeer {
        /// Peer id derived from the record's key.
        claimed: String,
        /// The connection's authenticated peer id.
        actual: String,
    },
    /// Another chain.
    #[error("record is for chain {0:?}")]
    WrongChain(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The proof-of-work fails.
    #[error("proof of work: {0}")]
    ProofOfWork(String),
    /// The X25519 key is not a canonical prime-order Curve25519 point (e.g. a low-order key,
    /// with which every Diffie–Hellman output is predictable).
    #[error("X25519 key is low-order, off the curve or non-canonical")]
    BadX25519,
    /// The X25519 proof of possession does not verify.
    #[error("X25519 proof of possession does not verify")]
    NoPossession,
    /// The peer did not present a record in time.
    #[error("no admission record within the timeout")]
    Timeout,
    /// The peer could not be asked (protocol not supported, stream failure).
    #[error("admission exchange failed: {0}")]
    Exchange(String),
    /// The remote peer refused our record.
    #[error("remote refused our admission record: {0}")]
    RefusedByRemote(String),
}

/// Why our own record could not be made.
#[derive(Debug, Error)]
pub enum AdmissionSignError {
    /// The identity key could not sign.
    #[error("signing: {0}")]
    Signing(#[from] libp2p::identity::SigningError),
    /// Our X25519 key is unusable (it cannot be: keys we generate are valid).
    #[error("our X25519 key is not a valid prime-order key")]
    BadX25519,
}

impl AdmissionRecord {
    fn signed_bytes(chain_id: &str, public_key: &[u8], x25519: &[u8; 32], nonce: u64) -> Vec<u8> {
        let mut v =
            Vec::with_capacity(SIGNING_DOMAIN.len() + chain_id.len() + public_key.len() + 56);
        v.extend_from_slice(SIGNING_DOMAIN);
        for field in [chain_id.as_bytes(), public_key] {
            v.extend_from_slice(&(field.len() as u64).to_le_bytes());
            v.extend_from_slice(field);
        }
        v.extend_from_slice(x25519);
        v.extend_from_slice(&nonce.to_le_bytes());
        v
    }

    /// Signs a record. It does not check the proof (a peer may present a bad one; the
    /// receiver decides).
    pub fn sign(
        keypair: &Keypair,
        chain_id: &str,
        x25519_secret: &x25519_dalek::StaticSecret,
        proof: Proof,
    ) -> Result<Self, AdmissionSignError> {
        let x25519 = x25519_dalek::PublicKey::from(x25519_secret).to_bytes();
        let context = possession_context(chain_id, &keypair.public().to_peer_id().to_bytes());
        let x25519_proof = seal::prove_possession(x25519_secret, &context, &mut rand_core::OsRng)
            .map_err(|_| AdmissionSignError::BadX25519)?;
        let public_key = keypair.public().encode_protobuf();
        let signature = keypair.sign(&Self::signed_bytes(
            chain_id,
            &public_key,
            &x25519,
            proof.nonce,
        ))?;
        Ok(Self {
            chain_id: chain_id.to_string(),
            public_key,
            x25519,
            nonce: proof.nonce,
            signature,
            x25519_proof,
        })
    }

    /// The peer id this record claims.
    pub fn peer_id(&self) -> Result<PeerId, AdmissionRejection> {
        PublicKey::try_decode_protobuf(&self.public_key)
            .map(|k| k.to_peer_id())
            .map_err(|_| AdmissionRejection::BadKey)
    }

    /// Verifies the record as presented by `presenter` for `chain_id` at `difficulty`.
    pub fn verify(
        &self,
        presenter: &PeerId,
        chain_id: &str,
        difficulty: u8,
    ) -> Result<(), AdmissionRejection> {
        let key = PublicKey::try_decode_protobuf(&self.public_key)
            .map_err(|_| AdmissionRejection::BadKey)?;
        let claimed = key.to_peer_id();
        if &claimed != presenter {
            return Err(AdmissionRejection::WrongPeer {
                claimed: claimed.to_string(),
                actual: presenter.to_string(),
            });
        }
        if self.chain_id != chain_id {
            return Err(AdmissionRejection::WrongChain(self.chain_id.clone()));
        }
        let msg = Self::signed_bytes(&self.chain_id, &self.public_key, &self.x25519, self.nonce);
        if !key.verify(&msg, &self.signature) {
            return Err(AdmissionRejection::BadSignature);
        }
        if !seal::x25519_key_is_valid(&self.x25519) {
            return Err(AdmissionRejection::BadX25519);
        }
        let context = possession_context(&self.chain_id, &claimed.to_bytes());
        if !seal::verify_possession(&self.x25519, &context, &self.x25519_proof) {
            return Err(AdmissionRejection::NoPossession);
        }
        Puzzle {
            chain_id: self.chain_id.clone(),
            peer_id: claimed.to_bytes(),
            x25519: self.x25519,
        }
        .verify(&Proof { nonce: self.nonce }, difficulty)
        .map_err(|e| AdmissionRejection::ProofOfWork(e.to_string()))
    }
}

/// Admission request: "here is my record".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdmissionRequest(pub AdmissionRecord);

/// Admission response: the responder's own record, or why the request's record was refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdmissionResponse {
    /// Accepted; the responder's record.
    Accepted(AdmissionRecord),
    /// Refused, with the reason.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    use x25519_dalek::StaticSecret;

    fn xkey(seed: u8) -> (StaticSecret, [u8; 32]) {
        let sk = StaticSecret::from([seed; 32]);
        let pk = x25519_dalek::PublicKey::from(&sk).to_bytes();
        (sk, pk)
    }

    fn solved(kp: &Keypair, chain: &str, x: [u8; 32], d: u8) -> Proof {
        Puzzle {
            chain_id: chain.into(),
            peer_id: kp.public().to_peer_id().to_bytes(),
            x25519: x,
        }
        .solve(d, 0, 1 << 20, |_| {})
        .unwrap()
    }

    #[test]
    fn valid_record_verifies_and_every_field_is_bound() {
        let kp = Keypair::generate_ed25519();
        let me = kp.public().to_peer_id();
        let (xs, xp) = xkey(3);
        let proof = solved(&kp, "c", xp, 8);
        let rec = AdmissionRecord::sign(&kp, "c", &xs, proof).unwrap();
        assert_eq!(rec.verify(&me, "c", 8), Ok(()));
        assert_eq!(rec.peer_id(), Ok(me));

        let other = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            rec.verify(&other, "c", 8),
            Err(AdmissionRejection::WrongPeer { .. })
        ));
        assert!(matches!(
            rec.verify(&me, "d", 8),
            Err(AdmissionRejection::WrongChain(_))
        ));
        let mut swapped = rec.clone();
        swapped.x25519 = [4; 32];
        assert_eq!(
            swapped.verify(&me, "c", 8),
            Err(AdmissionRejection::BadSignature)
        );
        let mut renonced = rec.clone();
        renonced.nonce ^= 1;
        assert_eq!(
            renonced.verify(&me, "c", 8),
            Err(AdmissionRejection::BadSignature)
        );
    }

    #[test]
    fn weak_proof_is_rejected() {
        let kp = Keypair::generate_ed25519();
        let me = kp.public().to_peer_id();
        let puzzle = Puzzle {
            chain_id: "c".into(),
            peer_id: me.to_bytes(),
            x25519: xkey(3).1,
        };
        let nonce = (0..10_000u64)
            .find(|n| puzzle.verify(&Proof { nonce: *n }, 8).is_err())
            .unwrap();
        let rec = AdmissionRecord::sign(&kp, "c", &xkey(3).0, Proof { nonce }).unwrap();
        assert!(matches!(
            rec.verify(&me, "c", 8),
            Err(AdmissionRejection::ProofOfWork(_))
        ));
    }

    /// Re-signs `rec` as-is (so the signature and proof of work are not what fails).
    fn resign(kp: &Keypair, rec: &mut AdmissionRecord) {
        let msg =
            AdmissionRecord::signed_bytes(&rec.chain_id, &rec.public_key, &rec.x25519, rec.nonce);
        rec.signature = kp.sign(&msg).unwrap();
    }

    #[test]
    fn low_order_or_unproven_x25519_keys_are_refused() {
        let kp = Keypair::generate_ed25519();
        let me = kp.public().to_peer_id();
        let (xs, xp) = xkey(5);
        let rec = AdmissionRecord::sign(&kp, "c", &xs, solved(&kp, "c", xp, 4)).unwrap();
        assert_eq!(rec.verify(&me, "c", 4), Ok(()));

        // A low-order key (all zeros: every DH output with it is zero), properly signed with a
        // valid proof of work, is refused.
        let mut low = rec.clone();
        low.x25519 = [0; 32];
        low.nonce = solved(&kp, "c", low.x25519, 4).nonce;
        resign(&kp, &mut low);
        assert_eq!(low.verify(&me, "c", 4), Err(AdmissionRejection::BadX25519));

        // Another member's valid key, without its secret: the proof of possession fails.
        let (_, theirs) = xkey(6);
        let mut stolen = rec.clone();
        stolen.x25519 = theirs;
        stolen.nonce = solved(&kp, "c", theirs, 4).nonce;
        resign(&kp, &mut stolen);
        assert_eq!(
            stolen.verify(&me, "c", 4),
            Err(AdmissionRejection::NoPossession)
        );

        // A proof made for another peer id does not carry over.
        let other = Keypair::generate_ed25519();
        let (xs2, xp2) = xkey(7);
        let theirs = AdmissionRecord::sign(&other, "c", &xs2, solved(&other, "c", xp2, 4)).unwrap();
        let mut replayed = AdmissionRecord::sign(&kp, "c", &xs2, solved(&kp, "c", xp2, 4)).unwrap();
        replayed.x25519_proof = theirs.x25519_proof;
        assert_eq!(
            replayed.verify(&me, "c", 4),
            Err(AdmissionRejection::NoPossession)
        );
    }
}
