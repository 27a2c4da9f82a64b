//! What a holder keeps of a sector's dealing (`docs/protocol.md` step 5), one chunk at a time:
//! each chunk it checked is a [`HeldChunk`] (the chunk's commitments and its own shares of the
//! chunk's leaves), kept as soon as it is checked, and once every chunk is in, a [`HeldIndex`]
//! names the chunks (by commitments root, in leaf order) that make the dealing it
//! acknowledged. A holder never has a whole sector's commitments in memory while it deals:
//! at 2^20 leaves one sector's are 24 MiB, and the single record that held them, encoded,
//! sealed and written, cost an owner about 185 MiB at once (docs/benchmarks.md, *Memory at
//! 2^20 leaves*). Readers get the [`HeldSector`] back with [`HeldSector::assemble`].
//!
//! Guarantees: [`encode_held_chunk`] gives the bytes of the [`HeldChunk`] it stands for;
//! [`HeldSector::assemble`] accepts exactly the chunks the index names, in order, and an index
//! whose chunk roots give its commitments root; chunk shares are encoded only into wiped
//! buffers and `Debug` redacts them.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{commitments_root, DealError, ReceivedShares, SectorId};
use crate::shamir::EncodedCommitment;

/// A holder's record of one checked chunk: its commitments (public) and the holder's shares of
/// its leaves (secret: the node stores the record sealed at rest, under the sector and the
/// chunk's commitments root). `Debug` redacts the shares.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeldChunk {
    /// The chunk's first global leaf.
    pub first_leaf: u64,
    /// One commitment per leaf of the chunk, in leaf order.
    pub commitments: Vec<EncodedCommitment>,
    /// This holder's shares of the chunk's leaves: `(global leaf, share)` in leaf order.
    #[serde(with = "crate::shamir::secret_shares")]
    pub shares: ReceivedShares,
}

/// The encoding of the [`HeldChunk`] with these fields, from the batch's commitments without
/// copying them, in a buffer wiped on drop: seal it, never log it.
pub fn encode_held_chunk(
    first_leaf: u64,
    commitments: &[EncodedCommitment],
    shares: &ReceivedShares,
) -> Zeroizing<Vec<u8>> {
    /// [`HeldChunk`]'s fields in order, borrowed.
    #[derive(Serialize)]
    struct Record<'a> {
        first_leaf: u64,
        commitments: &'a [EncodedCommitment],
        #[serde(serialize_with = "crate::shamir::secret_shares::serialize")]
        shares: &'a ReceivedShares,
    }
    crate::ledger::encode_secret(&Record {
        first_leaf,
        commitments,
        shares,
    })
}

/// A holder's record of a whole sector it acknowledged: the dealing, its commitments root and
/// the roots of its chunks in leaf order (each chunk kept as a [`HeldChunk`] under its root).
/// Public: no share is in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldIndex {
    /// The sector and its owner.
    pub id: SectorId,
    /// The sector's commitments root (what the holder acknowledged).
    pub commitments_root: [u8; 32],
    /// The sector's first global leaf.
    pub first_leaf: u64,
    /// Leaves per chunk, in bits (`dealing::chunk_bits`).
    pub chunk_bits: u8,
    /// The chunks' commitments roots, in leaf order.
    pub chunk_roots: Vec<[u8; 32]>,
}

impl HeldIndex {
    /// Whether the chunk roots give the commitments root (an index damaged on disk does not).
    pub fn check(&self) -> Result<(), DealError> {
        let n = self.chunk_roots.len();
        if n == 0 || !n.is_power_of_two() || self.chunk_bits > 63 {
            return Err(DealError::BadChunk("not a whole sector of chunks"));
        }
        if commitments_root(self.first_leaf, self.chunk_bits, &self.chunk_roots)
            != self.commitments_root
        {
            return Err(DealError::BadChunk(
                "the chunk roots do not give the commitments root",
            ));
        }
        Ok(())
    }

    /// The first leaf of chunk `i`.
    pub fn chunk_start(&self, i: usize) -> u64 {
        self.first_leaf + ((i as u64) << self.chunk_bits)
    }
}

/// What a holder keeps of a sector, read back whole: the commitments of every leaf (public;
/// needed to attribute faults at signing and repair) and its own shares (secret). `Debug`
/// redacts the shares. The commitments are kept encoded: those of the holder's own leaves were
/// decoded and checked, the others only hashed into the acknowledged root; decode on use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeldSector {
    /// The sector and its owner.
    pub id: SectorId,
    /// The sector's commitments root (what the holder acknowledged).
    pub commitments_root: [u8; 32],
    /// The sector's first global leaf.
    pub first_leaf: u64,
    /// One commitment per leaf of the sector, in leaf order.
    pub commitments: Vec<EncodedCommitment>,
    /// This holder's shares: `(global leaf, share)` in leaf order.
    #[serde(with = "crate::shamir::secret_shares")]
    pub shares: ReceivedShares,
}

impl HeldSector {
    /// The sector `index` names, from its chunks in leaf order: the index must check, and each
    /// chunk must be the one at its place (its first leaf, a whole chunk of commitments). The
    /// chunks' contents are not re-hashed here: the node stores each sealed and bound to its
    /// root, so one it opens is the one it kept.
    pub fn assemble(
        index: &HeldIndex,
        chunks: impl IntoIterator<Item = HeldChunk>,
    ) -> Result<HeldSector, DealError> {
        index.check()?;
        let chunk_len = 1usize << index.chunk_bits;
        let mut commitments = Vec::with_capacity(index.chunk_roots.len() * chunk_len);
        let mut shares = Vec::new();
        let mut count = 0;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let start = index.chunk_start(i);
            if i >= index.chunk_roots.len()
                || chunk.first_leaf != start
                || chunk.commitments.len() != chunk_len
                || chunk
                    .shares
                    .iter()
                    .any(|(l, _)| *l < start || *l - start >= chunk_len as u64)
            {
                return Err(DealError::BadChunk("a held chunk out of its place"));
            }
            commitments.extend(chunk.commitments);
            shares.extend(chunk.shares);
            count += 1;
        }
        if count != index.chunk_roots.len() {
            return Err(DealError::BadChunk("held chunks missing"));
        }
        Ok(HeldSector {
            id: index.id,
            commitments_root: index.commitments_root,
            first_leaf: index.first_leaf,
            commitments,
            shares,
        })
    }
}
