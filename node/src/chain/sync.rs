//! Block sync: a lagging or restarted node fetches decided blocks over request-response
//! ([`ChainRequest::Blocks`]) and applies them after their certificates verify; it also serves
//! its own blocks to others.
//!
//! Guarantees: at most one request in flight; requests go to the peer that showed the highest
//! height ahead of us, else to admitted validators in turn (a bootstrap node or a plain member
//! may not serve blocks, and an unanswered request would hold sync up for its whole timeout);
//! a block applies only through consensus ([`Input::Synced`]: the next height, a certificate
//! that verifies against the current validator set, a block that validates), and a batch stops
//! at the first block that does not; answers are bounded by [`MAX_SYNC_BLOCKS`] blocks and
//! [`MAX_SYNC_BYTES`] bytes.

use std::collections::{BTreeMap, BTreeSet};

use libp2p::PeerId;
use seedfed_protocol::consensus::{CommitCertificate, ConsensusMessage, Input};
use seedfed_protocol::ledger::{self, Block};
use seedfed_protocol::member::MemberId;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::driver::{ChainError, Driver};
use super::wire::{member_of, ChainRequest, ChainResponse, MAX_SYNC_BLOCKS, MAX_SYNC_BYTES};

/// The answer to one sync request: the peer asked and its blocks, or why there are none.
pub type SyncResult = (PeerId, Result<Vec<(Block, CommitCertificate)>, String>);

/// Whom to ask for blocks, and whether a request is out.
pub struct BlockSync {
    peers: BTreeSet<PeerId>,
    best_seen: Option<(u64, PeerId)>,
    in_flight: bool,
    turn: usize,
    /// Blocks applied through sync since start.
    pub applied: u64,
    results: mpsc::Sender<SyncResult>,
}

impl BlockSync {
    /// Answers go to `results`.
    pub fn new(results: mpsc::Sender<SyncResult>) -> Self {
        BlockSync {
            peers: BTreeSet::new(),
            best_seen: None,
            in_flight: false,
            turn: 0,
            applied: 0,
            results,
        }
    }

    /// `peer` passed admission.
    pub fn peer_admitted(&mut self, peer: PeerId) {
        self.peers.insert(peer);
    }

    /// `peer` disconnected.
    pub fn peer_gone(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// A consensus message for `height` arrived from `author` while we decide `ours`; call it
    /// only for messages that pass [`raises_sync_target`].
    pub fn heard(&mut self, height: u64, author: PeerId, ours: u64) {
        if height > ours && self.best_seen.is_none_or(|(b, _)| height > b) {
            self.best_seen = Some((height, author));
        }
    }

    /// Whether someone showed a height past `ours`.
    pub fn behind(&self, ours: u64) -> bool {
        self.best_seen.is_some_and(|(b, _)| b > ours)
    }

    /// Whom to ask now: `peer`, else the best-known peer ahead of us, else the next admitted
    /// validator in turn; `None` while a request is out or nobody fits. Marks the request as
    /// out.
    pub fn target(
        &mut self,
        peer: Option<PeerId>,
        validators: &BTreeMap<MemberId, u64>,
    ) -> Option<PeerId> {
        if self.in_flight {
            return None;
        }
        let servers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| member_of(p).is_some_and(|m| validators.contains_key(&m)))
            .copied()
            .collect();
        let target = peer.or(self.best_seen.map(|(_, p)| p)).or_else(|| {
            if servers.is_empty() {
                return None;
            }
            self.turn = self.turn.wrapping_add(1);
            servers.get(self.turn % servers.len()).copied()
        })?;
        self.in_flight = true;
        Some(target)
    }

    /// The request to `peer` ended (`ok`: with blocks); we decide `ours` now.
    fn finished(&mut self, peer: &PeerId, ok: bool, ours: u64) {
        self.in_flight = false;
        if !ok && self.best_seen.is_some_and(|(_, p)| p == *peer) {
            self.best_seen = None;
        }
        if self.best_seen.is_some_and(|(b, _)| b <= ours) {
            self.best_seen = None;
        }
    }
}

impl Driver {
    /// Asks `peer` (or whom [`BlockSync::target`] picks) for the blocks after our tip.
    pub(super) fn request_sync(&mut self, peer: Option<PeerId>) {
        let validators = self.consensus.ledger().state.validators();
        let Some(target) = self.sync.target(peer, &validators) else {
            return;
        };
        let from = self.consensus.ledger().height() + 1;
        let req = ledger::encode(&ChainRequest::Blocks {
            from,
            max: MAX_SYNC_BLOCKS,
        });
        let net = self.network.clone();
        let results = self.sync.results.clone();
        tokio::spawn(async move {
            let r = match net.request(target, req).await {
                Ok(bytes) => match ledger::decode::<ChainResponse>(&bytes) {
                    Ok(ChainResponse::Blocks(b)) => Ok(b),
                    Ok(other) => Err(format!("unexpected answer {other:?}")),
                    Err(e) => Err(format!("malformed answer: {e}")),
                },
                Err(e) => Err(e.to_string()),
            };
            let _ = results.send((target, r)).await;
        });
    }

    /// Applies the blocks `peer` sent, in order, until one does not apply; asks for more if
    /// the answer was full.
    pub(super) async fn on_synced(
        &mut self,
        peer: PeerId,
        r: Result<Vec<(Block, CommitCertificate)>, String>,
    ) -> Result<(), ChainError> {
        let blocks = match r {
            Ok(b) => b,
            Err(e) => {
                debug!(%peer, "block sync failed: {e}");
                self.sync.finished(&peer, false, self.consensus.height());
                return Ok(());
            }
        };
        let full = blocks.len() == MAX_SYNC_BLOCKS as usize;
        let mut applied = 0u64;
        for (block, certificate) in blocks {
            let before = self.consensus.ledger().height();
            self.commits.forget(block.height); // a synced block is no latency sample
            let out = self.consensus.handle(Input::Synced { block, certificate });
            self.act(out).await?;
            if self.consensus.ledger().height() == before {
                debug!(%peer, "a synced block did not apply; stopping this batch");
                break;
            }
            applied += 1;
        }
        if applied > 0 {
            self.sync.applied += applied;
            info!(%peer, applied, height = self.consensus.ledger().height(), "synced blocks");
            self.publish_status();
        }
        self.sync.finished(&peer, true, self.consensus.height());
        if full && applied > 0 {
            self.request_sync(Some(peer));
        }
        Ok(())
    }

    /// Our decided blocks from `from` for a peer (read on the storage thread).
    pub(super) async fn serve_blocks(
        &mut self,
        from: u64,
        max: u32,
    ) -> Result<ChainResponse, ChainError> {
        let blocks = self
            .storage
            .call(move |s| s.blocks_from(from, max.min(MAX_SYNC_BLOCKS), MAX_SYNC_BYTES))
            .await??;
        Ok(ChainResponse::Blocks(blocks))
    }
}

/// Whether a consensus message may make us sync toward its height: only a vote whose
/// signature verifies (a message that only passed the gossip checks could name any height and
/// hold sync on an unanswered request again and again). Proposals and certificates do not.
pub fn raises_sync_target(chain_id: &str, msg: &ConsensusMessage) -> bool {
    matches!(msg, ConsensusMessage::Vote(v) if v.verify(chain_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator_peer() -> (PeerId, MemberId) {
        let p = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        (p, member_of(&p).unwrap())
    }

    #[test]
    fn one_request_at_a_time_to_the_best_peer_or_validators_in_turn() {
        let (tx, _rx) = mpsc::channel(1);
        let mut s = BlockSync::new(tx);
        let (v1, m1) = validator_peer();
        let (v2, m2) = validator_peer();
        let (member, _) = validator_peer();
        let validators: BTreeMap<MemberId, u64> = [(m1, 1), (m2, 1)].into_iter().collect();
        assert_eq!(s.target(None, &validators), None); // nobody admitted yet
        for p in [v1, v2, member] {
            s.peer_admitted(p);
        }
        // Validators in turn, never the plain member; one request at a time.
        let a = s.target(None, &validators).unwrap();
        assert_eq!(s.target(None, &validators), None);
        s.finished(&a, true, 5);
        let b = s.target(None, &validators).unwrap();
        assert_ne!(a, b);
        assert!([v1, v2].contains(&a) && [v1, v2].contains(&b));
        s.finished(&b, true, 5);
        // A peer seen ahead of us goes first, until it fails or we catch up.
        s.heard(9, member, 5);
        assert!(s.behind(5));
        assert_eq!(s.target(None, &validators), Some(member));
        s.finished(&member, false, 5);
        assert!(!s.behind(5));
        s.heard(9, member, 5);
        s.peer_gone(&v1);
        s.peer_gone(&v2);
        assert_eq!(s.target(None, &validators), Some(member));
        s.finished(&member, true, 9);
        assert!(!s.behind(9));
        assert_eq!(s.target(None, &validators), None);
    }

    #[test]
    fn only_votes_with_a_valid_signature_raise_the_sync_target() {
        // Before: any message that passed the gossip checks (signatures are not among them)
        // raised the sync target, so a forged far-ahead vote could hold sync.
        use seedfed_protocol::ledger::{vote_digest, Signature64, VoteKind, VoteRecord};
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let me = MemberId(key.verifying_key().to_bytes());
        let mut vote = VoteRecord {
            height: 40,
            round: 0,
            kind: VoteKind::Prevote,
            value: None,
            validator: me,
            signature: Signature64([0; 64]),
        };
        let forged = ConsensusMessage::Vote(vote.clone());
        assert!(!raises_sync_target("chain", &forged));
        let digest = vote_digest("chain", 40, 0, VoteKind::Prevote, None, &me);
        use ed25519_dalek::Signer;
        vote.signature = Signature64(key.sign(&digest).to_bytes());
        let signed = ConsensusMessage::Vote(vote);
        assert!(raises_sync_target("chain", &signed));
        assert!(!raises_sync_target("another-chain", &signed));
    }
}
