//! Chain parameters that validators change by stake: a [`Change`] applies once validators
//! holding more than 2/3 of the stake each submitted the same one (the approval rules are in
//! the state's `changes` module, one path for every kind).
//!
//! Two kinds exist: the authorized signing clients ([`ClientChange`], `client`) and the
//! admission proof-of-work difficulty ([`Change::PowDifficulty`]). The difficulty may be set
//! to any value from the genesis difficulty up to [`MAX_DIFFICULTY`](crate::admission::MAX_DIFFICULTY):
//! raising it makes new identities dearer; lowering it back (never below the genesis value,
//! the floor every node and light client knows) undoes a raise that went too far. Either way
//! it takes the same more-than-2/3 stake that already decides every block, so a change gives
//! that majority no power it did not have.

use serde::{Deserialize, Serialize};

use super::client::ClientChange;

/// A change of a chain parameter; applied once validators holding more than 2/3 of the stake
/// approved the same change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Change {
    /// A change of the authorized signing clients.
    Client(ClientChange),
    /// Set the admission proof-of-work difficulty (leading zero bits) that `Admit`
    /// transactions and the network's admission of non-validator peers require from now on.
    /// Members already admitted stay members.
    PowDifficulty(u8),
}
