//! The audit duties (`docs/protocol.md` step 6): our threshold-PRF partial for the draw of
//! every published sector, then, once the ledger drew its leaves, our shares of them as a
//! holder ([`Duty::Reveal`]) and their authentication paths as the owner
//! ([`Duty::ProvePath`]). The node reads the held record or the kept tree and submits.
//!
//! Guarantees: a partial is drawn once per (sector, draw input) and kept in memory, so every
//! call submits the same one until the draw; reveals and paths are repeated until they land
//! (the node builds the same bodies each time).

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};

use super::duty::Duty;
use super::machine::Agent;
use crate::audit::{AuditError, RevealedShare};
use crate::dealing::HeldSector;
use crate::ledger::{LedgerState, SectorAudit, SectorRecord, TxBody};
use crate::sector::{Sector, SectorError};
use crate::tprf::{self, Partial};

/// Our audit partials, by sector, with the draw input they evaluate.
pub(super) type AuditPartials = BTreeMap<u32, ([u8; 32], Partial)>;

impl Agent {
    pub(super) fn audit_duties<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) {
        self.audit_partials
            .retain(|s, _| st.newest.audits.get(s).is_some_and(|a| a.leaves.is_empty()));
        if st.newest.master_root.is_some() {
            return;
        }
        for (sector, audit) in &st.newest.audits {
            let Some(record) = st.newest.sectors.get(sector) else {
                continue;
            };
            if audit.leaves.is_empty() {
                if let Some(body) = self.audit_partial(st, *sector, audit, rng) {
                    duties.push(Duty::Submit(body));
                }
                continue;
            }
            self.audit_leaves(st, *sector, audit, record, duties);
        }
    }

    /// Our partial for `sector`'s draw, if we hold a share of the root key and the draw still
    /// needs partials.
    fn audit_partial<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        sector: u32,
        audit: &SectorAudit,
        rng: &mut R,
    ) -> Option<TxBody> {
        let result = st.dkg_results.get(&audit.key_epoch)?;
        if audit.partials.len() >= usize::from(result.threshold)
            || audit.partials.iter().any(|p| p.member == self.me)
            || !result.qualified.contains(&self.me)
        {
            return None;
        }
        let input = st.audit_draw_input(sector)?;
        let partial = match self.audit_partials.get(&sector) {
            Some((i, p)) if *i == input => *p,
            _ => {
                let key = self.root_key(audit.key_epoch)?;
                let p = tprf::partial(&key, &self.me, &input, rng).ok()?;
                self.audit_partials.insert(sector, (input, p));
                p
            }
        };
        Some(TxBody::AuditPartial { sector, partial })
    }

    /// Reveals of the drawn leaves we hold and have not revealed; the paths if we own the
    /// sector.
    fn audit_leaves(
        &self,
        st: &LedgerState,
        sector: u32,
        audit: &SectorAudit,
        record: &SectorRecord,
        duties: &mut Vec<Duty>,
    ) {
        let open = audit.leaves.iter().filter(|(_, la)| !la.passed);
        if record.owner == self.me {
            let leaves: Vec<u64> = open
                .clone()
                .filter(|(_, la)| la.path.is_none())
                .map(|(l, _)| *l)
                .collect();
            if !leaves.is_empty() {
                duties.push(Duty::ProvePath {
                    sector,
                    root: record.root,
                    leaves,
                });
            }
        }
        if !record.acked.contains(&self.me) {
            return;
        }
        let leaves: Vec<u64> = open
            .filter(|(l, la)| {
                !la.shares.contains_key(&self.me)
                    && record
                        .basis
                        .leaf_holders(**l, st.key.leaf_holders)
                        .is_ok_and(|hs| hs.contains(&self.me))
            })
            .map(|(l, _)| *l)
            .collect();
        if !leaves.is_empty() {
            duties.push(Duty::Reveal {
                sector,
                commitments_root: record.commitments_root,
                leaves,
            });
        }
    }
}

/// The `AuditReveal`s a [`Duty::Reveal`] asks for, from the held record it names.
pub fn reveal_txs(held: &HeldSector, leaves: &[u64]) -> Result<Vec<TxBody>, AuditError> {
    leaves
        .iter()
        .map(|leaf| {
            let r = RevealedShare::from_held(held, *leaf)?;
            Ok(TxBody::AuditReveal {
                sector: held.id.sector,
                leaf: r.leaf,
                share: *r.share.value_bytes(),
                commitment: r.commitment,
                path: r.path,
            })
        })
        .collect()
}

/// The `AuditPath`s a [`Duty::ProvePath`] asks for, from the kept tree.
pub fn path_txs(tree: &Sector, leaves: &[u64]) -> Result<Vec<TxBody>, SectorError> {
    leaves
        .iter()
        .map(|leaf| {
            let q = u32::try_from(*leaf).map_err(|_| SectorError::LeafNotInSector {
                q: u32::MAX,
                branch: tree.branch(),
            })?;
            Ok(TxBody::AuditPath {
                sector: tree.branch(),
                leaf: *leaf,
                path: tree.auth_path(q)?,
            })
        })
        .collect()
}
