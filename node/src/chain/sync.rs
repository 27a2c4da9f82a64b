//! Block sync: a lagging or restarted node fetches decided blocks over request-response
//! ([`ChainRequest::Blocks`]) and applies them after their certificates verify (others' requests
//! are served off the chain task by `block_server`).
//!
//! Guarantees: only a verified vote from a current validator, at most
//! [`MAX_HEIGHTS_AHEAD`] heights ahead, raises the sync target ([`sync_target`]); at most one
//! request in flight; requests go to the peer that showed the highest
//! height ahead of us, else to admitted validators in turn (a bootstrap node or a plain member
//! may not serve blocks, and an unanswered request would hold sync up for its whole timeout);
//! a block applies only through consensus ([`Input::Synced`]: the next height, a certificate
//! that verifies against the current validator set, a block that validates), and a batch stops
//! at the first block that does not; a refusal (a busy or failing server) ends the request like
//! a failure, and sync moves on.

use std::collections::{BTreeMap, BTreeSet};

use libp2p::PeerId;
use seedfed_protocol::consensus::{CommitCertificate, ConsensusMessage, Input};
use seedfed_protocol::ledger::{self, Block};
use seedfed_protocol::member::MemberId;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::driver::{ChainError, Driver};
use super::wire::{
    member_of, peer_of, spawn_ask, ChainRequest, ChainResponse, MAX_HEIGHTS_AHEAD, MAX_SYNC_BLOCKS,
};

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
    /// only with the height [`sync_target`] gives.
    pub fn heard(&mut self, height: u64, author: PeerId, ours: u64) {
        if height > ours && self.best_seen.is_none_or(|(b, _)| height > b) {
            self.best_seen = Some((height, author));
        }
    }

    /// The admitted peers connected now.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.iter()
    }

    /// The highest height a peer showed past ours, if any.
    pub fn best_seen(&self) -> Option<u64> {
        self.best_seen.map(|(h, _)| h)
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
        let pick = |r: ChainResponse| match r {
            ChainResponse::Blocks(b) => Ok(b),
            other => Err(other),
        };
        let results = self.sync.results.clone();
        spawn_ask(&self.network, target, req, pick, results);
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
            // A synced block is no latency sample.
            self.commits.forget(block.height);
            // Counted before it is applied: applying publishes the status, which must not show
            // the new height without the block it came by (taken back if it does not apply).
            self.sync.applied += 1;
            let out = self.consensus.handle(Input::Synced { block, certificate });
            let acted = self.act(out).await;
            if self.consensus.ledger().height() == before {
                self.sync.applied -= 1;
                acted?;
                debug!(%peer, "a synced block did not apply; stopping this batch");
                break;
            }
            acted?;
            applied += 1;
        }
        if applied > 0 {
            info!(%peer, applied, height = self.consensus.ledger().height(), "synced blocks");
            self.publish_status();
        }
        self.sync.finished(&peer, true, self.consensus.height());
        if full && applied > 0 {
            self.request_sync(Some(peer));
        }
        Ok(())
    }
}

/// The height a consensus message may make us sync toward while we decide `ours`, and the
/// peer to ask, or `None`. Only a vote, only from a current validator (`is_validator`), only
/// for a height in `(ours, ours + MAX_HEIGHTS_AHEAD]`, and only if its signature verifies
/// for `chain_id`: a message that merely passed the gossip checks could name any height and
/// hold sync on an unanswered request again and again. The peer is the vote's signer (gossip
/// is anonymous: whoever forwarded it may be behind), which decides that height. The cheap
/// checks on the signer and the height come first, the signature last; heights are
/// attacker-chosen, so the arithmetic saturates. Proposals and certificates do not count.
pub fn sync_target(
    chain_id: &str,
    is_validator: impl Fn(&MemberId) -> bool,
    ours: u64,
    msg: &ConsensusMessage,
) -> Option<(u64, PeerId)> {
    let ConsensusMessage::Vote(v) = msg else {
        return None;
    };
    if !is_validator(&v.validator) {
        return None;
    }
    if v.height <= ours || v.height > ours.saturating_add(MAX_HEIGHTS_AHEAD) {
        return None;
    }
    let peer = peer_of(&v.validator)?;
    v.verify(chain_id).then_some((v.height, peer))
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

    /// A vote by `key` at `height` (signed for `chain` unless `forged`).
    fn vote(key: &ed25519_dalek::SigningKey, height: u64, forged: bool) -> ConsensusMessage {
        use ed25519_dalek::Signer;
        use seedfed_protocol::ledger::{vote_digest, Signature64, VoteKind, VoteRecord};
        let me = MemberId(key.verifying_key().to_bytes());
        let digest = vote_digest("chain", height, 0, VoteKind::Prevote, None, &me);
        let signature = if forged {
            Signature64([0; 64])
        } else {
            Signature64(key.sign(&digest).to_bytes())
        };
        ConsensusMessage::Vote(VoteRecord {
            height,
            round: 0,
            kind: VoteKind::Prevote,
            value: None,
            validator: me,
            signature,
        })
    }

    /// A libp2p identity whose peer id is `key`'s member.
    fn keyed_peer(seed: u8) -> (ed25519_dalek::SigningKey, PeerId) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let mut secret = key.to_bytes();
        let kp = libp2p::identity::Keypair::ed25519_from_bytes(&mut secret).unwrap();
        (key, kp.public().to_peer_id())
    }

    #[test]
    fn only_verified_votes_from_validators_raise_the_sync_target() {
        // Before: any vote whose signature verified raised the sync target, whoever signed it
        // and whatever its height (the validator and height checks were left to the gossip
        // validator), so a vote at u64::MAX signed by a non-validator's own key held sync.
        let (key, peer) = keyed_peer(3);
        let (outsider_key, _) = keyed_peer(4);
        let me = member_of(&peer).unwrap();
        let is_v = |m: &MemberId| *m == me;
        let target = |msg: &ConsensusMessage| sync_target("chain", is_v, 10, msg);
        // A properly signed vote from a validator, ahead of us, raises it, toward the signer.
        assert_eq!(target(&vote(&key, 40, false)), Some((40, peer)));
        // Not from a validator (signed with its own key), at any height: never, and no panic.
        for h in [40, u64::MAX] {
            assert_eq!(target(&vote(&outsider_key, h, false)), None);
        }
        // A bad signature, at any height.
        for h in [40, u64::MAX] {
            assert_eq!(target(&vote(&key, h, true)), None);
        }
        // Signed for another chain.
        assert_eq!(sync_target("other", is_v, 10, &vote(&key, 40, false)), None);
        // Signed, but far ahead (u64::MAX included) or not ahead of us.
        for h in [10 + MAX_HEIGHTS_AHEAD + 1, u64::MAX, 10, 3] {
            assert_eq!(target(&vote(&key, h, false)), None, "{h}");
        }
        assert_eq!(
            target(&vote(&key, 10 + MAX_HEIGHTS_AHEAD, false)),
            Some((10 + MAX_HEIGHTS_AHEAD, peer))
        );
        // At the top of the height range our own height does not overflow the bound.
        assert_eq!(
            sync_target("chain", is_v, u64::MAX - 1, &vote(&key, u64::MAX, false)),
            Some((u64::MAX, peer))
        );
        // The sync state follows: the outsider's vote and a forged one leave us not behind.
        let (tx, _rx) = mpsc::channel(1);
        let mut s = BlockSync::new(tx);
        for m in [
            vote(&outsider_key, u64::MAX, false),
            vote(&key, u64::MAX, true),
        ] {
            if let Some((h, p)) = sync_target("chain", is_v, 10, &m) {
                s.heard(h, p, 10);
            }
        }
        assert!(!s.behind(10));
        if let Some((h, p)) = target(&vote(&key, 12, false)) {
            s.heard(h, p, 10);
        }
        assert!(s.behind(10));
    }
}
