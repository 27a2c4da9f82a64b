//! The epoch boundary on the ledger: beacon partials, the epoch beacon and the epoch start.
//!
//! Guarantees: the beacon of epoch `e + 1` is the threshold PRF of
//! [`beacon_input`]`(chain, e + 1)` under the ristretto255 key of the DKG completed in epoch
//! `e`, combined from the first `t` DLEQ-verified partials on the ledger, and `EpochStart` must
//! carry exactly that value; an epoch lasts at least `epoch_min_blocks`.

use super::LedgerState;
use crate::ledger::beacon::beacon_input;
use crate::ledger::dkg_round::DkgRound;
use crate::ledger::error::LedgerError;
use crate::ledger::genesis::chain_digest;
use crate::member::MemberId;
use crate::tprf;

impl LedgerState {
    /// `BeaconPartial`: records a key holder's DLEQ-verified partial for the next epoch's
    /// beacon, until `t` are in.
    pub(super) fn apply_beacon_partial(
        &mut self,
        author: MemberId,
        epoch: u64,
        partial: &tprf::Partial,
    ) -> Result<(), LedgerError> {
        if epoch != self.epoch + 1 {
            return Err(LedgerError::WrongEpoch {
                got: epoch,
                expected: self.epoch + 1,
            });
        }
        let result = self
            .dkg_results
            .get(&self.epoch)
            .ok_or(LedgerError::DkgIncomplete(self.epoch))?;
        if partial.member != author {
            return Err(LedgerError::BadPartial(
                "partial is not the author's".into(),
            ));
        }
        if !result.qualified.contains(&author) {
            return Err(LedgerError::NotValidator(author));
        }
        if self.beacon_partials.iter().any(|p| p.member == author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        if self.beacon_partials.len() >= usize::from(result.threshold) {
            return Err(LedgerError::BeaconComplete);
        }
        let public = result.ristretto255()?;
        tprf::verify_partial(
            &public,
            &beacon_input(&chain_digest(&self.chain_id), epoch),
            partial,
        )
        .map_err(|e| LedgerError::BadPartial(e.to_string()))?;
        self.beacon_partials.push(*partial);
        Ok(())
    }

    /// The beacon combined from the recorded partials, if `t` are in.
    pub fn recorded_beacon(&self) -> Result<[u8; 32], LedgerError> {
        let result = self
            .dkg_results
            .get(&self.epoch)
            .ok_or(LedgerError::DkgIncomplete(self.epoch))?;
        let t = usize::from(result.threshold);
        if self.beacon_partials.len() < t {
            return Err(LedgerError::BadBeacon("fewer than t partials recorded"));
        }
        tprf::combine(
            &result.ristretto255()?,
            &beacon_input(&chain_digest(&self.chain_id), self.epoch + 1),
            &self.beacon_partials[..t],
        )
        .map_err(|_| LedgerError::BadBeacon("recorded partials do not combine"))
    }

    /// The height from which the next `EpochStart` is accepted: `epoch_min_blocks` after the
    /// epoch started, and while a key is being generated, not before every open sector window
    /// closed (a new epoch changes the holder basis and the branch assignment, so every
    /// owner in the middle of its dealing would start over: with epochs shorter than a large
    /// key's dealing, the key would never complete). The wait is capped at four sector windows
    /// past the minimum, so a key generation that cannot finish does not stop epochs.
    pub fn next_epoch_height(&self) -> u64 {
        let least = self
            .epoch_started_at
            .saturating_add(self.epochs.epoch_min_blocks);
        let window = self.key.sector_window;
        least.max(
            self.sector_windows_close()
                .min(least.saturating_add(window.saturating_mul(4))),
        )
    }

    /// The first height after every sector window as the next block will see them: windows
    /// open at the start of a block for the previous block's changes (at this height), and a
    /// window that closes then opens again for the sector's next owner.
    fn sector_windows_close(&self) -> u64 {
        if !self.keygen_in_progress() {
            return 0;
        }
        let window = self.key.sector_window;
        let basis = self.holder_basis().digest();
        let next = self.height.saturating_add(1);
        self.newest
            .branch_owners
            .iter()
            .filter(|(s, _)| !self.newest.sectors.contains_key(s))
            .map(|(s, o)| {
                let opened = match self.newest.sector_windows.get(s) {
                    Some(w) if w.owner == *o && w.basis == basis => {
                        if next > w.opened.saturating_add(window) {
                            next
                        } else {
                            w.opened
                        }
                    }
                    _ => self.height,
                };
                opened.saturating_add(window).saturating_add(1)
            })
            .max()
            .unwrap_or(0)
    }

    /// `EpochStart`: starts the next epoch with the beacon combined from the recorded partials.
    pub(super) fn apply_epoch_start(
        &mut self,
        author: MemberId,
        epoch: u64,
        beacon: &[u8; 32],
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        if epoch != self.epoch + 1 {
            return Err(LedgerError::WrongEpoch {
                got: epoch,
                expected: self.epoch + 1,
            });
        }
        validate_epoch_beacon(self, epoch, beacon)?;
        self.begin_epoch(epoch, *beacon);
        Ok(())
    }

    /// Switches to `epoch` with `beacon`: snapshots the validators, opens the epoch's DKG at
    /// the current height, clears the partials, prunes old DKG data and queues the epoch-start
    /// checkpoint. Callers have checked everything.
    pub(crate) fn begin_epoch(&mut self, epoch: u64, beacon: [u8; 32]) {
        self.epoch = epoch;
        self.beacon = beacon;
        self.expire_idle_admissions(epoch);
        self.epoch_validators = self.validators();
        self.epoch_started_at = self.height;
        self.dkg = DkgRound::open(epoch, self.height, self.roster());
        self.beacon_partials.clear();
        self.enqueue_checkpoint(None);
        // Keep the results still needed: the key in force, queued rotations, the last epoch's.
        let mut keep_from = epoch.saturating_sub(1);
        if let Some(k) = self.checkpoint_key {
            keep_from = keep_from.min(k);
        }
        for due in self.checkpoints_due.values() {
            if let Some(k) = due.rotate_to {
                keep_from = keep_from.min(k);
            }
        }
        // An audit not drawn yet still needs the key that draws it.
        for audit in self.newest.audits.values().filter(|a| a.leaves.is_empty()) {
            keep_from = keep_from.min(audit.key_epoch);
        }
        self.dkg_results.retain(|e, _| *e >= keep_from);
    }
}

/// Beacon check of an `EpochStart`: the current epoch's DKG is complete, the epoch has lasted
/// at least `epoch_min_blocks`, and `beacon` is the combination of the first `t` recorded
/// partials for `epoch`.
pub fn validate_epoch_beacon(
    state: &LedgerState,
    epoch: u64,
    beacon: &[u8; 32],
) -> Result<(), LedgerError> {
    if epoch != state.epoch + 1 {
        return Err(LedgerError::WrongEpoch {
            got: epoch,
            expected: state.epoch + 1,
        });
    }
    if !state.dkg_results.contains_key(&state.epoch) {
        return Err(LedgerError::DkgIncomplete(state.epoch));
    }
    if state.height < state.next_epoch_height() {
        return Err(LedgerError::EpochTooEarly(state.next_epoch_height()));
    }
    let expected = state.recorded_beacon()?;
    if expected != *beacon {
        return Err(LedgerError::BadBeacon("differs from the combined partials"));
    }
    Ok(())
}
