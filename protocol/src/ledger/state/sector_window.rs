//! The sector window (`docs/protocol.md` step 5): an owner that does not land its sector root
//! within `key.sector_window` blocks loses the branch to the next rendezvous choice.
//!
//! Guarantees: every unpublished sector of the key being generated has a window, opened at the
//! height of the block that gave the sector its current owner (a `BranchAssignment`, a
//! conviction's or a miss's hand-over) or last changed the holder basis (a new epoch, an
//! eviction, an exit: the owner must deal again). The check runs at the start of every block,
//! before its transactions, so a proposer building a block and a validator replaying it
//! compute the same thing; it never fails, so it never makes a block invalid. An owner whose
//! window closed (no root by the end of block `opened + sector_window`) is recorded in
//! [`LedgerState::keygen_misses`] — not evicted: it may only be slow or down — loses every
//! unpublished sector it owns to the next rendezvous choice that leaves out the convicted and
//! missed members, and owns no sector of this key again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::LedgerState;
use crate::member::MemberId;

/// The window of one unpublished sector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorWindow {
    /// The owner the window is for.
    pub owner: MemberId,
    /// Height at which the window opened; the sector root must land by `opened +
    /// sector_window`.
    pub opened: u64,
    /// The holder-basis digest when it opened (a change opens a new window).
    pub basis: [u8; 32],
}

/// A sector owner that did not land its sector root within the sector window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenMiss {
    /// The key's index.
    pub key: u32,
    /// The first sector whose window closed (it lost every unpublished sector it owned).
    pub sector: u32,
    /// The epoch of the miss.
    pub epoch: u64,
    /// The height of the block at whose start the miss was recorded.
    pub height: u64,
}

impl LedgerState {
    /// Whether a key is being generated: its branch assignment is this epoch's and the master
    /// root is not final.
    pub(crate) fn keygen_in_progress(&self) -> bool {
        self.newest.assignment_epoch == Some(self.epoch) && self.newest.master_root.is_none()
    }

    /// Members that may own no sector of the key: convicted of a bad dealing or missed a
    /// sector window.
    pub(super) fn keygen_excluded(&self) -> BTreeSet<MemberId> {
        self.newest
            .keygen_convictions
            .keys()
            .chain(self.newest.keygen_misses.keys())
            .copied()
            .collect()
    }

    /// The sector-window rule, at the start of a block (the height already set, before the
    /// transactions): opens the windows the last block's changes call for, then hands the
    /// sectors of every owner whose window closed to the next rendezvous choice and records
    /// the miss.
    pub(crate) fn begin_block_sector_windows(&mut self) {
        if !self.keygen_in_progress() {
            self.newest.sector_windows.clear();
            return;
        }
        let basis = self.holder_basis().digest();
        self.open_sector_windows(basis, self.height.saturating_sub(1));
        let window = self.key.sector_window;
        // Each late owner with the first sector whose window closed.
        let mut late: BTreeMap<MemberId, u32> = BTreeMap::new();
        for (s, w) in &self.newest.sector_windows {
            if self.height > w.opened.saturating_add(window) {
                late.entry(w.owner).or_insert(*s);
            }
        }
        if late.is_empty() {
            return;
        }
        let mut excluded = self.keygen_excluded();
        excluded.extend(late.keys().copied());
        let Ok(owners) = self.branch_owners_without(&excluded) else {
            // Nobody else may take the sectors: they stay, and their windows start again.
            for w in self.newest.sector_windows.values_mut() {
                if late.contains_key(&w.owner) {
                    w.opened = self.height;
                }
            }
            return;
        };
        self.hand_over(&late.keys().copied().collect(), &owners);
        for (member, sector) in late {
            self.newest.keygen_misses.insert(
                member,
                KeygenMiss {
                    key: self.newest.index,
                    sector,
                    epoch: self.epoch,
                    height: self.height,
                },
            );
        }
        self.open_sector_windows(basis, self.height);
    }

    /// Drops the windows of published sectors and opens a window at `at` for every unpublished
    /// sector whose owner or holder basis differs from its window's.
    fn open_sector_windows(&mut self, basis: [u8; 32], at: u64) {
        let sectors = &self.newest.sectors;
        self.newest
            .sector_windows
            .retain(|s, _| !sectors.contains_key(s));
        for (s, o) in &self.newest.branch_owners {
            if self.newest.sectors.contains_key(s) {
                continue;
            }
            let current = self
                .newest
                .sector_windows
                .get(s)
                .is_some_and(|w| w.owner == *o && w.basis == basis);
            if !current {
                self.newest.sector_windows.insert(
                    *s,
                    SectorWindow {
                        owner: *o,
                        opened: at,
                        basis,
                    },
                );
            }
        }
    }
}
