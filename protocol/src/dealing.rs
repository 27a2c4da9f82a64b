//! Dealing a sector's leaf seeds to their holders: the owner's signed, sealed batches, the
//! holder's checks and acknowledgement, and a complaint that proves a bad batch to anyone.
//!
//! Guarantees: every holder that acknowledges a sector saw the same per-leaf Feldman commitments
//! (bound by one Merkle root, the *commitments root*, that the acknowledgement signs) and stored
//! the sector's tree (its leaf public keys, which the batches carry a chunk at a time) under
//! the sector root the acknowledgement also signs, so that the ledger publishes no sector
//! whose tree only its owner has; a batch
//! is readable only by its holder, and a holder can prove to anyone that a batch signed by the
//! owner carries a share that fails its commitment (or is malformed) without revealing anything
//! but that one batch. The proof ([`DealComplaint`]) carries the batch's signed fields with one
//! leaf's commitment and its Merkle path to the signed chunk root instead of the whole chunk,
//! so it fits a ledger transaction for any chunk. The message-by-message protocol is in
//! `docs/protocol.md`.
//!
//! Commitments travel and are kept as [`EncodedCommitment`]s (compressed points, counted but
//! not decompressed on decoding): the commitments tree hashes the encodings, so nobody needs
//! the points to compute or check a root. A holder decompresses only the commitments of the
//! leaves it holds, in [`open_batch`], before any of their points is used, and refuses the
//! batch (`DealError::InvalidCommitment`, provable by a complaint) if one is not a valid
//! point. It does not decompress the commitments of the other leaves of the chunk, and so may
//! acknowledge a root that binds an invalid encoding for a leaf it does not hold. That is no
//! weaker than before: it could never check those leaves' shares either, so an invalid point
//! there is one more way for the owner to deal a leaf badly to *that leaf's* holders, who
//! decompress it, refuse the batch and do not acknowledge; a sector root needs `a`
//! acknowledgements from every leaf's own holders. The root still binds every holder to the
//! same bytes for every leaf, and anyone who later needs a leaf's points (repair, audit, fault
//! attribution) decodes them with [`EncodedCommitment::decode`] and gets an error, never a
//! point, from an invalid encoding. The owner encodes each commitment once (at dealing) and
//! hashes a chunk once ([`ChunkCommitments`]) for all of the chunk's batches.

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::seal::{self, Sealed};
use crate::shamir::{self, Commitment, EncodedCommitment, Share};

mod commitments;
mod complaint;
mod held;
pub use commitments::{
    chunk_path, chunk_root, commitment_hash, commitments_root, root_from_path, CommitmentTree,
};
pub use complaint::{complain, judge_complaint, DealComplaint, LeafEvidence};
pub use held::{encode_held_chunk, HeldChunk, HeldIndex, HeldSector};

const BATCH_SIG: Domain = Domain::new("seedfed-dealbat");
const BATCH_AD: Domain = Domain::new("seedfed-dealad");
const ACK_SIG: Domain = Domain::new("seedfed-dealack");

/// Largest chunk a batch may cover: `2^MAX_CHUNK_BITS` leaves. Chosen so that a batch's box
/// (at most `2^10` entries of 40 bytes, 40 KiB) fits in a [`DealComplaint`] on the ledger.
pub const MAX_CHUNK_BITS: u8 = 10;
/// Bytes of one `(leaf, share)` entry in a batch's plaintext.
const ENTRY_LEN: usize = 8 + 32;

/// Errors of dealing. Never contain secret values.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DealError {
    /// The batch is not signed by the sector's owner.
    #[error("deal batch signature does not verify under the owner's key")]
    BadSignature,
    /// The batch names another chain, key, sector, owner or holder than expected.
    #[error("deal batch addressed to another context ({0})")]
    WrongContext(&'static str),
    /// The chunk is outside the sector or has the wrong number of commitments.
    #[error("deal batch chunk malformed: {0}")]
    BadChunk(&'static str),
    /// A commitment of a leaf the holder holds is not a valid point encoding.
    #[error("commitment of leaf {leaf} has an invalid point encoding")]
    InvalidCommitment {
        /// The leaf.
        leaf: u64,
    },
    /// A commitment has the wrong threshold.
    #[error("commitment of leaf {leaf} has {got} points, threshold is {k}")]
    BadCommitment {
        /// The leaf.
        leaf: u64,
        /// Points in the commitment.
        got: usize,
        /// Expected threshold.
        k: usize,
    },
    /// The box does not open (or a reveal of it does not verify).
    #[error("deal batch does not open: {0}")]
    Seal(#[from] seal::SealError),
    /// The plaintext is not a list of `(leaf, share)` entries.
    #[error("deal batch plaintext malformed: {0}")]
    Malformed(&'static str),
    /// The batch's leaves are not exactly the leaves this holder holds in the chunk.
    #[error("deal batch carries the wrong leaf set for this holder")]
    WrongLeaves,
    /// Shares that fail their Feldman commitment (global leaf indices).
    #[error("shares of leaves {leaves:?} fail their commitments")]
    BadShares {
        /// The leaves whose shares are bad.
        leaves: Vec<u64>,
    },
    /// An acknowledgement's signature does not verify.
    #[error("deal acknowledgement signature does not verify")]
    BadAck,
    /// A complaint that proves nothing against the owner.
    #[error("complaint rejected: {0}")]
    ComplaintRejected(&'static str),
}

/// What a batch or acknowledgement is bound to: one sector of one key on one chain, dealt by
/// its owner to the holders of one holder basis. The basis is part of it because it decides
/// each holder's leaves: a batch dealt under another basis is another context (it proves
/// nothing against the owner), never a wrong leaf set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorId {
    /// The chain digest (`ledger::chain_digest`).
    pub chain: [u8; 32],
    /// The key number (0 for the first key).
    pub key: u32,
    /// The sector (branch) index.
    pub sector: u32,
    /// The sector's owner (dealer).
    pub owner: MemberId,
    /// The digest of the holder basis the leaves' holders are chosen from
    /// (`ledger::HolderBasis::digest`).
    pub basis: [u8; 32],
}

impl SectorId {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 4 + 4 + 32 + 32);
        out.extend_from_slice(&self.chain);
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.sector.to_le_bytes());
        out.extend_from_slice(self.owner.as_bytes());
        out.extend_from_slice(&self.basis);
        out
    }
}

/// One batch of a sector's dealing to one holder: the public commitments of an aligned chunk of
/// leaves and, sealed to the holder, its shares of the chunk's leaves it holds. Signed by the
/// owner, so the holder can show it to anyone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealBatch {
    /// The sector and its owner.
    pub id: SectorId,
    /// The holder this batch is for.
    pub holder: MemberId,
    /// First (global) leaf of the chunk.
    pub first_leaf: u64,
    /// One commitment per leaf of the chunk (`2^c` of them, `c ≤ MAX_CHUNK_BITS`), encoded:
    /// the holder decodes those of its own leaves in [`open_batch`].
    pub commitments: Vec<EncodedCommitment>,
    /// The leaf public keys of the chunk (`K_q`, one per commitment): the owner's sector tree,
    /// a chunk at a time, so that every holder keeps the whole tree before it acknowledges
    /// (its [`DealAck`] names the root the keys build). Not signed: nothing a holder proves to
    /// others depends on them, and keys altered on the way only make the holder acknowledge a
    /// root the owner does not publish.
    pub keys: Vec<[u8; 32]>,
    /// `seal_ephemeral` box of the holder's `(leaf u64 LE ‖ share 32 bytes)` entries, in leaf
    /// order.
    pub sealed: Sealed,
    /// Owner's Ed25519 signature over [`DealBatch::signed_message`].
    pub signature: Vec<u8>,
}

impl DealBatch {
    /// The associated data of the box: the context without the box itself.
    fn ad(id: &SectorId, holder: &MemberId, first_leaf: u64, chunk_root: &[u8; 32]) -> [u8; 32] {
        hash32(
            BATCH_AD,
            &[],
            &[0; 16],
            &[
                &id.bytes(),
                holder.as_bytes(),
                &first_leaf.to_le_bytes(),
                chunk_root,
            ],
        )
    }

    /// What the owner signs: the context, the chunk's commitments root and the box.
    pub fn signed_message(&self) -> Result<[u8; 32], DealError> {
        let root = chunk_root(self.first_leaf, &self.commitments)?;
        Ok(Self::message(
            &self.id,
            &self.holder,
            self.first_leaf,
            &root,
            &self.sealed,
        ))
    }

    fn message(
        id: &SectorId,
        holder: &MemberId,
        first_leaf: u64,
        chunk_root: &[u8; 32],
        sealed: &Sealed,
    ) -> [u8; 32] {
        hash32(
            BATCH_SIG,
            &[],
            &[0; 16],
            &[
                &id.bytes(),
                holder.as_bytes(),
                &first_leaf.to_le_bytes(),
                chunk_root,
                &sealed.ephemeral,
                &sealed.ciphertext,
            ],
        )
    }

    /// The root of this batch's chunk of commitments.
    pub fn chunk_root(&self) -> Result<[u8; 32], DealError> {
        chunk_root(self.first_leaf, &self.commitments)
    }

    /// Checks the owner's signature and the chunk's shape (aligned, at most
    /// `2^MAX_CHUNK_BITS` leaves, every commitment with `k` encoded points). Decodes no point.
    pub fn verify_public(&self, k: usize) -> Result<[u8; 32], DealError> {
        if self.commitments.len() > 1 << MAX_CHUNK_BITS {
            return Err(DealError::BadChunk("chunk larger than the maximum"));
        }
        if self.keys.len() != self.commitments.len() {
            return Err(DealError::BadChunk("not one leaf key per commitment"));
        }
        for (i, c) in self.commitments.iter().enumerate() {
            if c.threshold() != k {
                return Err(DealError::BadCommitment {
                    leaf: self.first_leaf + i as u64,
                    got: c.threshold(),
                    k,
                });
            }
        }
        let root = self.chunk_root()?;
        verify_owner_signature(
            &self.id,
            &self.holder,
            self.first_leaf,
            &root,
            &self.sealed,
            &self.signature,
        )?;
        Ok(root)
    }
}

/// Checks the owner's signature over a batch's context, chunk root and box.
fn verify_owner_signature(
    id: &SectorId,
    holder: &MemberId,
    first_leaf: u64,
    chunk_root: &[u8; 32],
    sealed: &Sealed,
    signature: &[u8],
) -> Result<(), DealError> {
    let msg = DealBatch::message(id, holder, first_leaf, chunk_root, sealed);
    let key = VerifyingKey::from_bytes(id.owner.as_bytes()).map_err(|_| DealError::BadSignature)?;
    let sig = Signature::from_slice(signature).map_err(|_| DealError::BadSignature)?;
    key.verify_strict(&msg, &sig)
        .map_err(|_| DealError::BadSignature)
}

/// A batch's recipient: a holder and its registered X25519 key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The holder.
    pub id: MemberId,
    /// Its X25519 key from the ledger.
    pub x25519: [u8; 32],
}

/// The owner's commitments of one chunk, encoded and hashed once for all of the chunk's
/// batches: the encodings of an aligned, power-of-two run of leaves and their root.
#[derive(Clone, Debug)]
pub struct ChunkCommitments {
    first_leaf: u64,
    commitments: Vec<EncodedCommitment>,
    root: [u8; 32],
}

impl ChunkCommitments {
    /// The chunk of `commitments` (a power of two, at most `2^MAX_CHUNK_BITS`) starting at
    /// `first_leaf` (aligned to it).
    pub fn new(
        first_leaf: u64,
        commitments: Vec<EncodedCommitment>,
    ) -> Result<ChunkCommitments, DealError> {
        if commitments.len() > 1 << MAX_CHUNK_BITS {
            return Err(DealError::BadChunk("chunk larger than the maximum"));
        }
        let root = chunk_root(first_leaf, &commitments)?;
        Ok(ChunkCommitments {
            first_leaf,
            commitments,
            root,
        })
    }

    /// The chunk's first global leaf.
    pub fn first_leaf(&self) -> u64 {
        self.first_leaf
    }

    /// The chunk's commitments, in leaf order.
    pub fn commitments(&self) -> &[EncodedCommitment] {
        &self.commitments
    }

    /// The chunk's root (a node of the sector's commitments tree).
    pub fn root(&self) -> [u8; 32] {
        self.root
    }
}

/// Builds the owner's batch of `chunk` (with the chunk's leaf public keys `keys`) for `to`:
/// `shares` are `(global leaf, share)` for the leaves of the chunk that `to` holds, in leaf
/// order.
pub fn seal_batch<R: RngCore + CryptoRng>(
    id: SectorId,
    owner_key: &SigningKey,
    to: Recipient,
    chunk: &ChunkCommitments,
    keys: &[[u8; 32]],
    shares: &[(u64, &Share)],
    rng: &mut R,
) -> Result<DealBatch, DealError> {
    let SealedShares { sealed, signature } = seal_shares(id, owner_key, to, chunk, shares, rng)?;
    Ok(DealBatch {
        id,
        holder: to.id,
        first_leaf: chunk.first_leaf,
        commitments: chunk.commitments.clone(),
        keys: keys.to_vec(),
        sealed,
        signature,
    })
}

/// A holder's own part of its batch of a chunk: the sealed shares and the owner's signature
/// (over the context, the chunk's root and the box). With the chunk's commitments and leaf
/// keys, which all of the chunk's batches share, it is the [`DealBatch`].
#[derive(Clone, Debug)]
pub struct SealedShares {
    /// The box of the holder's shares ([`DealBatch::sealed`]).
    pub sealed: Sealed,
    /// The owner's signature ([`DealBatch::signature`]).
    pub signature: Vec<u8>,
}

/// [`seal_batch`] without a copy of the chunk's commitments: the holder's own part.
pub fn seal_shares<R: RngCore + CryptoRng>(
    id: SectorId,
    owner_key: &SigningKey,
    to: Recipient,
    chunk: &ChunkCommitments,
    shares: &[(u64, &Share)],
    rng: &mut R,
) -> Result<SealedShares, DealError> {
    if owner_key.verifying_key().to_bytes() != *id.owner.as_bytes() {
        return Err(DealError::WrongContext("signing key is not the owner's"));
    }
    let Recipient {
        id: holder,
        x25519: holder_x25519,
    } = to;
    let (first_leaf, root) = (chunk.first_leaf, chunk.root);
    let mut plain = Zeroizing::new(Vec::with_capacity(shares.len() * ENTRY_LEN));
    for (leaf, share) in shares {
        if share.holder != holder {
            return Err(DealError::WrongContext("share of another holder"));
        }
        plain.extend_from_slice(&leaf.to_le_bytes());
        plain.extend_from_slice(&*share.value_bytes());
    }
    let ad = DealBatch::ad(&id, &holder, first_leaf, &root);
    let sealed = seal::seal_ephemeral(&PublicKey::from(holder_x25519), &ad, &plain, rng)?;
    let msg = DealBatch::message(&id, &holder, first_leaf, &root, &sealed);
    Ok(SealedShares {
        sealed,
        signature: owner_key.sign(&msg).to_bytes().to_vec(),
    })
}

/// The shares a holder took from a batch: `(global leaf, share)` in leaf order.
pub type ReceivedShares = Vec<(u64, Share)>;

fn parse_entries(
    holder: MemberId,
    first_leaf: u64,
    chunk_len: u64,
    plain: &[u8],
) -> Result<ReceivedShares, DealError> {
    if !plain.len().is_multiple_of(ENTRY_LEN) {
        return Err(DealError::Malformed(
            "length is not a whole number of entries",
        ));
    }
    let mut out = Vec::with_capacity(plain.len() / ENTRY_LEN);
    let mut last: Option<u64> = None;
    for entry in plain.chunks(ENTRY_LEN) {
        let mut leaf_bytes = [0u8; 8];
        leaf_bytes.copy_from_slice(&entry[..8]);
        let leaf = u64::from_le_bytes(leaf_bytes);
        if leaf < first_leaf || leaf - first_leaf >= chunk_len {
            return Err(DealError::Malformed("leaf outside the chunk"));
        }
        if last.is_some_and(|l| l >= leaf) {
            return Err(DealError::Malformed("leaves not in increasing order"));
        }
        last = Some(leaf);
        let mut value = Zeroizing::new([0u8; 32]);
        value.copy_from_slice(&entry[8..]);
        let share =
            Share::new(holder, &value).map_err(|_| DealError::Malformed("non-canonical share"))?;
        out.push((leaf, share));
    }
    Ok(out)
}

/// Decodes the commitments of the leaves of `shares` (rejecting an invalid point before any is
/// used) and checks every share against its commitment.
fn check_shares<R: RngCore + CryptoRng>(
    batch: &DealBatch,
    shares: &ReceivedShares,
    k: usize,
    rng: &mut R,
) -> Result<(), DealError> {
    let commitments = shares
        .iter()
        .map(|(leaf, _)| {
            let encoded = leaf
                .checked_sub(batch.first_leaf)
                .and_then(|i| batch.commitments.get(usize::try_from(i).ok()?))
                .ok_or(DealError::Malformed("leaf outside the chunk"))?;
            encoded
                .decode()
                .map_err(|_| DealError::InvalidCommitment { leaf: *leaf })
        })
        .collect::<Result<Vec<Commitment>, DealError>>()?;
    let items: Vec<(&Share, &Commitment)> =
        shares.iter().map(|(_, s)| s).zip(&commitments).collect();
    match shamir::verify_batch(&items, k, rng) {
        Ok(()) => Ok(()),
        Err(shamir::ShamirError::BadShares { indices }) => Err(DealError::BadShares {
            leaves: indices.into_iter().map(|i| shares[i].0).collect(),
        }),
        Err(_) => Err(DealError::Malformed("share verification failed")),
    }
}

/// The holder's side: checks the batch is for `expected` context and holder, signed by the
/// owner, opens it, checks its leaves are exactly `my_leaves` (the chunk's leaves the ledger
/// assigns to this holder) and every share against its commitment, decoding the commitments of
/// exactly those leaves (an invalid point is [`DealError::InvalidCommitment`]). Returns the
/// shares and the chunk root.
pub fn open_batch<R: RngCore + CryptoRng>(
    batch: &DealBatch,
    expected: &SectorId,
    me: &MemberId,
    my_x25519: &StaticSecret,
    my_leaves: &BTreeSet<u64>,
    k: usize,
    rng: &mut R,
) -> Result<(ReceivedShares, [u8; 32]), DealError> {
    if batch.id != *expected {
        return Err(DealError::WrongContext("sector"));
    }
    if batch.holder != *me {
        return Err(DealError::WrongContext("holder"));
    }
    let root = batch.verify_public(k)?;
    let ad = DealBatch::ad(&batch.id, &batch.holder, batch.first_leaf, &root);
    let plain = seal::open_ephemeral(my_x25519, &ad, &batch.sealed)?;
    let shares = parse_entries(
        *me,
        batch.first_leaf,
        batch.commitments.len() as u64,
        &plain,
    )?;
    let got: BTreeSet<u64> = shares.iter().map(|(l, _)| *l).collect();
    if got != *my_leaves {
        return Err(DealError::WrongLeaves);
    }
    check_shares(batch, &shares, k, rng)?;
    Ok((shares, root))
}

/// The chunk size of a sector's dealing, in bits: the whole sector of `2^sector_height` leaves
/// when it fits in one batch, else chunks of `2^MAX_CHUNK_BITS`. Owner and holders derive it
/// from the ledger's layout, so a holder knows which batches make a sector complete.
pub fn chunk_bits(sector_height: u32) -> u8 {
    sector_height.min(u32::from(MAX_CHUNK_BITS)) as u8
}

/// A holder's signed statement that it stored its shares of a sector durably, saw the
/// commitments whose root is `commitments_root`, and stored the sector tree whose root is
/// `root` (so a published sector's tree is kept by every holder that acknowledged it, not by
/// its owner alone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealAck {
    /// The holder.
    pub holder: MemberId,
    /// The sector's commitments root it saw.
    pub commitments_root: [u8; 32],
    /// The root of the sector tree it stored.
    pub root: [u8; 32],
    /// The holder's Ed25519 signature over [`ack_message`].
    pub signature: Vec<u8>,
}

/// What a holder signs to acknowledge a sector.
pub fn ack_message(
    id: &SectorId,
    holder: &MemberId,
    commitments_root: &[u8; 32],
    root: &[u8; 32],
) -> [u8; 32] {
    hash32(
        ACK_SIG,
        &[],
        &[0; 16],
        &[&id.bytes(), holder.as_bytes(), commitments_root, root],
    )
}

/// Signs an acknowledgement of the dealing with `commitments_root` and the tree with `root`.
pub fn sign_ack(
    id: &SectorId,
    holder_key: &SigningKey,
    commitments_root: [u8; 32],
    root: [u8; 32],
) -> DealAck {
    let holder = MemberId(holder_key.verifying_key().to_bytes());
    let msg = ack_message(id, &holder, &commitments_root, &root);
    DealAck {
        holder,
        commitments_root,
        root,
        signature: holder_key.sign(&msg).to_bytes().to_vec(),
    }
}

/// Verifies an acknowledgement for `id`, `commitments_root` and the sector root `root`.
pub fn verify_ack(
    id: &SectorId,
    ack: &DealAck,
    commitments_root: &[u8; 32],
    root: &[u8; 32],
) -> Result<(), DealError> {
    if ack.commitments_root != *commitments_root || ack.root != *root {
        return Err(DealError::BadAck);
    }
    let key = VerifyingKey::from_bytes(ack.holder.as_bytes()).map_err(|_| DealError::BadAck)?;
    let sig = Signature::from_slice(&ack.signature).map_err(|_| DealError::BadAck)?;
    key.verify_strict(&ack_message(id, &ack.holder, commitments_root, root), &sig)
        .map_err(|_| DealError::BadAck)
}

#[cfg(test)]
mod tests;
