//! The checkpoint duty: FROST signing of the ledger's checkpoints with the Ed25519 group key —
//! commitments for the current attempt (or the next, if it stalled), then this signer's share.
//!
//! Guarantees: signing nonces are drawn once per (checkpoint, attempt) and never drawn again
//! for an attempt the agent has committed to; restored without them, it skips that attempt.

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::duty::Duty;
use super::machine::Agent;
use super::state::LocalSigning;
use crate::checkpoint::{self, SigningCommitments, SigningNonces};
use crate::ledger::{LedgerState, TxBody};
use crate::member::MemberId;

impl Agent {
    pub(super) fn checkpoint_duties<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) {
        let Some((seq, due, signing, key_epoch)) = st.checkpoint_in_progress() else {
            return;
        };
        let Some(keys) = self.saved.keys.get(&key_epoch) else {
            return;
        };
        let Ok(kp) = frost_ed25519::keys::KeyPackage::deserialize(&keys.ed25519) else {
            return;
        };
        let Some(result) = st.dkg_results.get(&key_epoch) else {
            return;
        };
        let t = usize::from(result.threshold);
        if signing.excluded.contains(&self.me) {
            return;
        }
        let next = st.height + 1;
        let stalled = next
            > signing
                .started_at
                .saturating_add(st.epochs.checkpoint_attempt_blocks)
            && signing.shares.len() < t;
        let i_committed = signing.commitments.iter().any(|(m, _)| *m == self.me);
        // Round 2: our share, if we are a fixed signer.
        if signing.commitments.len() >= t && i_committed && !signing.shares.contains_key(&self.me) {
            if let Some(Some(nonces)) = self
                .saved
                .signing
                .get(&(seq, signing.attempt))
                .map(|s| s.nonces.as_ref())
            {
                if let Some(share) = Self::share(due, signing, nonces, &self.me, &kp) {
                    duties.push(Duty::Submit(TxBody::CheckpointShare {
                        checkpoint: seq,
                        attempt: signing.attempt,
                        share,
                    }));
                }
            }
        }
        // Round 1: commit to the current attempt, or to the next one if it stalled.
        let target = if stalled {
            signing.attempt + 1
        } else {
            signing.attempt
        };
        let open = stalled || (signing.commitments.len() < t && !i_committed);
        if !open {
            return;
        }
        let entry = match self.saved.signing.entry((seq, target)) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let (nonces, commitments) = checkpoint::commit(&kp, rng);
                let (Ok(n), Ok(c)) = (nonces.serialize(), commitments.serialize()) else {
                    return;
                };
                v.insert(LocalSigning {
                    nonces: Some(n),
                    commitments: c,
                })
            }
        };
        if entry.nonces.is_none() {
            // Restored without the nonces (or already used): never commit to this attempt again.
            return;
        }
        duties.push(Duty::Submit(TxBody::CheckpointCommit {
            checkpoint: seq,
            attempt: target,
            commitments: entry.commitments.clone(),
        }));
    }

    fn share(
        due: &crate::ledger::CheckpointDue,
        signing: &crate::ledger::CheckpointSigning,
        nonces: &[u8],
        me: &MemberId,
        kp: &frost_ed25519::keys::KeyPackage,
    ) -> Option<Vec<u8>> {
        let nonces = Zeroizing::new(nonces.to_vec());
        let nonces = SigningNonces::deserialize(&nonces).ok()?;
        let mut commitments = BTreeMap::new();
        for (m, c) in &signing.commitments {
            commitments.insert(*m, SigningCommitments::deserialize(c).ok()?);
        }
        let cp = due.body.checkpoint();
        let package = checkpoint::signing_package(&cp, &commitments).ok()?;
        let share = checkpoint::sign(&cp, &package, nonces, me, kp).ok()?;
        Some(share.serialize())
    }

    /// Drops finished checkpoints; discards the nonces of superseded attempts but keeps the
    /// entry so the attempt is never committed to again.
    pub(super) fn prune_signing(&mut self, st: &LedgerState) {
        let head = st
            .checkpoint_in_progress()
            .map(|(s, _, g, _)| (s, g.attempt));
        self.saved
            .signing
            .retain(|k, _| head.is_some_and(|h| k.0 >= h.0));
        for (k, s) in self.saved.signing.iter_mut() {
            if head.is_some_and(|h| *k < h) {
                if let Some(n) = s.nonces.as_mut() {
                    n.zeroize();
                }
                s.nonces = None;
            }
        }
    }
}
