//! Tendermint BFT consensus as a sans-IO state machine around Malachite's core.
//!
//! [`Consensus`] owns one node's [`Ledger`] and a `malachitebft-core-consensus` `State`. The
//! node feeds it [`Input`]s (a message received, a timer fired, transactions for a block it
//! was asked to build) and acts on the returned [`Output`]s **in order**: a
//! [`Output::PersistWal`] must be durable before any later output (a vote or proposal
//! broadcast) is released, which is what keeps a restarted node from equivocating.
//!
//! How Malachite is embedded: its core is a coroutine that yields effects and waits for a
//! resume value. Every effect that needs an answer is pure here (sign with our key, verify a
//! signature or certificate, no vote extensions) and is answered at once; every effect that
//! is I/O (publish, schedule or cancel a timer, append to the WAL, build a value, decide) is
//! turned into an [`Output`] and resumed with `Continue`. So one call runs the coroutine to
//! completion without any runtime, clock or network.
//!
//! The value is the whole block, carried in the proposal message; Malachite runs in
//! `ProposalAndParts` mode so that the block's validity is ours to decide: after a proposal
//! with a valid proposer signature arrives, the block is checked against the ledger and fed
//! back as a `ProposedValue` with that validity. Validators prevote nil on an invalid block.
//! Proposals for a future height are buffered here (bounded) until the ledger reaches the
//! height before it, because validity needs that state.

pub mod certificate;
pub mod context;

use std::collections::BTreeMap;
use std::time::Duration;

use malachitebft_core_consensus as mc;
use malachitebft_core_types as mt;
use malachitebft_signing_ed25519 as ms;
use mc::{Effect, Resumable, Resume};
use mt::{NilOrVal, Round, SignedMessage, Timeout, TimeoutKind, Validity, ValueOrigin, VoteType};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{debug, warn};
use zeroize::Zeroize;

pub use certificate::{CertificateError, CommitCertificate};
pub use context::{
    BlockHash, BlockValue, Height, Proposal, SeedfedContext, Validator, ValidatorSet, Vote,
};

use crate::ledger::{verify_vote_signature, Signature64, VoteKind, VoteRecord};
use crate::ledger::{Block, Ledger, SignedTx};
use crate::member::MemberId;

type Ctx = SeedfedContext;

/// Most distinct candidate blocks validated per height (each costs a ledger validation; only
/// round proposers with a valid signature can add one, so honest runs stay far below).
const MAX_CANDIDATES: usize = 64;

/// A signed proposal as it travels on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalMessage {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Proof-of-lock round, if the block is re-proposed.
    pub pol_round: Option<u32>,
    /// The block.
    pub block: Block,
    /// The proposer.
    pub proposer: MemberId,
    /// Proposer's signature over [`context::proposal_digest`].
    pub signature: Signature64,
}

/// A polka certificate on the wire: prevotes for one block in one round from more than two
/// thirds of the stake. It lets a node that counted an equivocator's other vote still learn
/// of the polka (a lock), which Tendermint's liveness needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolkaMessage {
    /// Height.
    pub height: u64,
    /// Round of the prevotes.
    pub round: u32,
    /// The block prevoted for.
    pub block_hash: [u8; 32],
    /// Prevote signatures.
    pub signatures: Vec<(MemberId, Signature64)>,
}

/// A round certificate on the wire: justifies skipping to (or past) a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundMessage {
    /// Height.
    pub height: u64,
    /// Round of the votes.
    pub round: u32,
    /// `true`: 2f+1 precommits (precommit-any); `false`: f+1 votes of any kind (skip).
    pub precommit: bool,
    /// The votes: (voter, kind, value, signature).
    pub votes: Vec<(MemberId, VoteKind, Option<[u8; 32]>, Signature64)>,
}

/// A consensus message on the wire (encode with [`crate::ledger::encode`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// A proposal.
    Proposal(ProposalMessage),
    /// A prevote or precommit.
    Vote(VoteRecord),
    /// A polka certificate (liveness).
    Polka(PolkaMessage),
    /// A round certificate (liveness).
    Round(RoundMessage),
}

impl ConsensusMessage {
    /// Height the message is about.
    pub fn height(&self) -> u64 {
        match self {
            ConsensusMessage::Proposal(p) => p.height,
            ConsensusMessage::Vote(v) => v.height,
            ConsensusMessage::Polka(p) => p.height,
            ConsensusMessage::Round(r) => r.height,
        }
    }
}

/// Which step a timer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimerKind {
    /// Waiting for a proposal.
    Propose,
    /// Waiting for prevotes.
    Prevote,
    /// Waiting for precommits.
    Precommit,
    /// Rebroadcast own votes (liveness).
    Rebroadcast,
}

/// A timer: (height, round, step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerId {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step.
    pub kind: TimerKind,
}

/// What the write-ahead log records (replayed by [`Consensus::recover`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalEntry {
    /// A proposal that was processed.
    Proposal(ProposalMessage),
    /// A vote that was processed (including our own).
    Vote(VoteRecord),
    /// A block with its validity.
    ProposedValue {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Proof-of-lock round.
        valid_round: Option<u32>,
        /// Proposer.
        proposer: MemberId,
        /// The block.
        block: Block,
        /// Whether it was valid.
        valid: bool,
    },
    /// A timeout that fired.
    Timeout(TimerId),
    /// A polka certificate that was processed.
    Polka(PolkaMessage),
}

/// What the node feeds in.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from a peer.
    Message(ConsensusMessage),
    /// A timer scheduled by [`Output::ScheduleTimer`] fired.
    TimerFired(TimerId),
    /// The answer to [`Output::BuildBlock`]: candidate transactions for the block.
    ProposeTxs {
        /// Height asked for.
        height: u64,
        /// Round asked for.
        round: u32,
        /// Candidate transactions; those that do not apply are dropped.
        txs: Vec<SignedTx>,
    },
    /// A decided block fetched from a peer by block sync, with its commit certificate. It is
    /// applied if it is the next block, its certificate verifies against the current
    /// validator set and the block validates; otherwise it is ignored.
    Synced {
        /// The block.
        block: Block,
        /// Its commit certificate.
        certificate: CommitCertificate,
    },
    /// The answer to [`Output::BuildBlock`] with a ready block (tests use this to propose
    /// invalid blocks).
    ProposeBlock {
        /// Round asked for.
        round: u32,
        /// The block.
        block: Block,
    },
}

/// What the node must do, in order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Gossip this message to all validators.
    Broadcast(ConsensusMessage),
    /// Fire `timer` after `after` (replacing an equal timer).
    ScheduleTimer {
        /// The timer.
        timer: TimerId,
        /// Delay.
        after: Duration,
    },
    /// Cancel one timer.
    CancelTimer(TimerId),
    /// Cancel every timer.
    CancelAllTimers,
    /// Make this durable before acting on any later output.
    PersistWal(WalEntry),
    /// We are the proposer: answer with [`Input::ProposeTxs`].
    BuildBlock {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// A block was decided and applied to the ledger; persist both. The WAL of earlier
    /// heights may then be pruned.
    Decided {
        /// The block.
        block: Block,
        /// Its commit certificate.
        certificate: CommitCertificate,
    },
    /// Malachite saw a validator sign two different votes for one step: ledger evidence for
    /// an `Evict` transaction with [`crate::ledger::Evidence::Equivocation`].
    Equivocation {
        /// One vote.
        a: VoteRecord,
        /// The conflicting vote.
        b: VoteRecord,
    },
    /// A proposed block failed validation (for logs and metrics).
    InvalidProposal {
        /// The proposer.
        proposer: MemberId,
        /// Why (a [`crate::ledger::LedgerError`] rendered as text).
        reason: String,
    },
}

/// Tunables of the state machine.
#[derive(Clone, Copy, Debug)]
pub struct ConsensusParams {
    /// Round timeouts.
    pub timeouts: mt::LinearTimeouts,
    /// Proposals are buffered for at most this many heights ahead.
    pub future_heights: u64,
    /// At most this many buffered proposals per future height.
    pub future_per_height: usize,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        ConsensusParams {
            timeouts: mt::LinearTimeouts::default(),
            future_heights: 2,
            future_per_height: 16,
        }
    }
}

/// Why the consensus state machine could not start.
#[derive(Debug, Error)]
pub enum ConsensusError {
    /// The ledger has no validators.
    #[error("the ledger has no validator")]
    NoValidators,
    /// A WAL entry could not be replayed.
    #[error("WAL entry for height {0} does not match the current height")]
    WalHeight(u64),
}

/// An Ed25519 consensus signing key; prints as `[redacted]` and zeroizes on drop.
pub struct ConsensusKey(ms::PrivateKey);

impl ConsensusKey {
    /// From a 32-byte Ed25519 seed (the same seed as the node's identity key).
    pub fn from_seed(mut seed: [u8; 32]) -> Self {
        let k = ConsensusKey(ms::PrivateKey::from(seed));
        seed.zeroize();
        k
    }

    /// The identity this key signs as.
    pub fn member_id(&self) -> MemberId {
        MemberId(*self.0.public_key().as_bytes())
    }

    fn sign(&self, digest: &[u8; 32]) -> ms::Signature {
        self.0.sign(digest)
    }
}

impl std::fmt::Debug for ConsensusKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for ConsensusKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

struct Candidate {
    block: Block,
    valid: bool,
    messages: Vec<ProposalMessage>,
}

/// One node's consensus + ledger state machine.
pub struct Consensus {
    ctx: Ctx,
    key: ConsensusKey,
    me: MemberId,
    ledger: Ledger,
    state: mc::State<Ctx>,
    params: ConsensusParams,
    height: u64,
    candidates: BTreeMap<BlockHash, Candidate>,
    future: BTreeMap<u64, Vec<ProposalMessage>>,
    last_certificate: Option<CommitCertificate>,
}

/// Effects that become outputs or need work after the coroutine returns (short-lived).
#[allow(clippy::large_enum_variant)]
enum Pending {
    Out(Output),
    Decided(mt::CommitCertificate<Ctx>),
    Restream(BlockHash),
}

impl Consensus {
    /// A node at the ledger's tip, about to start the next height. `last_certificate` is the
    /// commit certificate of the tip block (`None` at genesis). Call [`Consensus::start`]
    /// next (or use [`Consensus::recover`] after a restart).
    pub fn new(
        ledger: Ledger,
        last_certificate: Option<CommitCertificate>,
        key: ConsensusKey,
        params: ConsensusParams,
    ) -> Result<Self, ConsensusError> {
        let ctx = SeedfedContext::new(&ledger.state.chain_id);
        let me = key.member_id();
        let height = ledger.height() + 1;
        let set = ValidatorSet::from_stakes(&ledger.state.validators());
        if mt::ValidatorSet::<Ctx>::count(&set) == 0 {
            return Err(ConsensusError::NoValidators);
        }
        let state = mc::State::new(
            ctx.clone(),
            Height(height),
            set,
            mc::Params {
                address: me,
                threshold_params: mt::ThresholdParams::default(),
                value_payload: mt::ValuePayload::ProposalAndParts,
                enabled: true,
            },
            1024,
            256,
        );
        Ok(Consensus {
            ctx,
            key,
            me,
            ledger,
            state,
            params,
            height,
            candidates: BTreeMap::new(),
            future: BTreeMap::new(),
            last_certificate,
        })
    }

    /// Starts the current height.
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.start_height(false, &mut out);
        out
    }

    /// Restarts after a crash: starts the current height in restart mode and replays the WAL
    /// entries recorded for it, so that the node re-derives (and re-signs identically) the
    /// votes it already sent instead of signing conflicting ones.
    pub fn recover(&mut self, wal: Vec<WalEntry>) -> Result<Vec<Output>, ConsensusError> {
        let mut inputs = Vec::new();
        let mut proposals = Vec::new();
        for e in wal {
            if let WalEntry::Proposal(p) = &e {
                proposals.push(p.clone());
            }
            let (h, input) = self.wal_to_input(e);
            if h != self.height {
                return Err(ConsensusError::WalHeight(h));
            }
            if let Some(i) = input {
                inputs.push(i);
            }
        }
        let mut out = Vec::new();
        self.start_height(true, &mut out);
        self.state.index_wal_entries(inputs.iter());
        for i in inputs {
            self.run(i, &mut out);
        }
        self.state.reset_entries_index();
        // A crash between persisting a proposal and persisting its validity leaves a proposal
        // without a value: validate it again (Malachite ignores the repeated proposal).
        for p in proposals {
            if !self.candidates.contains_key(&BlockHash(p.block.hash())) {
                self.on_proposal(p, &mut out);
            }
        }
        Ok(out)
    }

    /// The identity of this node.
    pub fn id(&self) -> MemberId {
        self.me
    }

    /// The height being decided.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The current round.
    pub fn round(&self) -> i64 {
        self.state.round().as_i64()
    }

    /// The ledger (state after the last decided block).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Commit certificate of the last decided block.
    pub fn last_certificate(&self) -> Option<&CommitCertificate> {
        self.last_certificate.as_ref()
    }

    /// Handles one input and returns what to do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Message(ConsensusMessage::Proposal(p)) => self.on_proposal(p, &mut out),
            Input::Message(ConsensusMessage::Vote(v)) => {
                if v.height >= self.height {
                    if let Some(sv) = self.signed_vote(&v) {
                        self.run(mc::Input::Vote(sv), &mut out);
                    }
                }
            }
            Input::Message(ConsensusMessage::Polka(p)) => {
                if p.height >= self.height && p.round <= u32::MAX / 2 {
                    self.run(mc::Input::PolkaCertificate(polka_from_wire(&p)), &mut out);
                }
            }
            Input::Message(ConsensusMessage::Round(r)) => {
                if r.height >= self.height && r.round <= u32::MAX / 2 {
                    self.run(mc::Input::RoundCertificate(round_from_wire(&r)), &mut out);
                }
            }
            Input::TimerFired(t) => {
                if t.height == self.height {
                    let kind = match t.kind {
                        TimerKind::Propose => TimeoutKind::Propose,
                        TimerKind::Prevote => TimeoutKind::Prevote,
                        TimerKind::Precommit => TimeoutKind::Precommit,
                        TimerKind::Rebroadcast => TimeoutKind::Rebroadcast,
                    };
                    let timeout = Timeout::new(Round::new(t.round), kind);
                    self.run(mc::Input::TimeoutElapsed(timeout), &mut out);
                }
            }
            Input::ProposeTxs { height, round, txs } => {
                if height != self.height {
                    return out;
                }
                let commit = self
                    .last_certificate
                    .as_ref()
                    .map(|c| c.commit_info())
                    .unwrap_or_default();
                match self.ledger.build_block(self.me, commit, txs) {
                    Ok((block, rejected)) => {
                        for (_, e) in rejected {
                            debug!(reason = %e, "dropped transaction from block");
                        }
                        self.propose_block(round, block, &mut out);
                    }
                    Err(e) => warn!(reason = %e, "could not build a block"),
                }
            }
            Input::ProposeBlock { round, block } => self.propose_block(round, block, &mut out),
            Input::Synced { block, certificate } => self.on_synced(block, certificate, &mut out),
        }
        out
    }

    fn on_synced(&mut self, block: Block, certificate: CommitCertificate, out: &mut Vec<Output>) {
        if block.height != self.height
            || certificate.height != block.height
            || certificate.block_hash != block.hash()
        {
            return;
        }
        let validators = self.ledger.state.validators();
        if let Err(e) = certificate.verify(self.ctx.chain_id(), &validators) {
            debug!(reason = %e, "synced block with a bad certificate ignored");
            return;
        }
        if let Err(e) = self.ledger.apply_block(&block) {
            warn!(reason = %e, "certified block does not apply");
            return;
        }
        out.push(Output::Decided {
            block,
            certificate: certificate.clone(),
        });
        self.advance(certificate, out);
    }

    fn advance(&mut self, certificate: CommitCertificate, out: &mut Vec<Output>) {
        self.last_certificate = Some(certificate);
        self.candidates.clear();
        self.height += 1;
        self.start_height(false, out);
    }

    fn propose_block(&mut self, round: u32, block: Block, out: &mut Vec<Output>) {
        if block.height != self.height {
            return;
        }
        let value = BlockValue::new(block.clone());
        let valid = self.ledger.validate_block(&block).is_ok();
        self.candidates.entry(value.hash()).or_insert(Candidate {
            block,
            valid,
            messages: Vec::new(),
        });
        let lpv = mc::LocallyProposedValue::new(Height(self.height), Round::new(round), value);
        self.run(mc::Input::Propose(lpv), out);
    }

    fn on_proposal(&mut self, p: ProposalMessage, out: &mut Vec<Output>) {
        if p.height < self.height {
            return;
        }
        if p.height > self.height {
            if p.height <= self.height + self.params.future_heights {
                let buf = self.future.entry(p.height).or_default();
                if buf.len() < self.params.future_per_height && !buf.contains(&p) {
                    buf.push(p);
                }
            }
            return;
        }
        let value = BlockValue::new(p.block.clone());
        let proposal = Proposal {
            height: Height(p.height),
            round: Round::new(p.round),
            value: value.clone(),
            pol_round: p.pol_round.map_or(Round::Nil, Round::new),
            proposer: p.proposer,
        };
        let digest = context::proposal_sign_digest(self.ctx.chain_id(), &proposal);
        if !verify_vote_signature(&p.proposer, &digest, &p.signature) {
            debug!(proposer = %p.proposer, "proposal with a bad signature dropped");
            return;
        }
        // Only the round's proposer may make us validate (and store) a block.
        if p.round > u32::MAX / 2
            || *self.state.get_proposer(Height(p.height), proposal.round) != p.proposer
        {
            return;
        }
        let hash = value.hash();
        if !self.candidates.contains_key(&hash) && self.candidates.len() >= MAX_CANDIDATES {
            debug!(proposer = %p.proposer, "too many candidate blocks at this height");
            return;
        }
        let valid = match self.candidates.get_mut(&hash) {
            Some(c) => {
                if !c.messages.contains(&p) && c.messages.len() < 8 {
                    c.messages.push(p.clone());
                }
                c.valid
            }
            None => {
                // The block's proposer field names who built it; a re-proposal (with a
                // proof-of-lock round) carries a block built by an earlier proposer.
                let valid = match self.ledger.validate_block(&p.block) {
                    Ok(_) => true,
                    Err(e) => {
                        out.push(Output::InvalidProposal {
                            proposer: p.proposer,
                            reason: e.to_string(),
                        });
                        false
                    }
                };
                self.candidates.insert(
                    hash,
                    Candidate {
                        block: p.block.clone(),
                        valid,
                        messages: vec![p.clone()],
                    },
                );
                valid
            }
        };
        let signed = SignedMessage::new(proposal, ms::Signature::from_bytes(p.signature.0));
        self.run(mc::Input::Proposal(signed), out);
        let pv = mc::ProposedValue {
            height: Height(p.height),
            round: Round::new(p.round),
            valid_round: p.pol_round.map_or(Round::Nil, Round::new),
            proposer: p.proposer,
            value,
            validity: Validity::from_bool(valid),
        };
        self.run(mc::Input::ProposedValue(pv, ValueOrigin::Consensus), out);
    }

    fn signed_vote(&self, v: &VoteRecord) -> Option<mt::SignedVote<Ctx>> {
        let vote = Vote {
            height: Height(v.height),
            round: Round::new(v.round),
            value: v
                .value
                .map_or(NilOrVal::Nil, |h| NilOrVal::Val(BlockHash(h))),
            vote_type: match v.kind {
                VoteKind::Prevote => VoteType::Prevote,
                VoteKind::Precommit => VoteType::Precommit,
            },
            validator: v.validator,
        };
        if v.round > u32::MAX / 2 {
            return None;
        }
        Some(SignedMessage::new(
            vote,
            ms::Signature::from_bytes(v.signature.0),
        ))
    }

    fn start_height(&mut self, is_restart: bool, out: &mut Vec<Output>) {
        let set = ValidatorSet::from_stakes(&self.ledger.state.validators());
        self.run(
            mc::Input::StartHeight(
                Height(self.height),
                set,
                is_restart,
                None,
                mt::VoteExtensionPolicy::Disabled,
            ),
            out,
        );
        let buffered = self.future.remove(&self.height).unwrap_or_default();
        self.future.retain(|h, _| *h > self.height);
        for p in buffered {
            self.on_proposal(p, out);
        }
    }

    /// Runs one Malachite input to completion, answering its effects.
    fn run(&mut self, input: mc::Input<Ctx>, out: &mut Vec<Output>) {
        let mut pending: Vec<Pending> = Vec::new();
        {
            let ctx = &self.ctx;
            let key = &self.key;
            let height = self.height;
            let timeouts = self.params.timeouts;
            let pending = &mut pending;
            let result: Result<(), mc::Error<Ctx>> = mc::process!(
                input: input,
                state: &mut self.state,
                metrics: &(),
                with: effect => answer(ctx, key, height, &timeouts, pending, effect)
            );
            if let Err(e) = result {
                warn!(error = %e, "consensus core rejected an input");
            }
        }
        for p in pending {
            match p {
                Pending::Out(o) => out.push(o),
                Pending::Restream(hash) => {
                    if let Some(c) = self.candidates.get(&hash) {
                        for m in &c.messages {
                            out.push(Output::Broadcast(ConsensusMessage::Proposal(m.clone())));
                        }
                    }
                }
                Pending::Decided(cert) => self.on_decided(cert, out),
            }
        }
    }

    fn on_decided(&mut self, cert: mt::CommitCertificate<Ctx>, out: &mut Vec<Output>) {
        let Some(candidate) = self.candidates.remove(&cert.value_id) else {
            warn!(height = self.height, "decided a block we do not have");
            return;
        };
        if let Err(e) = self.ledger.apply_block(&candidate.block) {
            // Only blocks we validated are voted for, so this means a bug; do not advance.
            warn!(height = self.height, reason = %e, "decided block does not apply");
            return;
        }
        let certificate = CommitCertificate::from_malachite(&cert);
        out.push(Output::Decided {
            block: candidate.block,
            certificate: certificate.clone(),
        });
        self.advance(certificate, out);
    }

    fn wal_to_input(&mut self, e: WalEntry) -> (u64, Option<mc::Input<Ctx>>) {
        match e {
            WalEntry::Proposal(p) => {
                let h = p.height;
                let proposal = Proposal {
                    height: Height(p.height),
                    round: Round::new(p.round),
                    value: BlockValue::new(p.block),
                    pol_round: p.pol_round.map_or(Round::Nil, Round::new),
                    proposer: p.proposer,
                };
                let signed = SignedMessage::new(proposal, ms::Signature::from_bytes(p.signature.0));
                (h, Some(mc::Input::Proposal(signed)))
            }
            WalEntry::Vote(v) => (v.height, self.signed_vote(&v).map(mc::Input::Vote)),
            WalEntry::ProposedValue {
                height,
                round,
                valid_round,
                proposer,
                block,
                valid,
            } => {
                let value = BlockValue::new(block.clone());
                self.candidates.entry(value.hash()).or_insert(Candidate {
                    block,
                    valid,
                    messages: Vec::new(),
                });
                let pv = mc::ProposedValue {
                    height: Height(height),
                    round: Round::new(round),
                    valid_round: valid_round.map_or(Round::Nil, Round::new),
                    proposer,
                    value,
                    validity: Validity::from_bool(valid),
                };
                (
                    height,
                    Some(mc::Input::ProposedValue(pv, ValueOrigin::Consensus)),
                )
            }
            WalEntry::Polka(p) => (
                p.height,
                Some(mc::Input::PolkaCertificate(polka_from_wire(&p))),
            ),
            WalEntry::Timeout(t) => {
                let kind = match t.kind {
                    TimerKind::Propose => TimeoutKind::Propose,
                    TimerKind::Prevote => TimeoutKind::Prevote,
                    TimerKind::Precommit => TimeoutKind::Precommit,
                    TimerKind::Rebroadcast => TimeoutKind::Rebroadcast,
                };
                (
                    t.height,
                    Some(mc::Input::TimeoutElapsed(Timeout::new(
                        Round::new(t.round),
                        kind,
                    ))),
                )
            }
        }
    }
}

fn to_timer(height: u64, t: &Timeout) -> Option<TimerId> {
    let kind = match t.kind {
        TimeoutKind::Propose => TimerKind::Propose,
        TimeoutKind::Prevote => TimerKind::Prevote,
        TimeoutKind::Precommit => TimerKind::Precommit,
        TimeoutKind::Rebroadcast => TimerKind::Rebroadcast,
        // Only used with a target block time, which we never set.
        TimeoutKind::FinalizeHeight(_) => return None,
    };
    Some(TimerId {
        height,
        round: t.round.as_u32()?,
        kind,
    })
}

fn vote_record(sv: &mt::SignedVote<Ctx>) -> Option<VoteRecord> {
    Some(VoteRecord {
        height: sv.message.height.0,
        round: sv.message.round.as_u32()?,
        kind: context::vote_kind(sv.message.vote_type),
        value: match &sv.message.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(h) => Some(h.0),
        },
        validator: sv.message.validator,
        signature: Signature64(sv.signature.to_bytes()),
    })
}

fn proposal_message(sp: &mt::SignedProposal<Ctx>) -> Option<ProposalMessage> {
    Some(ProposalMessage {
        height: sp.message.height.0,
        round: sp.message.round.as_u32()?,
        pol_round: sp.message.pol_round.as_u32(),
        block: sp.message.value.block().clone(),
        proposer: sp.message.proposer,
        signature: Signature64(sp.signature.to_bytes()),
    })
}

fn broadcast_vote(sv: &mt::SignedVote<Ctx>, pending: &mut Vec<Pending>) {
    if let Some(v) = vote_record(sv) {
        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Vote(v))));
    }
}

/// Answers one Malachite effect: pure effects at once, I/O effects become outputs.
fn answer(
    ctx: &Ctx,
    key: &ConsensusKey,
    height: u64,
    timeouts: &mt::LinearTimeouts,
    pending: &mut Vec<Pending>,
    effect: Effect<Ctx>,
) -> Result<Resume<Ctx>, std::convert::Infallible> {
    let chain = ctx.chain_id();
    Ok(match effect {
        Effect::CancelAllTimeouts(r) => {
            pending.push(Pending::Out(Output::CancelAllTimers));
            r.resume_with(())
        }
        Effect::CancelTimeout(t, r) => {
            if let Some(timer) = to_timer(height, &t) {
                pending.push(Pending::Out(Output::CancelTimer(timer)));
            }
            r.resume_with(())
        }
        Effect::ScheduleTimeout(t, r) => {
            if let Some(timer) = to_timer(height, &t) {
                pending.push(Pending::Out(Output::ScheduleTimer {
                    timer,
                    after: timeouts.duration_for(t),
                }));
            }
            r.resume_with(())
        }
        Effect::StartRound(_, _, _, _, r) => r.resume_with(()),
        Effect::PublishConsensusMsg(msg, r) => {
            match msg {
                mc::SignedConsensusMsg::Vote(sv) => broadcast_vote(&sv, pending),
                mc::SignedConsensusMsg::Proposal(sp) => {
                    if let Some(p) = proposal_message(&sp) {
                        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Proposal(
                            p,
                        ))));
                    }
                }
            }
            r.resume_with(())
        }
        Effect::PublishLivenessMsg(msg, r) => {
            match msg {
                mc::LivenessMsg::Vote(sv) => broadcast_vote(&sv, pending),
                mc::LivenessMsg::PolkaCertificate(c) => {
                    if let Some(p) = polka_to_wire(&c) {
                        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Polka(p))));
                    }
                }
                mc::LivenessMsg::SkipRoundCertificate(c) => {
                    if let Some(r) = round_to_wire(&c) {
                        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Round(r))));
                    }
                }
            }
            r.resume_with(())
        }
        Effect::RepublishVote(sv, r) => {
            broadcast_vote(&sv, pending);
            r.resume_with(())
        }
        Effect::RepublishRoundCertificate(c, r) => {
            if let Some(m) = round_to_wire(&c) {
                pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Round(m))));
            }
            r.resume_with(())
        }
        Effect::GetValue(h, round, _, r) => {
            if let Some(round) = round.as_u32() {
                pending.push(Pending::Out(Output::BuildBlock { height: h.0, round }));
            }
            r.resume_with(())
        }
        Effect::RestreamProposal(_, _, _, _, value_id, r) => {
            pending.push(Pending::Restream(value_id));
            r.resume_with(())
        }
        Effect::CertVerifiedSyncValue(_, _, r) => r.resume_with(()),
        Effect::CertRejectedSyncValue(_, _, _, r) => r.resume_with(()),
        Effect::Decide(cert, _, r) => {
            pending.push(Pending::Decided(cert));
            r.resume_with(())
        }
        Effect::SignVote(vote, r) => {
            // Votes with an undefined round are never produced by the core.
            let digest = context::vote_sign_digest(chain, &vote).unwrap_or([0; 32]);
            let sig = key.sign(&digest);
            r.resume_with(SignedMessage::new(vote, sig))
        }
        Effect::SignProposal(p, r) => {
            let sig = key.sign(&context::proposal_sign_digest(chain, &p));
            r.resume_with(SignedMessage::new(p, sig))
        }
        Effect::VerifySignature(msg, pk, r) => {
            let digest = match &msg.message {
                mc::ConsensusMsg::Vote(v) => context::vote_sign_digest(chain, v),
                mc::ConsensusMsg::Proposal(p) => Some(context::proposal_sign_digest(chain, p)),
            };
            let ok = digest.is_some_and(|d| pk.verify(&d, &msg.signature).is_ok());
            r.resume_with(ok)
        }
        Effect::VerifyCommitCertificate(c, set, tp, r) => {
            r.resume_with(certificate::verify_commit(chain, &c, &set, tp))
        }
        Effect::VerifyExtendedCommitCertificate(c, set, tp, _, r) => r.resume_with(
            certificate::verify_commit(chain, &c.trim_vote_extensions(), &set, tp),
        ),
        Effect::VerifyPolkaCertificate(c, set, tp, r) => {
            r.resume_with(certificate::verify_polka(chain, &c, &set, tp))
        }
        Effect::VerifyRoundCertificate(c, set, tp, r) => {
            r.resume_with(certificate::verify_round(chain, &c, &set, tp))
        }
        Effect::WalAppend(h, input, r) => {
            if let Some(entry) = wal_entry(h.0, input) {
                pending.push(Pending::Out(Output::PersistWal(entry)));
            }
            r.resume_with(())
        }
        Effect::ExtendVote(_, _, _, _, r) => r.resume_with(None),
        Effect::VerifyVoteExtension(_, _, _, _, _, _, r) => r.resume_with(Ok(())),
        Effect::Finalize(_, _, evidence, r) => {
            for (_, doubles) in &evidence.votes {
                for (a, b) in doubles {
                    if let (Some(a), Some(b)) = (vote_record(a), vote_record(b)) {
                        pending.push(Pending::Out(Output::Equivocation { a, b }));
                    }
                }
            }
            r.resume_with(())
        }
    })
}

fn wal_entry(height: u64, input: mc::Input<Ctx>) -> Option<WalEntry> {
    match input {
        mc::Input::Proposal(sp) => proposal_message(&sp).map(WalEntry::Proposal),
        mc::Input::Vote(sv) => vote_record(&sv).map(WalEntry::Vote),
        mc::Input::ProposedValue(pv, _) => Some(WalEntry::ProposedValue {
            height: pv.height.0,
            round: pv.round.as_u32()?,
            valid_round: pv.valid_round.as_u32(),
            proposer: pv.proposer,
            block: pv.value.block().clone(),
            valid: pv.validity.is_valid(),
        }),
        mc::Input::TimeoutElapsed(t) => to_timer(height, &t).map(WalEntry::Timeout),
        mc::Input::PolkaCertificate(c) => polka_to_wire(&c).map(WalEntry::Polka),
        // Not persisted by the core (round certificates) or never fed (sync values).
        _ => None,
    }
}

fn polka_to_wire(c: &mt::PolkaCertificate<Ctx>) -> Option<PolkaMessage> {
    Some(PolkaMessage {
        height: c.height.0,
        round: c.round.as_u32()?,
        block_hash: c.value_id.0,
        signatures: c
            .polka_signatures
            .iter()
            .map(|s| (s.address, Signature64(s.signature.to_bytes())))
            .collect(),
    })
}

fn polka_from_wire(p: &PolkaMessage) -> mt::PolkaCertificate<Ctx> {
    mt::PolkaCertificate {
        height: Height(p.height),
        round: Round::new(p.round),
        value_id: BlockHash(p.block_hash),
        polka_signatures: p
            .signatures
            .iter()
            .map(|(m, s)| mt::PolkaSignature::new(*m, ms::Signature::from_bytes(s.0)))
            .collect(),
    }
}

fn round_to_wire(c: &mt::RoundCertificate<Ctx>) -> Option<RoundMessage> {
    Some(RoundMessage {
        height: c.height.0,
        round: c.round.as_u32()?,
        precommit: c.cert_type == mt::RoundCertificateType::Precommit,
        votes: c
            .round_signatures
            .iter()
            .map(|s| {
                (
                    s.address,
                    context::vote_kind(s.vote_type),
                    match &s.value_id {
                        NilOrVal::Nil => None,
                        NilOrVal::Val(h) => Some(h.0),
                    },
                    Signature64(s.signature.to_bytes()),
                )
            })
            .collect(),
    })
}

fn round_from_wire(r: &RoundMessage) -> mt::RoundCertificate<Ctx> {
    mt::RoundCertificate {
        height: Height(r.height),
        round: Round::new(r.round),
        cert_type: if r.precommit {
            mt::RoundCertificateType::Precommit
        } else {
            mt::RoundCertificateType::Skip
        },
        round_signatures: r
            .votes
            .iter()
            .map(|(m, kind, value, s)| {
                mt::RoundSignature::new(
                    match kind {
                        VoteKind::Prevote => VoteType::Prevote,
                        VoteKind::Precommit => VoteType::Precommit,
                    },
                    value.map_or(NilOrVal::Nil, |h| NilOrVal::Val(BlockHash(h))),
                    *m,
                    ms::Signature::from_bytes(s.0),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ledger::{
        decode, encode, EpochParams, Genesis, GenesisValidator, KeyParams, Tx, TxBody,
    };

    fn solo() -> (Consensus, ed25519_dalek::SigningKey) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let id = MemberId(sk.verifying_key().to_bytes());
        let g = Genesis {
            chain_id: "solo".into(),
            pow_difficulty: 0,
            validators: vec![GenesisValidator {
                id,
                stake: 10,
                x25519: [0; 32],
            }],
            key: KeyParams {
                tree_height: 5,
                sector_bits: 0,
                leaf_threshold: 1,
                leaf_holders: 1,
            },
            eviction_missed_heights: 10,
            epochs: EpochParams::default(),
        };
        let ledger = Ledger::from_genesis(&g).unwrap();
        let c = Consensus::new(
            ledger,
            None,
            ConsensusKey::from_seed([3; 32]),
            ConsensusParams::default(),
        )
        .unwrap();
        (c, sk)
    }

    /// The node's loop in miniature: a single validator builds, signs, persists and decides.
    #[test]
    fn single_validator_decides_with_wal_before_broadcast() {
        let (mut c, sk) = solo();
        assert_eq!(format!("{:?}", c.key), "[redacted]");
        let mut out = c.start();
        let mut decided = Vec::new();
        for _ in 0..3 {
            let (height, round) = out
                .iter()
                .find_map(|o| match o {
                    Output::BuildBlock { height, round } => Some((*height, *round)),
                    _ => None,
                })
                .expect("asked to build a block");
            let nonce = c.ledger().state.members[&c.id()].nonce;
            let tx = Tx {
                author: c.id(),
                nonce,
                body: TxBody::Exit, // rejected (last validator): dropped from the block
            }
            .sign("solo", &sk);
            out = c.handle(Input::ProposeTxs {
                height,
                round,
                txs: vec![tx],
            });
            let first_wal = out.iter().position(|o| matches!(o, Output::PersistWal(_)));
            let first_vote = out
                .iter()
                .position(|o| matches!(o, Output::Broadcast(ConsensusMessage::Vote(_))));
            assert!(first_wal.unwrap() < first_vote.unwrap());
            for o in &out {
                if let Output::Decided { block, certificate } = o {
                    assert!(block.txs.is_empty());
                    certificate
                        .verify("solo", &[(c.id(), 10)].into_iter().collect())
                        .unwrap();
                    decided.push(block.height);
                }
            }
        }
        assert_eq!(decided, vec![1, 2, 3]);
        assert_eq!(c.height(), 4);
        assert_eq!(c.ledger().height(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Decoding arbitrary bytes as a wire message never panics, and whatever decodes
        /// re-encodes to a value that decodes to itself.
        #[test]
        fn wire_decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(m) = decode::<ConsensusMessage>(&bytes) {
                let again: ConsensusMessage = decode(&encode(&m)).unwrap();
                prop_assert_eq!(again, m);
            }
        }
    }
}
