//! seedfed's protocol core.
//!
//! Everything here is sans-IO: pure functions and state machines over bytes, with randomness
//! injected by the caller. No sockets, no clock, no disk, no async runtime. The networked node
//! (`seedfed-node`) and the in-process simulation (`seedfed-testnet`) drive these pieces.
//!
//! The modules follow the life of the federation's one signing key: `admission` (who may join),
//! `assignment` (who owns which branch and who holds which leaf), `seed_tree` and
//! `branch_seed` (root secret to branch seeds, delivered to their owners), `lmots`/`lms`/
//! `sector`/`master` (one-time keys to the system public key), `shamir`/`dealing`/`audit`
//! (leaf seeds dealt to holders, checked before use), `reconstruct`/`repair` (leaf seeds live
//! only as shares; `mismatch`: a rebuilt seed that misses its tree convicts its owner), `dkg`
//! (the two group keys, robust against absent and bad dealers), `tprf` (the root secret is used
//! only through a threshold PRF), `retired` (the leaves the audit made public, which verifiers
//! refuse), `agent` (what a validator
//! contributes to the epoch cycle after each block), `checkpoint`/`light_client` (the Ed25519
//! group key signs checkpoints that a light client checks), and `ledger`/`consensus` (the
//! replicated ledger every node applies, ordered by Tendermint through Malachite's pure core).
//! `docs/architecture.md` maps every module to its concept.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admission;
pub mod agent;
pub mod assignment;
pub mod audit;
pub mod branch_seed;
pub mod bytes;
pub mod checkpoint;
pub mod consensus;
pub mod dealing;
pub mod dkg;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod issue;
pub mod ledger;
pub mod light_client;
pub mod lmots;
pub mod lms;
pub mod master;
pub mod member;
pub mod mismatch;
pub mod reconstruct;
pub mod repair;
pub mod retired;
pub mod seal;
pub mod sector;
pub mod seed_tree;
pub mod shamir;
pub mod tprf;
