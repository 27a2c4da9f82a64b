//! Checkpoints on the ledger: what is signed, the queue of checkpoints due, the progress of the
//! threshold signing of its head, and the signed records.
//!
//! Guarantees: a checkpoint carries its sequence number and the Ed25519 key that signs the next
//! one (`next_key`), and its [`validator_set_hash`] commits to the epoch's validators and to
//! the group keys in force after it, so a light client walks the chain of checkpoints from
//! epoch 0's key (`light_client::Trusted`, `docs/light-client.md`); the state keeps the last
//! [`KEEP_CHECKPOINTS`] records, older ones stay in the blocks that recorded them. A checkpoint
//! that carries the master key also commits to the digest of the retired leaves
//! ([`crate::retired`]), fixed by then: the master root waits for every audit.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::tx::Signature64;
use crate::checkpoint::{Checkpoint, MasterKey};
use crate::hash::{hash32, Domain};
use crate::member::MemberId;

const VALSET_DOMAIN: Domain = Domain::new("seedfed-valset");

/// How many recorded checkpoints and checkpoint faults the state keeps (older ones stay in the
/// blocks that recorded them).
pub const KEEP_CHECKPOINTS: usize = 16;

/// A checkpoint's content (serde mirror of [`checkpoint::Checkpoint`](Checkpoint)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// [`chain_digest`](super::genesis::chain_digest) of the chain id.
    pub chain_id: [u8; 32],
    /// Sequence number (the same as the [`SignedCheckpoint`]'s): 0, 1, 2, ... without gaps.
    pub seq: u64,
    /// Epoch at the time it became due.
    pub epoch: u64,
    /// Height at which it became due.
    pub height: u64,
    /// The master LMS public key: type codes, `I` and root ([`MasterKey::NONE`], all zeros,
    /// before the master root is final).
    pub master_key: MasterKey,
    /// The Ed25519 group key that signs the next checkpoint (the new key for a rotation
    /// checkpoint, else the one that signs this one).
    pub next_key: [u8; 32],
    /// [`validator_set_hash`].
    pub validator_set_hash: [u8; 32],
    /// The digest of the leaves the audit retired
    /// ([`RetiredLeaves::digest`](crate::retired::RetiredLeaves::digest) of
    /// `LedgerState::retired_leaves`), all zeros while `master_key` is [`MasterKey::NONE`].
    pub retired_digest: [u8; 32],
}

impl CheckpointBody {
    /// As the `checkpoint` module's type.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            chain_id: self.chain_id,
            seq: self.seq,
            epoch: self.epoch,
            height: self.height,
            master_key: self.master_key,
            next_key: self.next_key,
            validator_set_hash: self.validator_set_hash,
            retired_digest: self.retired_digest,
        }
    }
}

/// A checkpoint waiting to be signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDue {
    /// What is signed.
    pub body: CheckpointBody,
    /// For a rotation checkpoint: the epoch whose DKG key is in force once it is recorded.
    pub rotate_to: Option<u64>,
}

/// The signing of the head of the checkpoint queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSigning {
    /// Attempt.
    pub attempt: u32,
    /// Height at which this attempt started.
    pub started_at: u64,
    /// Commitments in ledger order; the first `t` are the signers.
    pub commitments: Vec<(MemberId, Vec<u8>)>,
    /// Shares of the signers.
    pub shares: BTreeMap<MemberId, Vec<u8>>,
    /// Members excluded from later attempts of this checkpoint: their shares were bad, or they
    /// were fixed signers of an attempt that stalled without their share.
    pub excluded: BTreeSet<MemberId>,
}

/// A recorded, verified checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// Sequence number.
    pub seq: u64,
    /// What was signed.
    pub body: CheckpointBody,
    /// The aggregate Ed25519 signature over `body.checkpoint().to_bytes()`.
    pub signature: Signature64,
    /// Epoch of the DKG whose key signed it.
    pub key_epoch: u64,
    /// That key.
    pub group_key: [u8; 32],
}

/// A checkpoint signer's fault, attributed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointFault {
    /// Checkpoint number.
    pub seq: u64,
    /// Attempt.
    pub attempt: u32,
    /// The signer.
    pub member: MemberId,
    /// Height.
    pub height: u64,
    /// What it did.
    pub kind: CheckpointFaultKind,
}

/// What a checkpoint signer did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointFaultKind {
    /// Its share failed verification (the aggregate names it).
    BadShare,
    /// It was a fixed signer (among the first `t` commitments) of an attempt that stalled for
    /// `checkpoint_attempt_blocks` without its share: excluded when the next attempt opens,
    /// so one withholder cannot stall every attempt.
    Withheld,
}

/// The validator-set hash a checkpoint carries: BLAKE2b(`seedfed-valset`, for each validator in
/// member order: id ‖ u64le(stake) ‖ X25519 key; then the Ed25519 and the ristretto255 group
/// keys that sign/serve *after* this checkpoint). A light client that trusts a checkpoint and is
/// given the preimage learns the key that signs the next one.
pub fn validator_set_hash(
    validators: &BTreeMap<MemberId, (u64, [u8; 32])>,
    next_ed25519: &[u8; 32],
    next_ristretto255: &[u8; 32],
) -> [u8; 32] {
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(validators.len() + 2);
    for (m, (stake, x)) in validators {
        let mut p = m.0.to_vec();
        p.extend_from_slice(&stake.to_le_bytes());
        p.extend_from_slice(x);
        parts.push(p);
    }
    parts.push(next_ed25519.to_vec());
    parts.push(next_ristretto255.to_vec());
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    hash32(VALSET_DOMAIN, &[], &[0; 16], &refs)
}
