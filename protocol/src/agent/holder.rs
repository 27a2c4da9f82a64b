//! The leaf-share holder (`docs/protocol.md` steps 4–5): checks each dealt batch (the owner's
//! signature, the chunk's place in the sector, exactly the leaves the ledger gives us, every
//! share against its commitment) and asks the node to keep the chunk's commitments and our
//! shares at once ([`Duty::KeepChunk`]); once every chunk of the sector is in, it asks the node
//! to keep the sector's tree (built from the leaf keys the batches carry, [`Duty::KeepTree`])
//! and the index of its chunks ([`Duty::Keep`]) durably and then acknowledges both to the
//! owner: the acknowledgement names the tree's root, so a sector the ledger publishes has its
//! tree at every holder that acknowledged it. A signed batch that fails a check a third party
//! can verify is answered with a `DealComplaint` on the ledger instead, which convicts the
//! owner.
//!
//! Guarantees: a chunk's `KeepChunk` comes before anything else of the call, and the
//! acknowledgement after the `KeepTree` and `Keep` in the same duty list (the node stores
//! before it sends), so every chunk is on disk before it; no chunk's commitments or shares stay
//! in memory; a batch that fails a check is not kept: an error if the failure proves nothing
//! (unsigned, another context), else one complaint, built once and re-submitted unchanged on
//! every block until it lands or the sector does; a batch for a sector already acknowledged
//! only re-sends the acknowledgement, one for a sector we complained about is ignored.

use std::collections::BTreeSet;

use rand_core::{CryptoRng, RngCore};

use super::direct::Direct;
use super::duty::{Duty, EpochError, Fault, SecretBytes};
use super::keygen::{Acked, CheckedChunk};
use super::machine::Agent;
use crate::dealing::{
    self, chunk_bits, encode_held_chunk, open_batch, sign_ack, DealBatch, DealError, HeldIndex,
};
use crate::ledger::{encode, LedgerState, TxBody};
use crate::member::MemberId;
use crate::sector::Sector;

impl Agent {
    /// One chunk of a sector's dealing from its owner `from`.
    pub(super) fn on_batch<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        epoch: u64,
        batch: &DealBatch,
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = self.keygen_ctx(st, epoch)?;
        let sector = batch.id.sector;
        if batch.id.owner != from {
            return Err(EpochError::Envelope("batch not from the sending peer"));
        }
        if st.newest.sectors.contains_key(&sector) {
            return Err(EpochError::NoKeygen("sector already published"));
        }
        if st.newest.branch_owners.get(&sector) != Some(&from) {
            return Err(EpochError::NoKeygen("the sender does not own this sector"));
        }
        let leaves = ctx
            .layout
            .sector_leaves(sector)
            .map_err(|_| DealError::BadChunk("sector out of range"))?;
        let (first, end) = (u64::from(leaves.start), u64::from(leaves.end));
        let bits = chunk_bits(ctx.layout.sector_height());
        let chunk_len = 1u64 << bits;
        let start = batch.first_leaf;
        if start < first
            || start >= end
            || !(start - first).is_multiple_of(chunk_len)
            || batch.commitments.len() as u64 != chunk_len
        {
            return Err(DealError::BadChunk("not a chunk of this sector").into());
        }
        let id = ctx.sector_id(sector, from);
        if self.keygen.complaints.contains_key(&(from, sector)) {
            // The owner re-sends; our complaint is on its way to the ledger.
            return Ok(Vec::new());
        }
        let holding = self.keygen.holding.entry((from, sector)).or_default();
        if let Some(seen) = holding.chunks.get(&start) {
            // Seen: the owner re-sends because our acknowledgement did not reach it.
            let (root, acked) = (seen.root, holding.acked);
            return match acked {
                Some(acked) if batch.chunk_root()? == root => Ok(self.ack(epoch, &id, acked)),
                _ => Ok(Vec::new()),
            };
        }
        let mine: BTreeSet<u64> = ctx
            .basis
            .holders_of(start..start + chunk_len, ctx.r)
            .map_err(|_| DealError::BadChunk("no holders for this chunk"))?
            .iter()
            .zip(start..)
            .filter(|(hs, _)| hs.contains(&self.me))
            .map(|(_, leaf)| leaf)
            .collect();
        let (shares, chunk_root) =
            match open_batch(batch, &id, &self.me, &self.x25519, &mine, ctx.k, rng) {
                Ok(opened) => opened,
                Err(fault) => return self.complain(batch, fault, rng),
            };
        // On disk before anything that depends on it leaves (the acknowledgement, once every
        // chunk is in); only the leaf keys and the root stay in memory.
        let mut duties = vec![Duty::KeepChunk {
            sector,
            chunk_root,
            record: SecretBytes(encode_held_chunk(start, &batch.commitments, &shares)),
        }];
        drop(shares);
        let holding = self.keygen.holding.entry((from, sector)).or_default();
        holding.chunks.insert(
            start,
            CheckedChunk {
                keys: batch.keys.clone(),
                root: chunk_root,
            },
        );
        if holding.chunks.len() as u64 != (end - first) / chunk_len {
            return Ok(duties);
        }
        // Every chunk is in: keep the sector's index and tree, then acknowledge both.
        let chunk_roots: Vec<[u8; 32]> = holding.chunks.values().map(|c| c.root).collect();
        let commitments_root = dealing::commitments_root(first, bits, &chunk_roots);
        let mut keys = Vec::with_capacity((end - first) as usize);
        for chunk in holding.chunks.values_mut() {
            keys.append(&mut chunk.keys);
        }
        // Every chunk had one key per leaf (`open_batch`), so this builds; if it did not, we
        // would not acknowledge (nothing to prove: the keys are not signed).
        let tree = Sector::from_leaf_keys(ctx.layout, sector, keys)
            .map_err(|_| DealError::BadChunk("the leaf keys build no sector tree"))?;
        let acked = Acked {
            commitments_root,
            root: tree.root(),
        };
        holding.acked = Some(acked);
        let index = HeldIndex {
            id,
            commitments_root,
            first_leaf: first,
            chunk_bits: bits,
            chunk_roots,
        };
        duties.push(Duty::KeepTree {
            sector,
            root: acked.root,
            keys: tree.into_leaf_keys(),
        });
        duties.push(Duty::Keep {
            sector,
            commitments_root,
            index: encode(&index),
        });
        duties.extend(self.ack(epoch, &id, acked));
        Ok(duties)
    }

    /// A bad batch: the complaint that proves `fault` to the ledger, or the fault itself if
    /// nothing can prove it.
    fn complain<R: RngCore + CryptoRng>(
        &mut self,
        batch: &DealBatch,
        fault: DealError,
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let Some(leaf) = fault.provable() else {
            return Err(fault.into());
        };
        let complaint = dealing::complain(batch, &self.x25519, leaf, rng)?;
        let (owner, sector) = (batch.id.owner, batch.id.sector);
        tracing::warn!(
            sector,
            owner = %owner,
            error = %fault,
            "bad dealing from the sector owner: complaining on the ledger"
        );
        let body = TxBody::DealComplaint {
            sector,
            complaint: encode(&complaint),
        };
        self.keygen.complaints.insert((owner, sector), body.clone());
        Ok(vec![Duty::Submit(body)])
    }

    /// Our complaints, re-submitted until they land.
    pub(super) fn holder_duties(&self, duties: &mut Vec<Duty>) {
        duties.extend(self.keygen.complaints.values().cloned().map(Duty::Submit));
    }

    /// The acknowledgement of sector `id` to its owner (none under the `NeverAck` fault).
    fn ack(&self, epoch: u64, id: &dealing::SectorId, acked: Acked) -> Vec<Duty> {
        if self.fault == Fault::NeverAck {
            return Vec::new();
        }
        vec![Duty::Send {
            to: id.owner,
            payload: encode(&Direct::Ack {
                epoch,
                sector: id.sector,
                ack: sign_ack(id, &self.identity, acked.commitments_root, acked.root),
            })
            .into(),
        }]
    }
}
