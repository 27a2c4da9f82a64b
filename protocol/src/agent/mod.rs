//! The per-validator duty machine of the epoch cycle (sans-IO): after every decided block,
//! [`Agent::on_block`] reads the ledger and returns the [`Duty`]s this validator must perform,
//! one module per duty (DKG, beacon, branch assignment, checkpoint signing). Guarantees: a duty
//! repeats until its effect is on the ledger; secrets are drawn once, live only in the state
//! [`Agent::snapshot`] persists, are wiped on drop, never printed. More: `docs/consensus.md`.

mod assignment;
mod beacon;
mod checkpoint;
mod dkg;
mod duty;
mod machine;
mod state;

pub use dkg::{MISSING_DELAY_BLOCKS, RESEND_BLOCKS};
pub use duty::{Duty, EpochError, Fault};
pub use machine::{Agent, AgentStatus};
