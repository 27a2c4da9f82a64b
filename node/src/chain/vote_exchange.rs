//! Votes exchanged point to point while a height stalls. Gossip carries consensus messages and
//! Malachite re-publishes our votes every few seconds, but under a signing burst gossipsub was
//! seen to stop delivering between two groups of validators for minutes (each group's mesh
//! only its own members, re-published votes never arriving across, neither group a quorum):
//! the chain stopped at one height. So once no block was decided for [`EXCHANGE_AFTER`], and
//! then every [`EXCHANGE_EVERY`], the node sends its own votes of the height to each validator
//! it is connected to over request-response ([`ChainRequest::Votes`], a fresh stream, not the
//! gossip one) and gets that validator's own votes back in the answer. Both sides feed what
//! they get to consensus as if gossiped: only votes of the height being decided, at most
//! [`MAX_EXCHANGED_VOTES`], each by the peer that sent it; Malachite checks every signature
//! and drops what it already holds, so an exchange that finds nothing missing costs nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use libp2p::PeerId;
use seedfed_protocol::consensus::{ConsensusMessage, Input};
use seedfed_protocol::ledger::{self, VoteKind, VoteRecord};
use seedfed_protocol::member::MemberId;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info};

use super::driver::{ChainError, Driver};
use super::wire::{member_of, spawn_ask, ChainRequest, ChainResponse};

/// Time without a decision before the first exchange (a healthy height is decided well
/// within it; a slow one costs a few small requests).
pub const EXCHANGE_AFTER: Duration = Duration::from_secs(6);
/// Time between two exchanges while the height stays undecided.
pub const EXCHANGE_EVERY: Duration = Duration::from_secs(5);
/// Most votes one request or answer carries (a validator votes twice per round; the latest
/// rounds count).
pub const MAX_EXCHANGED_VOTES: usize = 16;

/// The answer to one exchange: the peer asked and its votes, or why there are none.
pub type VoteAnswer = (PeerId, Result<Vec<VoteRecord>, String>);

/// Our own votes at the height being decided, and when we last sent them.
pub struct OwnVotes {
    height: u64,
    votes: BTreeMap<(u32, VoteKind), VoteRecord>,
    /// The height and time of our last exchange.
    last_sent: Option<(u64, Instant)>,
    answers: mpsc::Sender<VoteAnswer>,
}

impl OwnVotes {
    /// Answers to our exchanges go to `answers`.
    pub fn new(answers: mpsc::Sender<VoteAnswer>) -> Self {
        OwnVotes {
            height: 0,
            votes: BTreeMap::new(),
            last_sent: None,
            answers,
        }
    }

    /// Records `vote` if `me` cast it; a vote of a later height forgets the earlier ones.
    pub fn record(&mut self, me: &MemberId, vote: &VoteRecord) {
        if vote.validator != *me || vote.height < self.height {
            return;
        }
        if vote.height > self.height {
            self.height = vote.height;
            self.votes.clear();
        }
        self.votes.insert((vote.round, vote.kind), vote.clone());
    }

    /// Our latest votes at `height` (at most [`MAX_EXCHANGED_VOTES`]).
    pub fn at(&self, height: u64) -> Vec<VoteRecord> {
        if height != self.height {
            return Vec::new();
        }
        let mut v: Vec<VoteRecord> = self
            .votes
            .values()
            .rev()
            .take(MAX_EXCHANGED_VOTES)
            .cloned()
            .collect();
        v.reverse();
        v
    }

    /// Whether an exchange is due at `now` for `height`, `idle` after the last decision (and
    /// if so, remembers that it is made): `Some(first)`, `first` for the height's first one.
    fn due(&mut self, height: u64, idle: Duration, now: Instant) -> Option<bool> {
        let last = self.last_sent.filter(|(h, _)| *h == height);
        if idle < EXCHANGE_AFTER
            || last.is_some_and(|(_, t)| now.duration_since(t) < EXCHANGE_EVERY)
        {
            return None;
        }
        self.last_sent = Some((height, now));
        Some(last.is_none())
    }
}

/// The votes of `votes` that consensus may take from `peer` while it decides `height`: the
/// peer's own, at that height, at most [`MAX_EXCHANGED_VOTES`].
pub fn admissible(peer: &PeerId, height: u64, votes: Vec<VoteRecord>) -> Vec<VoteRecord> {
    let Some(author) = member_of(peer) else {
        return Vec::new();
    };
    votes
        .into_iter()
        .filter(|v| v.validator == author && v.height == height)
        .take(MAX_EXCHANGED_VOTES)
        .collect()
}

impl Driver {
    /// Sends our votes to every connected validator if the height has stalled long enough
    /// ([`OwnVotes::due`]).
    pub(super) fn exchange_votes(&mut self) {
        let height = self.consensus.height();
        let idle = self.last_decided.elapsed();
        let Some(first) = self.own_votes.due(height, idle, Instant::now()) else {
            return;
        };
        let state = &self.consensus.ledger().state;
        let peers: Vec<PeerId> = self
            .sync
            .peers()
            .filter(|p| member_of(p).is_some_and(|m| m != self.me && state.is_validator(&m)))
            .copied()
            .collect();
        let votes = self.own_votes.at(height);
        if first {
            info!(
                height,
                idle_ms = idle.as_millis() as u64,
                votes = votes.len(),
                peers = peers.len(),
                "height undecided: exchanging votes with the validators point to point"
            );
        }
        let req = ledger::encode(&ChainRequest::Votes { height, votes });
        let pick = |r: ChainResponse| match r {
            ChainResponse::Votes(v) => Ok(v),
            other => Err(other),
        };
        for peer in peers {
            let answers = self.own_votes.answers.clone();
            spawn_ask(&self.network, peer, req.clone(), pick, answers);
        }
    }

    /// Feeds `peer`'s votes (from its request or its answer) to consensus.
    pub(super) async fn on_exchanged_votes(
        &mut self,
        peer: PeerId,
        votes: Vec<VoteRecord>,
    ) -> Result<(), ChainError> {
        for v in admissible(&peer, self.consensus.height(), votes) {
            let out = self
                .consensus
                .handle(Input::Message(ConsensusMessage::Vote(v)));
            self.act(out).await?;
        }
        Ok(())
    }

    /// The answer to an exchange: our own votes at `height`.
    pub(super) fn votes_answer(&self, height: u64) -> ChainResponse {
        ChainResponse::Votes(self.own_votes.at(height))
    }

    /// An exchange we started came back.
    pub(super) async fn on_vote_answer(&mut self, answer: VoteAnswer) -> Result<(), ChainError> {
        match answer {
            (peer, Ok(votes)) => self.on_exchanged_votes(peer, votes).await,
            (peer, Err(e)) => {
                debug!(%peer, "vote exchange failed: {e}");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedfed_protocol::ledger::Signature64;

    fn vote(validator: MemberId, height: u64, round: u32, kind: VoteKind) -> VoteRecord {
        VoteRecord {
            height,
            round,
            kind,
            value: None,
            validator,
            signature: Signature64([0; 64]),
        }
    }

    fn validator_peer() -> (PeerId, MemberId) {
        let p = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        (p, member_of(&p).unwrap())
    }

    #[test]
    fn own_votes_of_the_latest_height_only_and_the_latest_rounds_first_to_stay() {
        let (tx, _rx) = mpsc::channel(1);
        let mut own = OwnVotes::new(tx);
        let (_, me) = validator_peer();
        let (_, other) = validator_peer();
        own.record(&me, &vote(me, 5, 0, VoteKind::Prevote));
        own.record(&other, &vote(other, 5, 0, VoteKind::Precommit)); // not ours
        own.record(&me, &vote(me, 5, 0, VoteKind::Precommit));
        assert_eq!(own.at(5).len(), 2);
        assert!(own.at(4).is_empty());
        // A later height forgets the earlier one; an earlier one is ignored.
        own.record(&me, &vote(me, 6, 0, VoteKind::Prevote));
        own.record(&me, &vote(me, 5, 1, VoteKind::Prevote));
        assert!(own.at(5).is_empty());
        assert_eq!(own.at(6), vec![vote(me, 6, 0, VoteKind::Prevote)]);
        // Many rounds: the latest MAX_EXCHANGED_VOTES, in order.
        for r in 1..=20 {
            own.record(&me, &vote(me, 6, r, VoteKind::Prevote));
            own.record(&me, &vote(me, 6, r, VoteKind::Precommit));
        }
        let sent = own.at(6);
        assert_eq!(sent.len(), MAX_EXCHANGED_VOTES);
        assert_eq!(sent.last(), Some(&vote(me, 6, 20, VoteKind::Precommit)));
        assert_eq!(sent[0].round, 13);
    }

    #[test]
    fn an_exchange_waits_for_a_stall_then_repeats_at_its_interval() {
        let (tx, _rx) = mpsc::channel(1);
        let mut own = OwnVotes::new(tx);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(own.due(3, EXCHANGE_AFTER - s(1), t0), None);
        assert_eq!(own.due(3, EXCHANGE_AFTER, t0), Some(true));
        assert_eq!(own.due(3, EXCHANGE_AFTER + s(1), t0 + s(1)), None);
        assert_eq!(
            own.due(3, EXCHANGE_AFTER + EXCHANGE_EVERY, t0 + EXCHANGE_EVERY),
            Some(false)
        );
        // The next height stalls too: its first exchange waits for no interval.
        assert_eq!(
            own.due(4, EXCHANGE_AFTER, t0 + EXCHANGE_EVERY + s(1)),
            Some(true)
        );
    }

    #[test]
    fn only_the_senders_own_votes_of_our_height_are_taken() {
        let (peer, author) = validator_peer();
        let (_, other) = validator_peer();
        let mut votes = vec![
            vote(author, 7, 0, VoteKind::Prevote),
            vote(other, 7, 0, VoteKind::Prevote), // relayed: not taken
            vote(author, 8, 0, VoteKind::Prevote), // another height
        ];
        votes.extend((1..40).map(|r| vote(author, 7, r, VoteKind::Prevote)));
        let taken = admissible(&peer, 7, votes);
        assert_eq!(taken.len(), MAX_EXCHANGED_VOTES);
        assert!(taken.iter().all(|v| v.validator == author && v.height == 7));
        // A peer id that names no Ed25519 key gets nothing in.
        let hashed = PeerId::random();
        assert!(admissible(&hashed, 7, vec![vote(author, 7, 0, VoteKind::Prevote)]).is_empty());
    }
}
