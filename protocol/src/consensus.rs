//! Tendermint BFT consensus as a sans-IO state machine around Malachite's core
//! (`docs/consensus.md`). [`Consensus`] owns one node's ledger and turns each [`Input`] into
//! [`Output`]s with no runtime, clock or network. It votes only for blocks that validate against
//! its ledger, and a node that acts on the outputs in order, making every
//! [`Output::PersistWal`] entry durable before a later output that leaves the node or decides
//! ([`Output::needs_durable_wal`]), never equivocates, even across a restart.

pub mod certificate;
pub mod context;
mod effect;
mod io;
mod key;
mod machine;
mod message;

pub use certificate::{CertificateError, CommitCertificate};
pub use context::{
    BlockHash, BlockValue, Height, Proposal, SeedfedContext, Validator, ValidatorSet, Vote,
};
pub use io::{Input, Output, TimerId, TimerKind, WalEntry};
pub use key::ConsensusKey;
pub use machine::{Consensus, ConsensusError, ConsensusParams, RoundView};
pub use message::{ConsensusMessage, PolkaMessage, ProposalMessage, RoundMessage};

/// Malachite's context, as the submodules name it.
type Ctx = SeedfedContext;

#[cfg(test)]
mod tests;
