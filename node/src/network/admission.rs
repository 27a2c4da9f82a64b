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

use seedfed_protocol::admission::{Proof, Puzzle};

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
        x25519: [u8; 32],
        proof: Proof,
    ) -> Result<Self, libp2p::identity::SigningError> {
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
        let proof = solved(&kp, "c", [3; 32], 8);
        let rec = AdmissionRecord::sign(&kp, "c", [3; 32], proof).unwrap();
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
            x25519: [3; 32],
        };
        let nonce = (0..10_000u64)
            .find(|n| puzzle.verify(&Proof { nonce: *n }, 8).is_err())
            .unwrap();
        let rec = AdmissionRecord::sign(&kp, "c", [3; 32], Proof { nonce }).unwrap();
        assert!(matches!(
            rec.verify(&me, "c", 8),
            Err(AdmissionRejection::ProofOfWork(_))
        ));
    }
}
