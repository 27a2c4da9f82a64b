//! The master-root duty (`docs/protocol.md` step 8): once every sector of the key is on the
//! ledger, any validator submits `MasterRoot`, the root of the master tree over the sector
//! roots, which the ledger recomputes before it accepts it.

use super::duty::Duty;
use super::machine::Agent;
use crate::ledger::{LedgerState, TxBody};
use crate::master::Master;

impl Agent {
    pub(super) fn master_duties(&self, st: &LedgerState, duties: &mut Vec<Duty>) {
        if st.newest.master_root.is_some()
            || !st.is_validator(&self.me)
            || st.newest.sectors.len() as u64 != u64::from(st.key.sectors())
        {
            return;
        }
        let Ok(layout) = st.key_layout(st.newest.index) else {
            return;
        };
        let roots: Vec<[u8; 32]> = st.newest.sectors.values().map(|s| s.root).collect();
        match Master::from_sector_roots(layout, &roots) {
            Ok(master) => duties.push(Duty::Submit(TxBody::MasterRoot {
                root: master.root(),
            })),
            Err(e) => tracing::warn!(error = %e, "cannot build the master tree"),
        }
    }
}
