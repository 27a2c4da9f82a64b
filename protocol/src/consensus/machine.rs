//! One node's consensus state machine: Malachite's core plus the ledger it orders blocks for.
//!
//! [`Consensus`] validates every proposed block against its ledger before it votes (invalid
//! blocks get a nil prevote), applies a block only once a commit certificate decides it, and
//! buffers a bounded number of proposals for future heights. One call to
//! [`Consensus::handle`] runs the core to completion; nothing here blocks or does I/O.

use std::collections::BTreeMap;

use malachitebft_core_consensus as mc;
use malachitebft_core_types as mt;
use malachitebft_signing_ed25519 as ms;
use mt::{Round, SignedMessage, Validity, ValueOrigin};
use thiserror::Error;
use tracing::{debug, warn};

use super::effect::{answer, Pending};
use super::io::{to_timeout, Input, Output, WalEntry};
use super::key::ConsensusKey;
use super::message::{polka_from_wire, round_from_wire, signed_vote, ProposalMessage};
use super::{context, BlockHash, BlockValue, CommitCertificate, ConsensusMessage, Ctx};
use super::{Height, Proposal, SeedfedContext, ValidatorSet};
use crate::ledger::{Block, Ledger, SigCache, Validated};
use crate::member::MemberId;

/// Most distinct candidate blocks validated per height (each costs a ledger validation; only
/// round proposers with a valid signature can add one, so honest runs stay far below).
const MAX_CANDIDATES: usize = 64;

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

/// Where the consensus core stands at the height being decided ([`Consensus::round_view`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundView {
    /// The height being decided.
    pub height: u64,
    /// The height Malachite's core is at (equal to `height` unless something is wrong).
    pub core_height: u64,
    /// The current round (-1 before the height starts).
    pub round: i64,
    /// The core's step in that round: unstarted, propose, prevote, precommit or commit.
    pub step: String,
    /// Voting power of the prevotes received in this round (ours included).
    pub prevote_power: u64,
    /// Voting power of the precommits received in this round (ours included).
    pub precommit_power: u64,
    /// Voting power of the whole validator set (a quorum is more than two thirds of it).
    pub total_power: u64,
    /// Validators heard from in this round (any vote).
    pub voters: Vec<MemberId>,
    /// Later heights for which messages wait (votes in the core, proposals here).
    pub buffered_heights: usize,
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

/// A block proposed at the current height: whether it validated against the ledger (with the
/// state it leads to, installed as is if it is decided), and the proposal messages that
/// carried it (re-broadcast when Malachite restreams the proposal).
struct Candidate {
    block: Block,
    validated: Option<Box<Validated>>,
    messages: Vec<ProposalMessage>,
}

impl Candidate {
    fn valid(&self) -> bool {
        self.validated.is_some()
    }
}

/// One node's consensus + ledger state machine.
pub struct Consensus {
    ctx: Ctx,
    /// Visible to the tests, which check that it prints redacted.
    pub(super) key: ConsensusKey,
    me: MemberId,
    ledger: Ledger,
    state: mc::State<Ctx>,
    params: ConsensusParams,
    height: u64,
    candidates: BTreeMap<BlockHash, Candidate>,
    future: BTreeMap<u64, Vec<ProposalMessage>>,
    last_certificate: Option<CommitCertificate>,
    /// Transactions, votes and proposals whose signatures this node checked (gossip, API,
    /// consensus, blocks): each is verified once, not again in every block (or last commit)
    /// that carries it.
    sigs: SigCache,
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
            sigs: SigCache::default(),
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

    /// Where the core stands in the current round: its step and the votes it holds (for
    /// `/status`, and for the report a node logs when no block was decided for a while).
    pub fn round_view(&self) -> RoundView {
        let driver = &self.state.driver;
        // Malachite's step type is not exported; its names are these words.
        let step = format!("{:?}", driver.step()).to_lowercase();
        let mut view = RoundView {
            height: self.height,
            core_height: self.state.height().0,
            round: self.round(),
            step,
            total_power: mt::ValidatorSet::<Ctx>::total_voting_power(driver.validator_set()),
            buffered_heights: self.state.input_queue.len() + self.future.len(),
            ..RoundView::default()
        };
        if let Some(r) = driver.votes().per_round(driver.round()) {
            view.prevote_power = r.votes().weight_sum(mt::VoteType::Prevote);
            view.precommit_power = r.votes().weight_sum(mt::VoteType::Precommit);
            view.voters = r.addresses_weights().get_inner().keys().copied().collect();
        }
        view
    }

    /// The ledger (state after the last decided block).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Commit certificate of the last decided block.
    pub fn last_certificate(&self) -> Option<&CommitCertificate> {
        self.last_certificate.as_ref()
    }

    /// Remembers that `tx`'s signature was checked, so that blocks carrying it do not check it
    /// again. Only for a transaction whose `verify` the caller has just seen succeed (the
    /// gossip validator, the API handler) or that this node signed: see
    /// [`SigCache::remember_verified`].
    pub fn remember_verified(&mut self, tx: &crate::ledger::SignedTx) {
        self.sigs.remember_verified(tx, &self.ledger.state.chain_id);
    }

    /// The ledger with the cache of checks that passed, for a caller replaying transactions
    /// on a copy of the state ([`LedgerState::apply_tx_with`](crate::ledger::LedgerState::apply_tx_with)).
    pub fn ledger_and_checks(&mut self) -> (&Ledger, &mut SigCache) {
        (&self.ledger, &mut self.sigs)
    }

    /// Checks `tx`'s signature under this chain (answered from the cache when it was checked
    /// before), and remembers it once it passed, for the block that carries it.
    pub fn check_signature(
        &mut self,
        tx: &crate::ledger::SignedTx,
    ) -> Result<(), crate::ledger::LedgerError> {
        self.sigs.verify(tx, &self.ledger.state.chain_id)
    }

    /// Handles one input and returns what to do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Message(ConsensusMessage::Proposal(p)) => self.on_proposal(p, &mut out),
            Input::Message(ConsensusMessage::Vote(v)) => {
                if v.height >= self.height {
                    if let Some(sv) = signed_vote(&v) {
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
                    self.run(mc::Input::TimeoutElapsed(to_timeout(&t)), &mut out);
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
                match self
                    .ledger
                    .build_block_with(self.me, commit, txs, &mut self.sigs)
                {
                    Ok(built) => {
                        for (_, e) in built.rejected {
                            debug!(reason = %e, "dropped transaction from block");
                        }
                        self.propose_validated(round, built.block, Some(built.validated), &mut out);
                    }
                    Err(e) => warn!(reason = %e, "could not build a block"),
                }
            }
            Input::ProposeBlock { round, block } => {
                self.propose_validated(round, block, None, &mut out)
            }
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

    /// Proposes `block`; `validated` is its check against our tip when we just built it
    /// (otherwise it is checked here).
    fn propose_validated(
        &mut self,
        round: u32,
        block: Block,
        validated: Option<Validated>,
        out: &mut Vec<Output>,
    ) {
        if block.height != self.height {
            return;
        }
        let value = BlockValue::new(block.clone());
        let validated = match validated {
            Some(v) => Some(v),
            None => self.ledger.validate_block_with(&block, &mut self.sigs).ok(),
        };
        self.candidates.entry(value.hash()).or_insert(Candidate {
            block,
            validated: validated.map(Box::new),
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
        if !self.sigs.verify_vote(&p.proposer, &digest, &p.signature) {
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
                c.valid()
            }
            None => {
                // The block's proposer field names who built it; a re-proposal (with a
                // proof-of-lock round) carries a block built by an earlier proposer.
                let validated = match self.ledger.validate_block_with(&p.block, &mut self.sigs) {
                    Ok(v) => Some(Box::new(v)),
                    Err(e) => {
                        out.push(Output::InvalidProposal {
                            proposer: p.proposer,
                            reason: e.to_string(),
                        });
                        None
                    }
                };
                let valid = validated.is_some();
                self.candidates.insert(
                    hash,
                    Candidate {
                        block: p.block.clone(),
                        validated,
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
            let sigs = &mut self.sigs;
            let pending = &mut pending;
            let result: Result<(), mc::Error<Ctx>> = mc::process!(
                input: input,
                state: &mut self.state,
                metrics: &(),
                with: effect => answer(ctx, key, height, &timeouts, sigs, pending, effect)
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
        // A candidate we validated is installed as validated (it was checked against this
        // tip: candidates are cleared on every advance); one we found invalid but that was
        // decided anyway (by more than two thirds, so our check or our state is wrong) is
        // checked again, and refused if it still does not apply.
        let applied = match candidate.validated {
            Some(v) => self.ledger.apply_validated(*v),
            None => self.ledger.apply_block(&candidate.block),
        };
        if let Err(e) = applied {
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
            WalEntry::Vote(v) => (v.height, signed_vote(&v).map(mc::Input::Vote)),
            WalEntry::ProposedValue {
                height,
                round,
                valid_round,
                proposer,
                block,
                valid,
            } => {
                let value = BlockValue::new(block.clone());
                // The recorded verdict goes to Malachite as it was; the state it leads to is
                // derived again (validation is deterministic, so it agrees).
                let validated = if valid {
                    self.ledger
                        .validate_block_with(&block, &mut self.sigs)
                        .ok()
                        .map(Box::new)
                } else {
                    None
                };
                self.candidates.entry(value.hash()).or_insert(Candidate {
                    block,
                    validated,
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
            WalEntry::Timeout(t) => (t.height, Some(mc::Input::TimeoutElapsed(to_timeout(&t)))),
        }
    }
}
