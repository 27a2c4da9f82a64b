//! The branch-assignment duty: once an epoch has started, submit its `BranchAssignment`.
//!
//! Guarantees: only a validator of the epoch submits it, only until one is on the ledger, and
//! the owners are the ledger's own deterministic computation.

use super::duty::Duty;
use super::machine::Agent;
use crate::ledger::{LedgerState, TxBody};

impl Agent {
    pub(super) fn assignment_duties(&self, st: &LedgerState, duties: &mut Vec<Duty>) {
        if st.epoch >= 1
            && st.newest.assignment_epoch != Some(st.epoch)
            && st.is_validator(&self.me)
        {
            if let Ok(owners) = st.compute_branch_owners() {
                duties.push(Duty::Submit(TxBody::BranchAssignment {
                    epoch: st.epoch,
                    owners,
                }));
            }
        }
    }
}
