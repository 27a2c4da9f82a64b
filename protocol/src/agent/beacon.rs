//! The beacon duty: this validator's threshold-PRF partial for the next epoch's beacon, then
//! `EpochStart` once enough partials are on the ledger and the epoch is long enough.
//!
//! Guarantees: the partial is drawn once per epoch and kept in the state, so every call
//! submits the same one.

use rand_core::{CryptoRng, RngCore};

use super::duty::Duty;
use super::machine::Agent;
use crate::ledger::{beacon_input, chain_digest, LedgerState, TxBody};
use crate::tprf;

impl Agent {
    pub(super) fn beacon_duties<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) {
        let Some(result) = st.dkg_results.get(&st.epoch) else {
            return;
        };
        let t = usize::from(result.threshold);
        if st.beacon_partials.len() < t && !st.beacon_partials.iter().any(|p| p.member == self.me) {
            if let Some(keys) = self.saved.keys.get_mut(&st.epoch) {
                if keys.partial.is_none() {
                    let input = beacon_input(&chain_digest(&st.chain_id), st.epoch + 1);
                    if let Ok(kp) =
                        frost_ristretto255::keys::KeyPackage::deserialize(&keys.ristretto255)
                    {
                        keys.partial = tprf::partial(&kp, &self.me, &input, rng).ok();
                    }
                }
                if let Some(partial) = keys.partial {
                    duties.push(Duty::Submit(TxBody::BeaconPartial {
                        epoch: st.epoch + 1,
                        partial,
                    }));
                }
            }
        }
        if st.beacon_partials.len() >= t
            && st.height + 1 >= st.next_epoch_height()
            && st.is_validator(&self.me)
        {
            if let Ok(beacon) = st.recorded_beacon() {
                duties.push(Duty::Submit(TxBody::EpochStart {
                    epoch: st.epoch + 1,
                    beacon,
                }));
            }
        }
    }
}
