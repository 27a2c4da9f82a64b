//! Fresh flooder identities: an Ed25519 key (its libp2p peer id and its ledger member id are
//! the same key, as for every seedfed node), an X25519 key, and a signed admission record whose
//! proof of work meets the chain's difficulty, so the nodes admit the flooder like any other
//! newcomer and everything it sends afterwards reaches their gossip checks, request handlers and
//! mempools.
//!
//! Guarantees: every identity is new (keys from the OS RNG); solving is bounded
//! ([`MAX_DIFFICULTY`] bits, a budget of `2^(difficulty + 12)` hashes) and fails with the
//! reason instead of searching forever.

use libp2p::identity::Keypair;
use libp2p::PeerId;
use rand_core::OsRng;
use seedfed_node::network::AdmissionRecord;
use seedfed_protocol::admission::Puzzle;
use seedfed_protocol::member::MemberId;

use super::FloodError;

/// The most proof-of-work bits a flooder solves (a local testnet uses 8 to 12).
pub const MAX_DIFFICULTY: u8 = 28;

/// One flooder identity.
pub struct Identity {
    /// The libp2p identity (the same Ed25519 key as [`Identity::signing`]).
    pub keypair: Keypair,
    /// The Ed25519 key, for transactions and sign requests.
    pub signing: ed25519_dalek::SigningKey,
    /// The admission record the network presents.
    pub record: AdmissionRecord,
}

impl Identity {
    /// A new identity for `chain_id` with an admission proof meeting `difficulty`.
    pub fn fresh(chain_id: &str, difficulty: u8) -> Result<Self, FloodError> {
        if difficulty > MAX_DIFFICULTY {
            return Err(FloodError::Difficulty(difficulty));
        }
        let signing = ed25519_dalek::SigningKey::generate(&mut OsRng);
        let keypair = Keypair::ed25519_from_bytes(signing.to_bytes())
            .map_err(|e| FloodError::Identity(e.to_string()))?;
        let x25519 = x25519_dalek::StaticSecret::random_from_rng(OsRng);
        let puzzle = Puzzle {
            chain_id: chain_id.to_string(),
            peer_id: keypair.public().to_peer_id().to_bytes(),
            x25519: x25519_dalek::PublicKey::from(&x25519).to_bytes(),
        };
        let proof = puzzle
            .solve(difficulty, 0, 1u64 << (difficulty + 12), |_| {})
            .map_err(|e| FloodError::Identity(e.to_string()))?;
        let record = AdmissionRecord::sign(&keypair, chain_id, &x25519, proof)
            .map_err(|e| FloodError::Identity(e.to_string()))?;
        Ok(Identity {
            keypair,
            signing,
            record,
        })
    }

    /// The peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The ledger member id (the Ed25519 key).
    pub fn member(&self) -> MemberId {
        MemberId(self.signing.verifying_key().to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_identity_is_admissible_and_its_peer_id_is_its_member_id() {
        let id = Identity::fresh("flood-chain", 8).unwrap();
        id.record.verify(&id.peer_id(), "flood-chain", 8).unwrap();
        assert_eq!(
            seedfed_node::chain::member_of(&id.peer_id()),
            Some(id.member())
        );
        assert!(matches!(
            Identity::fresh("flood-chain", MAX_DIFFICULTY + 1),
            Err(FloodError::Difficulty(_))
        ));
    }
}
