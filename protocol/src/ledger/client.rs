//! Signing clients: who may ask the federation for a signature, and the request they sign.
//!
//! Signing rights are a ledger object. The genesis lists the authorized clients (an Ed25519 key
//! and a per-epoch quota each); validators holding more than 2/3 of the stake add or remove one
//! by each submitting the same [`ClientChange`]. A client signs a [`ClientRequest`] (the
//! message digest, the epoch it counts against, a nonce of its choice and, in key issuance
//! mode, its X25519 key) and hands it to any validator, which relays it in a `SignRequest`
//! transaction and becomes the request's signing service. The chain id is in the signed bytes,
//! so a request does not replay on another federation; the ledger remembers the nonces of the
//! current and previous epoch, so it does not replay on this one, and refuses a request of an
//! older epoch.
//!
//! The federation signs the 32-byte SHA-256 digest of a message ([`message_digest`]): the LMS
//! message of every signature is that digest, so any RFC 8554 verifier checks a signature
//! against `SHA-256(message)`.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codec::encode;
use super::error::LedgerError;
use super::tx::Signature64;
use crate::hash::{hash32, Domain};
use crate::member::MemberId;

const REQUEST_DOMAIN: Domain = Domain::new("seedfed-signreq");

/// The digest the federation signs for `message`: SHA-256.
pub fn message_digest(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

/// What a client asks for, signed by the client's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The client's Ed25519 key.
    pub client: MemberId,
    /// The digest to sign ([`message_digest`] of the message).
    pub digest: [u8; 32],
    /// The epoch whose quota the request counts against: the ledger's current epoch or the
    /// one before.
    pub epoch: u64,
    /// Any number the client did not use before in that epoch.
    pub nonce: u64,
    /// Key issuance mode: the client's X25519 key, to which the holders' contributions are
    /// sealed, so the client itself rebuilds the one-time key and signs. `None`: the relaying
    /// validator (the signing service) signs.
    pub issue_to: Option<[u8; 32]>,
}

impl ClientRequest {
    /// The 32 bytes the client signs: a domain-separated hash of the chain id and the
    /// request's canonical encoding.
    pub fn digest_to_sign(&self, chain_id: &str) -> [u8; 32] {
        hash32(
            REQUEST_DOMAIN,
            &[],
            &[0; 16],
            &[chain_id.as_bytes(), &encode(self)],
        )
    }

    /// Signs the request with the client's key (which must be `self.client`).
    pub fn sign(self, chain_id: &str, key: &SigningKey) -> SignedRequest {
        let signature = Signature64(key.sign(&self.digest_to_sign(chain_id)).to_bytes());
        SignedRequest {
            request: self,
            signature,
        }
    }
}

/// A client's request with its signature: the payload of a `SignRequest` transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    /// The request.
    pub request: ClientRequest,
    /// The client's signature over [`ClientRequest::digest_to_sign`].
    pub signature: Signature64,
}

impl SignedRequest {
    /// Checks the client's signature (strict Ed25519).
    pub fn verify(&self, chain_id: &str) -> Result<(), LedgerError> {
        let client = self.request.client;
        let vk = VerifyingKey::from_bytes(client.as_bytes())
            .map_err(|_| LedgerError::BadClientSignature(client))?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        vk.verify_strict(&self.request.digest_to_sign(chain_id), &sig)
            .map_err(|_| LedgerError::BadClientSignature(client))
    }
}

/// A change of the authorized clients; applied once validators holding more than 2/3 of the
/// stake submitted the same change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientChange {
    /// Authorize `client` with `quota` requests per epoch (or change its quota).
    Authorize {
        /// The client's Ed25519 key.
        client: MemberId,
        /// Requests per epoch.
        quota: u32,
    },
    /// Revoke `client`'s signing rights.
    Revoke {
        /// The client's Ed25519 key.
        client: MemberId,
    },
}

impl ClientChange {
    /// The client the change is about.
    pub fn client(&self) -> MemberId {
        match self {
            ClientChange::Authorize { client, .. } | ClientChange::Revoke { client } => *client,
        }
    }
}
