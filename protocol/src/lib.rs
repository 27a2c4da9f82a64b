//! seedfed's protocol core.
//!
//! Everything here is sans-IO: pure functions and state machines over bytes, with randomness
//! injected by the caller. No sockets, no clock, no disk, no async runtime. The networked node
//! (`seedfed-node`) and the in-process simulation (`seedfed-testnet`) drive these pieces.
//!
//! The modules follow the life of the federation's one signing key: `admission` (who may join),
//! `assignment` (who owns which branch and who holds which leaf), `seed_tree` (root secret to
//! leaf seeds), `lmots`/`lms`/`sector`/`master` (one-time keys to the system public key),
//! `shamir`/`reconstruct`/`repair` (leaf seeds live only as shares), `tprf` (the root secret is
//! used only through a threshold PRF).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admission;
pub mod assignment;
pub mod consensus;
pub mod hash;
pub mod ledger;
pub mod member;
pub mod seed_tree;
