//! The per-validator duty machine of the epoch cycle and key generation (sans-IO): after every
//! decided block, [`Agent::on_block`] reads the ledger and returns the [`Duty`]s this validator
//! must perform, one module per duty (DKG, beacon, branch assignment, checkpoint signing,
//! branch-seed partials, sector owner, leaf-share holder, master root); point-to-point messages
//! arrive through [`Agent::on_direct`]. Guarantees: a duty
//! repeats until its effect is on the ledger; secrets are drawn once, live only in the state
//! [`Agent::snapshot`] persists, are wiped on drop, never printed. More: `docs/consensus.md`.

mod assignment;
mod audit;
mod beacon;
mod branch;
mod checkpoint;
mod direct;
mod dkg;
mod duty;
mod holder;
mod issue;
mod keygen;
mod machine;
mod master;
mod owner;
mod payload;
mod sign;
mod state;

pub use audit::{path_txs, reveal_txs};
#[cfg(feature = "fuzzing")]
pub(crate) use direct::reencode as direct_reencode;
pub use dkg::{MISSING_DELAY_BLOCKS, RESEND_BLOCKS};
pub use duty::{Duty, EpochError, Fault, SecretBytes};
pub use issue::ISSUE_WINDOW_BLOCKS;
pub use keygen::{ACK_WAIT_BLOCKS, KEYGEN_RESEND_BLOCKS};
pub use machine::{Agent, AgentStatus};
pub use payload::Payload;
pub use sign::SIGN_ATTEMPT_BLOCKS;
