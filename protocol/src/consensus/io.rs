//! What the node and the consensus state machine exchange: [`Input`]s in, [`Output`]s out, the
//! [`WalEntry`]s to make durable and the [`TimerId`]s to schedule.
//!
//! The outputs of one call are ordered: a node that acts on them in order, and makes every
//! [`Output::PersistWal`] entry durable before acting on a later output that
//! [needs it](Output::needs_durable_wal) (one that leaves the node or decides), never
//! equivocates after a restart.

use std::time::Duration;

use malachitebft_core_types as mt;
use mt::{Round, Timeout, TimeoutKind};
use serde::{Deserialize, Serialize};

use super::message::{ConsensusMessage, PolkaMessage, ProposalMessage};
use super::CommitCertificate;
use crate::ledger::{Block, SignedTx, VoteRecord};
use crate::member::MemberId;

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

/// What the write-ahead log records (replayed by [`Consensus::recover`](super::Consensus::recover)).
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
    /// Make this durable before acting on any later output that
    /// [needs it](Output::needs_durable_wal).
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

impl Output {
    /// Whether every [`Output::PersistWal`] entry before this output must be durable before it
    /// is acted on: a message that leaves the node (our vote or proposal, never to be
    /// contradicted after a restart) or a decision. Entries before any other output may wait:
    /// most record what the node received (a peer's vote, a timeout), and a crash that loses
    /// entries nothing sent depends on is the same as a crash before they came in. (Writing
    /// each at once cost a node an fsync per received vote.)
    pub fn needs_durable_wal(&self) -> bool {
        match self {
            Output::Broadcast(_) | Output::Decided { .. } => true,
            Output::PersistWal(_)
            | Output::ScheduleTimer { .. }
            | Output::CancelTimer(_)
            | Output::CancelAllTimers
            | Output::BuildBlock { .. }
            | Output::Equivocation { .. }
            | Output::InvalidProposal { .. } => false,
        }
    }
}

/// The timer a Malachite timeout stands for at `height` (`None` for a timeout we never use).
pub(super) fn to_timer(height: u64, t: &Timeout) -> Option<TimerId> {
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

/// The Malachite timeout a timer stands for (the inverse of [`to_timer`]).
pub(super) fn to_timeout(t: &TimerId) -> Timeout {
    let kind = match t.kind {
        TimerKind::Propose => TimeoutKind::Propose,
        TimerKind::Prevote => TimeoutKind::Prevote,
        TimerKind::Precommit => TimeoutKind::Precommit,
        TimerKind::Rebroadcast => TimeoutKind::Rebroadcast,
    };
    Timeout::new(Round::new(t.round), kind)
}
