//! Checkpoint signing on the ledger: the queue of checkpoints due and the FROST rounds that
//! sign its head.
//!
//! Guarantees: checkpoints are signed one at a time in queue order by the Ed25519 key in force
//! ([`LedgerState::checkpoint_key`]); the first `t` commitments fix the signers, the ledger
//! aggregates their shares and records the signature only if it verifies (`verify_strict`); a
//! bad share is attributed and excludes its signer from the next attempts, and a stalled
//! attempt can be superseded after `checkpoint_attempt_blocks` (`docs/light-client.md`).

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, VerifyingKey};

use super::LedgerState;
use crate::checkpoint::{self, MasterKey, SignatureShare, SigningCommitments};
use crate::ledger::checkpoint_signing::{
    validator_set_hash, CheckpointBody, CheckpointDue, CheckpointFault, CheckpointFaultKind,
    CheckpointSigning, SignedCheckpoint, KEEP_CHECKPOINTS,
};
use crate::ledger::error::LedgerError;
use crate::ledger::genesis::chain_digest;
use crate::ledger::tx::Signature64;
use crate::member::MemberId;
use crate::retired::RetiredLeaves;

impl LedgerState {
    /// Queues a checkpoint of the current state (skipped while no DKG key exists) and starts
    /// signing it if nothing else is being signed.
    pub(super) fn enqueue_checkpoint(&mut self, rotate_to: Option<u64>) {
        // The key in force once every queued checkpoint is recorded: the last queued rotation's,
        // else the current one. A checkpoint queued behind a rotation is signed by the new key,
        // so that is the key it names as next (unless it is itself a rotation).
        let in_force_after_queue = self
            .checkpoints_due
            .values()
            .rev()
            .find_map(|d| d.rotate_to)
            .or(self.checkpoint_key);
        let Some(next_epoch) = rotate_to.or(in_force_after_queue) else {
            return;
        };
        let Some(next) = self.dkg_results.get(&next_epoch) else {
            return;
        };
        let validators = self
            .epoch_validators
            .iter()
            .map(|(m, s)| (*m, (*s, self.members.get(m).map_or([0; 32], |r| r.x25519))))
            .collect();
        let named = self.newest_final_key();
        let master_key = named
            .and_then(|k| self.key_public(k.index))
            .map_or(MasterKey::NONE, |pk| MasterKey::from(&pk));
        // Fixed once the master root is final (`MasterRoot` waits for every audit, and no
        // sector is published after it), so every checkpoint with the key names the same set.
        let retired_digest =
            named.map_or([0; 32], |k| RetiredLeaves::new(k.retired_leaves()).digest());
        let body = CheckpointBody {
            chain_id: chain_digest(&self.chain_id),
            seq: self.checkpoint_seq,
            epoch: self.epoch,
            height: self.height,
            master_key,
            next_key: next.ed25519_group_key,
            validator_set_hash: validator_set_hash(
                &validators,
                &next.ed25519_group_key,
                &next.ristretto255_group_key,
            ),
            retired_digest,
        };
        self.checkpoints_due
            .insert(self.checkpoint_seq, CheckpointDue { body, rotate_to });
        self.checkpoint_seq += 1;
        if self.checkpoint_signing.is_none() {
            self.checkpoint_signing = Some(CheckpointSigning {
                attempt: 0,
                started_at: self.height,
                commitments: Vec::new(),
                shares: BTreeMap::new(),
                excluded: BTreeSet::new(),
            });
        }
    }

    /// The checkpoint being signed: (sequence number, what, signing progress, key epoch).
    pub fn checkpoint_in_progress(&self) -> Option<(u64, &CheckpointDue, &CheckpointSigning, u64)> {
        let (seq, due) = self.checkpoints_due.iter().next()?;
        let signing = self.checkpoint_signing.as_ref()?;
        Some((*seq, due, signing, self.checkpoint_key?))
    }

    fn checkpoint_context(
        &self,
        checkpoint: u64,
    ) -> Result<
        (
            u64,
            CheckpointSigning,
            frost_ed25519::keys::PublicKeyPackage,
            u16,
        ),
        LedgerError,
    > {
        let (seq, _, signing, key_epoch) = self
            .checkpoint_in_progress()
            .ok_or(LedgerError::NoCheckpoint)?;
        if checkpoint != seq {
            return Err(LedgerError::WrongCheckpoint {
                got_checkpoint: checkpoint,
                got_attempt: 0,
                checkpoint: seq,
                attempt: signing.attempt,
            });
        }
        let result = self
            .dkg_results
            .get(&key_epoch)
            .ok_or(LedgerError::DkgIncomplete(key_epoch))?;
        Ok((seq, signing.clone(), result.ed25519()?, result.threshold))
    }

    /// `CheckpointCommit`: records a signer's FROST commitments; the first `t` fix the signers.
    pub(super) fn apply_checkpoint_commit(
        &mut self,
        author: MemberId,
        checkpoint: u64,
        attempt: u32,
        commitments: &[u8],
    ) -> Result<(), LedgerError> {
        let (seq, mut signing, public, t) = self.checkpoint_context(checkpoint)?;
        let id =
            checkpoint::identifier(&author).map_err(|e| LedgerError::Checkpoint(e.to_string()))?;
        if !public.verifying_shares().contains_key(&id) {
            return Err(LedgerError::NotSigner(
                author,
                "not in the signing key's group",
            ));
        }
        let stalled = self.height
            > signing
                .started_at
                .saturating_add(self.epochs.checkpoint_attempt_blocks);
        if attempt == signing.attempt + 1 && stalled {
            self.exclude_withholders(
                seq,
                &mut signing,
                public.verifying_shares().len(),
                usize::from(t),
            );
            signing.attempt = attempt;
            signing.started_at = self.height;
            signing.commitments.clear();
            signing.shares.clear();
        } else if attempt != signing.attempt {
            return Err(LedgerError::WrongCheckpoint {
                got_checkpoint: checkpoint,
                got_attempt: attempt,
                checkpoint: seq,
                attempt: signing.attempt,
            });
        }
        if signing.excluded.contains(&author) {
            return Err(LedgerError::NotSigner(author, "sent a bad share earlier"));
        }
        if signing.commitments.len() >= usize::from(t) {
            return Err(LedgerError::NotSigner(author, "signer set already fixed"));
        }
        if signing.commitments.iter().any(|(m, _)| *m == author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        SigningCommitments::deserialize(commitments)
            .map_err(|e| LedgerError::Checkpoint(format!("commitments: {e}")))?;
        signing.commitments.push((author, commitments.to_vec()));
        self.checkpoint_signing = Some(signing);
        Ok(())
    }

    /// `CheckpointShare`: records a fixed signer's share; with all `t` in, aggregates, verifies
    /// and records the checkpoint, or excludes the signers of bad shares and starts a new attempt.
    pub(super) fn apply_checkpoint_share(
        &mut self,
        author: MemberId,
        checkpoint: u64,
        attempt: u32,
        share: &[u8],
    ) -> Result<(), LedgerError> {
        let (seq, mut signing, public, t) = self.checkpoint_context(checkpoint)?;
        if attempt != signing.attempt {
            return Err(LedgerError::WrongCheckpoint {
                got_checkpoint: checkpoint,
                got_attempt: attempt,
                checkpoint: seq,
                attempt: signing.attempt,
            });
        }
        if signing.commitments.len() < usize::from(t) {
            return Err(LedgerError::NotSigner(author, "signer set not fixed yet"));
        }
        if !signing.commitments.iter().any(|(m, _)| *m == author) {
            return Err(LedgerError::NotSigner(
                author,
                "not among the fixed signers",
            ));
        }
        if signing.shares.contains_key(&author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        SignatureShare::deserialize(share)
            .map_err(|e| LedgerError::Checkpoint(format!("share: {e}")))?;
        signing.shares.insert(author, share.to_vec());
        if signing.shares.len() < usize::from(t) {
            self.checkpoint_signing = Some(signing);
            return Ok(());
        }
        // All t shares are in: aggregate.
        let due = self
            .checkpoints_due
            .get(&seq)
            .cloned()
            .ok_or(LedgerError::NoCheckpoint)?;
        let cp = due.body.checkpoint();
        let ckerr = |e: checkpoint::CheckpointError| LedgerError::Checkpoint(e.to_string());
        let mut commit_map = BTreeMap::new();
        for (m, c) in &signing.commitments {
            commit_map.insert(
                *m,
                SigningCommitments::deserialize(c)
                    .map_err(|e| LedgerError::Checkpoint(e.to_string()))?,
            );
        }
        let mut share_map = BTreeMap::new();
        for (m, s) in &signing.shares {
            share_map.insert(
                *m,
                SignatureShare::deserialize(s)
                    .map_err(|e| LedgerError::Checkpoint(e.to_string()))?,
            );
        }
        let package = checkpoint::signing_package(&cp, &commit_map).map_err(ckerr)?;
        match checkpoint::aggregate(&package, &share_map, &public) {
            Ok(sig) => {
                let key_epoch = self.checkpoint_key.ok_or(LedgerError::NoCheckpoint)?;
                let group_key = checkpoint::group_key(&public).map_err(ckerr)?;
                let vk = VerifyingKey::from_bytes(&group_key)
                    .map_err(|_| LedgerError::Checkpoint("group key invalid".into()))?;
                vk.verify_strict(&cp.to_bytes(), &Signature::from_bytes(&sig))
                    .map_err(|_| LedgerError::Checkpoint("aggregate does not verify".into()))?;
                self.checkpoints.push(SignedCheckpoint {
                    seq,
                    body: due.body,
                    signature: Signature64(sig),
                    key_epoch,
                    group_key,
                });
                if self.checkpoints.len() > KEEP_CHECKPOINTS {
                    self.checkpoints.remove(0);
                }
                self.checkpoints_due.remove(&seq);
                self.endorse(seq, &due.body.master_key);
                if let Some(k) = due.rotate_to {
                    self.checkpoint_key = Some(k);
                }
                self.checkpoint_signing =
                    (!self.checkpoints_due.is_empty()).then(|| CheckpointSigning {
                        attempt: 0,
                        started_at: self.height,
                        commitments: Vec::new(),
                        shares: BTreeMap::new(),
                        excluded: BTreeSet::new(),
                    });
            }
            Err(checkpoint::CheckpointError::BadShares { culprits }) => {
                for m in &culprits {
                    self.record_checkpoint_fault(seq, &signing, *m, CheckpointFaultKind::BadShare);
                    signing.excluded.insert(*m);
                }
                signing.attempt += 1;
                signing.started_at = self.height;
                signing.commitments.clear();
                signing.shares.clear();
                self.checkpoint_signing = Some(signing);
            }
            Err(e) => return Err(ckerr(e)),
        }
        Ok(())
    }

    /// A stalled attempt is being superseded: its fixed signers (the first `t` commitments)
    /// that sent no share are excluded from the later attempts and recorded as
    /// [`CheckpointFaultKind::Withheld`], as long as at least `t` of the `group` stay eligible
    /// (otherwise nobody more is excluded: a smaller set could never sign). An attempt whose
    /// signer set never filled names nobody.
    fn exclude_withholders(
        &mut self,
        seq: u64,
        signing: &mut CheckpointSigning,
        group: usize,
        t: usize,
    ) {
        if signing.commitments.len() < t {
            return;
        }
        let withheld: Vec<MemberId> = signing
            .commitments
            .iter()
            .take(t)
            .map(|(m, _)| *m)
            .filter(|m| !signing.shares.contains_key(m) && !signing.excluded.contains(m))
            .collect();
        if group.saturating_sub(signing.excluded.len() + withheld.len()) < t {
            return;
        }
        for m in withheld {
            self.record_checkpoint_fault(seq, signing, m, CheckpointFaultKind::Withheld);
            signing.excluded.insert(m);
        }
    }

    fn record_checkpoint_fault(
        &mut self,
        seq: u64,
        signing: &CheckpointSigning,
        member: MemberId,
        kind: CheckpointFaultKind,
    ) {
        self.checkpoint_faults.push(CheckpointFault {
            seq,
            attempt: signing.attempt,
            member,
            height: self.height,
            kind,
        });
        while self.checkpoint_faults.len() > KEEP_CHECKPOINTS {
            self.checkpoint_faults.remove(0);
        }
    }
}
