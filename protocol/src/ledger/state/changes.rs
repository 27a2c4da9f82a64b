//! Changes approved by stake (`ledger::change`): one approval path for every kind of
//! [`Change`] (authorized clients, the admission proof-of-work difficulty).
//!
//! Guarantees: only a validator approves, each at most once per change; a change whose value
//! is refused (a client key that is not an Ed25519 point, quota 0, a difficulty outside the
//! genesis difficulty..=`MAX_DIFFICULTY` or equal to the current one) is refused at approval and
//! never recorded; a validator has at most [`MAX_OPEN_CHANGES`] changes open (approved, not
//! yet applied), of every kind together, which bounds the state one validator can grow with
//! changes that never pass. A change applies in the transaction that brings the approvers
//! still validating above 2/3 of the current stake; its approvals are then dropped.

use super::LedgerState;
use crate::ledger::change::Change;
use crate::ledger::error::LedgerError;
use crate::member::MemberId;

/// Most changes one validator may have open (approved, not yet applied) at once.
pub const MAX_OPEN_CHANGES: usize = 16;

impl LedgerState {
    /// `ClientChange` and `PowDifficulty`: the author approves `change`; once the approvers
    /// still validating hold more than 2/3 of the stake, it applies and its approvals are
    /// dropped.
    pub(super) fn apply_change(
        &mut self,
        author: MemberId,
        change: &Change,
    ) -> Result<(), LedgerError> {
        if !self.is_validator(&author) {
            return Err(LedgerError::NotValidator(author));
        }
        match change {
            Change::Client(c) => self.check_client_change(c)?,
            Change::PowDifficulty(d) => self.check_difficulty_change(*d)?,
        }
        let open = self
            .changes
            .iter()
            .filter(|(c, v)| *c != change && v.contains(&author))
            .count();
        if open >= MAX_OPEN_CHANGES {
            return Err(LedgerError::TooManyChanges(author));
        }
        if self
            .changes
            .get(change)
            .is_some_and(|v| v.contains(&author))
        {
            return Err(LedgerError::DuplicateApproval(author));
        }
        // Checked: from here on nothing fails.
        let validators = self.validators();
        let total: u64 = validators.values().sum();
        let approvals = self.changes.entry(change.clone()).or_default();
        approvals.insert(author);
        let approved: u64 = approvals.iter().filter_map(|m| validators.get(m)).sum();
        if u128::from(approved) * 3 > u128::from(total) * 2 {
            self.changes.remove(change);
            match change {
                Change::Client(c) => self.enact_client_change(c),
                Change::PowDifficulty(d) => self.pow_difficulty = *d,
            }
        }
        Ok(())
    }
}
