//! A holder's public proof of a bad batch ([`DealComplaint`]): the batch's signed fields, the
//! box's revealed Diffie–Hellman secret and, for a fault about one leaf, that leaf's commitment
//! with its Merkle path to the signed chunk root, so it fits a ledger transaction for any
//! chunk; and the deterministic judgement anyone (the ledger) runs on it.

use std::collections::BTreeSet;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};

use super::{
    chunk_path, parse_entries, root_from_path, verify_owner_signature, DealBatch, DealError,
    SectorId, MAX_CHUNK_BITS,
};
use crate::member::MemberId;
use crate::seal::{self, RevealedSecret, Sealed};
use crate::shamir::{self, EncodedCommitment};

/// One leaf's commitment with its authentication path to the chunk root a batch signs: the
/// part of a chunk a complaint needs (not the whole chunk's commitments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafEvidence {
    /// The leaf (global index).
    pub leaf: u64,
    /// Its commitment, as the owner signed it (encoded: a complaint may be about an invalid
    /// point).
    pub commitment: EncodedCommitment,
    /// Its path to the chunk root, bottom up ([`chunk_path`]).
    pub path: Vec<[u8; 32]>,
}

/// A holder's public proof that a batch signed by the owner is bad: the batch's signed fields
/// (context, chunk root, box, signature), the box's revealed Diffie–Hellman secret and, when
/// the fault is about one leaf (a share that fails its commitment, a commitment of the wrong
/// threshold), that leaf's commitment with its path to the signed chunk root. Anyone can judge
/// it with [`judge_complaint`]. At most about 44 KiB (a box of `2^MAX_CHUNK_BITS` entries and
/// a commitment of `shamir::MAX_THRESHOLD` points).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealComplaint {
    /// The sector and its owner.
    pub id: SectorId,
    /// The complaining holder (the batch's addressee).
    pub holder: MemberId,
    /// First (global) leaf of the chunk.
    pub first_leaf: u64,
    /// The root of the chunk's commitments the owner signed.
    pub chunk_root: [u8; 32],
    /// The box.
    pub sealed: Sealed,
    /// The owner's signature over [`DealBatch::signed_message`].
    pub signature: Vec<u8>,
    /// The box's ephemeral-static secret with its proof; `None` when the ephemeral key itself
    /// is invalid (visible to anyone).
    pub reveal: Option<RevealedSecret>,
    /// The accused leaf's commitment and path, for faults about one leaf.
    pub evidence: Option<LeafEvidence>,
}

impl DealError {
    /// Whether a complaint proves this fault of an owner-signed batch to anyone, and about
    /// which leaf: `None` when it proves nothing (unsigned, another context or holder, a chunk
    /// of the wrong shape); `Some(Some(leaf))` when it is about one leaf's share or
    /// commitment; `Some(None)` for a fault of the whole box (it does not open, malformed
    /// plaintext, wrong leaf set, invalid ephemeral key).
    pub fn provable(&self) -> Option<Option<u64>> {
        match self {
            DealError::BadCommitment { leaf, .. } | DealError::InvalidCommitment { leaf } => {
                Some(Some(*leaf))
            }
            DealError::BadShares { leaves } => leaves.first().map(|l| Some(*l)),
            DealError::Seal(_) | DealError::Malformed(_) | DealError::WrongLeaves => Some(None),
            DealError::BadSignature
            | DealError::WrongContext(_)
            | DealError::BadChunk(_)
            | DealError::BadAck
            | DealError::ComplaintRejected(_) => None,
        }
    }
}

/// Builds a complaint about `batch` (addressed to the caller), with `leaf`'s commitment and
/// path as evidence when the fault is about that leaf ([`DealError::provable`]).
pub fn complain<R: RngCore + CryptoRng>(
    batch: &DealBatch,
    my_x25519: &StaticSecret,
    leaf: Option<u64>,
    rng: &mut R,
) -> Result<DealComplaint, DealError> {
    let chunk_root = batch.chunk_root()?;
    let evidence = match leaf {
        Some(leaf) => {
            let path = chunk_path(batch.first_leaf, &batch.commitments, leaf)?;
            let commitment = leaf
                .checked_sub(batch.first_leaf)
                .and_then(|i| batch.commitments.get(usize::try_from(i).ok()?))
                .ok_or(DealError::BadChunk("leaf outside the chunk"))?
                .clone();
            Some(LeafEvidence {
                leaf,
                commitment,
                path,
            })
        }
        None => None,
    };
    let reveal = if seal::ephemeral_is_valid(&batch.sealed) {
        Some(seal::reveal_ephemeral(my_x25519, &batch.sealed, rng)?)
    } else {
        None
    };
    Ok(DealComplaint {
        id: batch.id,
        holder: batch.holder,
        first_leaf: batch.first_leaf,
        chunk_root,
        sealed: batch.sealed.clone(),
        signature: batch.signature.clone(),
        reveal,
        evidence,
    })
}

/// Judges a complaint from anyone's view: `Ok(reason)` when it proves the owner dealt a bad
/// batch, an error when it proves nothing (unsigned batch, a chunk that is not aligned to
/// `2^chunk_bits` leaves, evidence that is not in the signed chunk, a reveal that does not
/// verify, or a batch that is in fact good). `holder_leaves` are the chunk's leaves the ledger
/// assigns to the complaining holder; `holder_x25519` its registered key. Deterministic (one
/// share is checked, no randomness), so a ledger can run it.
pub fn judge_complaint(
    complaint: &DealComplaint,
    holder_x25519: &[u8; 32],
    holder_leaves: &BTreeSet<u64>,
    chunk_bits: u8,
    k: usize,
) -> Result<&'static str, DealError> {
    let c = complaint;
    let chunk_len = 1u64 << chunk_bits.min(MAX_CHUNK_BITS);
    if chunk_bits > MAX_CHUNK_BITS || !c.first_leaf.is_multiple_of(chunk_len) {
        return Err(DealError::ComplaintRejected("not an aligned chunk"));
    }
    if verify_owner_signature(
        &c.id,
        &c.holder,
        c.first_leaf,
        &c.chunk_root,
        &c.sealed,
        &c.signature,
    )
    .is_err()
    {
        return Err(DealError::ComplaintRejected(
            "batch not signed by the owner",
        ));
    }
    if let Some(e) = &c.evidence {
        let inside = e
            .leaf
            .checked_sub(c.first_leaf)
            .is_some_and(|p| p < chunk_len);
        if !inside
            || e.path.len() != usize::from(chunk_bits)
            || root_from_path(e.leaf, &e.commitment, &e.path) != c.chunk_root
        {
            return Err(DealError::ComplaintRejected(
                "commitment not in the signed chunk",
            ));
        }
        // Signed, but with a commitment of the wrong threshold: the owner's fault.
        if e.commitment.threshold() != k {
            return Ok("commitment of the wrong threshold");
        }
    }
    let Some(reveal) = &c.reveal else {
        return if seal::ephemeral_is_valid(&c.sealed) {
            Err(DealError::ComplaintRejected("no reveal for a valid box"))
        } else {
            Ok("invalid ephemeral key")
        };
    };
    let ad = DealBatch::ad(&c.id, &c.holder, c.first_leaf, &c.chunk_root);
    let plain = match seal::open_revealed(&PublicKey::from(*holder_x25519), &ad, &c.sealed, reveal)
    {
        Ok(p) => p,
        Err(seal::SealError::BadReveal) => {
            return Err(DealError::ComplaintRejected("reveal does not verify"))
        }
        Err(_) => return Ok("box does not open"),
    };
    let Ok(shares) = parse_entries(c.holder, c.first_leaf, chunk_len, &plain) else {
        return Ok("malformed plaintext");
    };
    let got: BTreeSet<u64> = shares.iter().map(|(l, _)| *l).collect();
    if got != *holder_leaves {
        return Ok("wrong leaf set");
    }
    let Some(e) = &c.evidence else {
        return Err(DealError::ComplaintRejected(
            "no commitment to check a share against",
        ));
    };
    let Some((_, share)) = shares.iter().find(|(l, _)| *l == e.leaf) else {
        return Err(DealError::ComplaintRejected(
            "the holder has no share of that leaf",
        ));
    };
    let Ok(commitment) = e.commitment.decode() else {
        return Ok("commitment with an invalid point");
    };
    match shamir::verify_share(share, &commitment, k) {
        Ok(()) => Err(DealError::ComplaintRejected("the share verifies")),
        Err(_) => Ok("share fails its commitment"),
    }
}
