//! The per-sector records of [`ChainStore`]: the leaf shares this node holds of each sector
//! (a chunk at a time, sealed at rest, keyed by sector and chunk root, and the index of a whole
//! sector's chunks keyed by sector and commitments root), the sector trees it keeps (its own
//! and replicas, public, keyed by sector and sector root, read whole or a piece at a time), and
//! their deletion (dealings that lost, spent keys).

use std::collections::BTreeSet;

use seedfed_protocol::dealing::{HeldChunk, HeldIndex, HeldSector};
use seedfed_protocol::ledger;
use tracing::warn;

use super::{ChainStore, StorageError, HELD, HELD_CHUNKS, TREES};
use crate::at_rest::AtRestKey;
use crate::store::Batch;

impl ChainStore {
    /// Durably stores a checked chunk of a held sector (the holder's shares of its leaves and
    /// the chunk's commitments), sealed with the node's at-rest key and bound to its place in
    /// the store: (sector, chunk root).
    pub fn put_held_chunk(
        &mut self,
        key: &AtRestKey,
        sector: u32,
        chunk_root: &[u8; 32],
        record: &[u8],
    ) -> Result<(), StorageError> {
        let k = held_key(sector, chunk_root);
        self.store.put(HELD_CHUNKS, &k, &key.seal(&k, record))?;
        Ok(())
    }

    /// Durably stores the index of a held sector (`encode(HeldIndex)`: its chunks, each stored
    /// before by [`ChainStore::put_held_chunk`]) under (sector, commitments root).
    pub fn put_held(
        &mut self,
        sector: u32,
        commitments_root: &[u8; 32],
        index: &[u8],
    ) -> Result<(), StorageError> {
        self.store
            .put(HELD, &held_key(sector, commitments_root), index)?;
        Ok(())
    }

    /// The index of the held sector stored under (`sector`, `commitments_root`), checked.
    pub fn held_index_of(
        &self,
        sector: u32,
        commitments_root: &[u8; 32],
    ) -> Result<Option<HeldIndex>, StorageError> {
        let Some(bytes) = self.store.get(HELD, &held_key(sector, commitments_root))? else {
            return Ok(None);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            what: format!("held sector {sector}"),
            reason,
        };
        let index: HeldIndex = ledger::decode(&bytes).map_err(|e| {
            corrupt(format!(
                "not a chunk index ({e}; records from before 2026-12-02 held the whole sector \
                 in one sealed record, which this version does not read)"
            ))
        })?;
        if index.commitments_root != *commitments_root {
            return Err(corrupt("an index of another dealing".into()));
        }
        index.check().map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(index))
    }

    /// The held sector stored under (`sector`, `commitments_root`): its index and every chunk
    /// it names, opened and put together.
    pub fn held(
        &self,
        key: &AtRestKey,
        sector: u32,
        commitments_root: &[u8; 32],
    ) -> Result<Option<HeldSector>, StorageError> {
        let Some(index) = self.held_index_of(sector, commitments_root)? else {
            return Ok(None);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            what: format!("held sector {sector}"),
            reason,
        };
        let mut chunks = Vec::with_capacity(index.chunk_roots.len());
        for root in &index.chunk_roots {
            let k = held_key(sector, root);
            let sealed = self
                .store
                .get(HELD_CHUNKS, &k)?
                .ok_or_else(|| corrupt(format!("chunk {} missing", hex::encode(root))))?;
            let plain = key.open(&k, &sealed).map_err(|e| corrupt(e.to_string()))?;
            let chunk: HeldChunk = ledger::decode(&plain).map_err(|e| corrupt(e.to_string()))?;
            chunks.push(chunk);
        }
        HeldSector::assemble(&index, chunks)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    /// Every (sector, commitments root) held.
    pub fn held_index(&self) -> Result<Vec<(u32, [u8; 32])>, StorageError> {
        self.sector_index(HELD)
    }

    /// Every (sector, chunk root) of a held chunk.
    pub fn held_chunk_index(&self) -> Result<Vec<(u32, [u8; 32])>, StorageError> {
        self.sector_index(HELD_CHUNKS)
    }

    /// Every (sector, sector root) whose tree is kept (ours, or as a holder or a replica).
    pub fn tree_index(&self) -> Result<Vec<(u32, [u8; 32])>, StorageError> {
        self.sector_index(TREES)
    }

    /// The (sector, root) keys of `keyspace` (held indexes, held chunks or trees).
    fn sector_index(&self, keyspace: &str) -> Result<Vec<(u32, [u8; 32])>, StorageError> {
        let mut out = Vec::new();
        for item in self.store.scan_keys(keyspace, &[])? {
            let k = item?;
            match <[u8; 36]>::try_from(k.as_slice()) {
                Ok(k) => {
                    let mut sector = [0u8; 4];
                    sector.copy_from_slice(&k[..4]);
                    let mut root = [0u8; 32];
                    root.copy_from_slice(&k[4..]);
                    out.push((u32::from_be_bytes(sector), root));
                }
                Err(_) => warn!(keyspace, "ignoring a sector key of {} bytes", k.len()),
            }
        }
        Ok(out)
    }

    /// Deletes, in one write, the held records (by sector and commitments root: the index and
    /// its chunks) and the trees (by sector and sector root) of dealings that lost:
    /// `lost(sector, root, is_tree)`, and the held chunks that no kept index names of a sector
    /// whose landed dealing we keep (`landed(sector, commitments_root)`). Returns how many held
    /// records and trees were deleted.
    pub fn prune_sectors(
        &mut self,
        lost: impl Fn(&u32, &[u8; 32], bool) -> bool,
        landed: impl Fn(&u32, &[u8; 32]) -> bool,
    ) -> Result<(usize, usize), StorageError> {
        type Sectors = Vec<(u32, [u8; 32])>;
        let (held, kept): (Sectors, Sectors) = self
            .held_index()?
            .into_iter()
            .partition(|(sector, root)| lost(sector, root, false));
        let trees: Vec<(u32, [u8; 32])> = self
            .tree_index()?
            .into_iter()
            .filter(|(sector, root)| lost(sector, root, true))
            .collect();
        // Chunks that no kept index names, of a sector whose landed dealing (of the key being
        // generated) we keep: the rest of dealings that lost or did not complete here. A
        // sector number is reused by the next key, whose dealing may be under way.
        let mut named: BTreeSet<(u32, [u8; 32])> = BTreeSet::new();
        for (sector, root) in &kept {
            if let Some(index) = self.held_index_of(*sector, root)? {
                named.extend(index.chunk_roots.iter().map(|r| (*sector, *r)));
            }
        }
        let sectors: BTreeSet<u32> = kept
            .iter()
            .filter(|(s, r)| landed(s, r))
            .map(|(s, _)| *s)
            .collect();
        let stray: Vec<(u32, [u8; 32])> = self
            .sector_index(HELD_CHUNKS)?
            .into_iter()
            .filter(|c| sectors.contains(&c.0) && !named.contains(c))
            .collect();
        let mut batch = self.erasing(&held, &trees);
        for (sector, root) in &stray {
            batch.delete(HELD_CHUNKS, &held_key(*sector, root));
        }
        if !batch.is_empty() {
            self.store.write(&batch)?;
        }
        Ok((held.len(), trees.len()))
    }

    /// Deletes, in one write, the held records of `held` (by sector and commitments root: the
    /// index and every chunk it names) and the trees of `trees` (by sector and sector root): a
    /// spent key's. Absent ones are no-ops.
    pub fn erase_sectors(
        &mut self,
        held: &[(u32, [u8; 32])],
        trees: &[(u32, [u8; 32])],
    ) -> Result<(), StorageError> {
        let batch = self.erasing(held, trees);
        if !batch.is_empty() {
            self.store.write(&batch)?;
        }
        Ok(())
    }

    /// The deletions of [`ChainStore::erase_sectors`].
    fn erasing(&self, held: &[(u32, [u8; 32])], trees: &[(u32, [u8; 32])]) -> Batch {
        let mut batch = Batch::new();
        for (sector, root) in held {
            // A damaged index goes without its chunks: they are stray from then on, deleted by
            // `prune_sectors` once another index of the sector is kept.
            if let Ok(Some(index)) = self.held_index_of(*sector, root) {
                for chunk in &index.chunk_roots {
                    batch.delete(HELD_CHUNKS, &held_key(*sector, chunk));
                }
            }
            batch.delete(HELD, &held_key(*sector, root));
        }
        for (sector, root) in trees {
            batch.delete(TREES, &held_key(*sector, root));
        }
        batch
    }

    /// Durably stores a sector tree (ours, or a checked replica): its leaf public keys, in leaf
    /// order.
    pub fn put_tree(
        &mut self,
        sector: u32,
        root: &[u8; 32],
        keys: &[[u8; 32]],
    ) -> Result<(), StorageError> {
        self.store
            .put(TREES, &held_key(sector, root), keys.as_flattened())?;
        Ok(())
    }

    /// The leaf public keys of the tree kept under (`sector`, `root`).
    pub fn tree(
        &self,
        sector: u32,
        root: &[u8; 32],
    ) -> Result<Option<Vec<[u8; 32]>>, StorageError> {
        self.tree_keys(sector, root, 0, usize::MAX)
    }

    /// Whether a tree is stored for `(sector, root)` (reads none of its keys).
    pub fn has_tree(&self, sector: u32, root: &[u8; 32]) -> Result<bool, StorageError> {
        Ok(self.tree_keys(sector, root, 0, 0)?.is_some())
    }

    /// At most `max` of the leaf keys of the tree stored for `(sector, root)`, from key `from`
    /// (none from or past the end); `None` if no such tree is kept. Reads only those keys from
    /// the store, not the whole tree (what serving a tree a piece at a time needs).
    pub fn tree_keys(
        &self,
        sector: u32,
        root: &[u8; 32],
        from: usize,
        max: usize,
    ) -> Result<Option<Vec<[u8; 32]>>, StorageError> {
        let key = held_key(sector, root);
        let Some(slice) =
            self.store
                .get_slice(TREES, &key, from.saturating_mul(32), max.saturating_mul(32))?
        else {
            return Ok(None);
        };
        if slice.total % 32 != 0 {
            return Err(tree_not_keys(sector, slice.total));
        }
        Ok(Some(keys_of(&slice.bytes)))
    }
}

/// A stored tree whose length is no whole number of keys.
fn tree_not_keys(sector: u32, len: usize) -> StorageError {
    StorageError::Corrupt {
        what: format!("tree of sector {sector}"),
        reason: format!("{len} bytes is not a list of 32-byte keys"),
    }
}

/// The 32-byte keys `bytes` holds (a whole number of them).
fn keys_of(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks_exact(32)
        .map(|c| {
            let mut k = [0u8; 32];
            k.copy_from_slice(c);
            k
        })
        .collect()
}

/// The store key of a per-sector record: sector (big-endian) ‖ root.
pub(super) fn held_key(sector: u32, commitments_root: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(36);
    k.extend_from_slice(&sector.to_be_bytes());
    k.extend_from_slice(commitments_root);
    k
}

#[cfg(test)]
mod tests {
    use seedfed_protocol::dealing::{commitments_root, encode_held_chunk, SectorId};
    use seedfed_protocol::member::MemberId;
    use seedfed_protocol::shamir::{EncodedCommitment, Share};

    use super::*;
    use crate::store::{self, Backend};

    const HOLDER: MemberId = MemberId([3; 32]);

    fn store() -> (tempfile::TempDir, ChainStore) {
        let dir = tempfile::tempdir().unwrap();
        let cs = ChainStore::new(store::open(dir.path(), Backend::Redb).unwrap());
        (dir, cs)
    }

    /// A chunk of two leaves from `first`, with our share of its second leaf, and a root
    /// standing for its commitments' (the store does not hash them).
    fn chunk(first: u64, tag: u8) -> (HeldChunk, [u8; 32]) {
        let commitment = EncodedCommitment::try_from(vec![[tag; 32]; 3]).unwrap();
        let mut value = [0u8; 32];
        value[0] = tag;
        let chunk = HeldChunk {
            first_leaf: first,
            commitments: vec![commitment; 2],
            shares: vec![(first + 1, Share::new(HOLDER, &value).unwrap())],
        };
        (chunk, [tag; 32])
    }

    /// Keeps `chunks` of `sector` as the holder does, then their index; returns its root.
    fn keep(
        cs: &mut ChainStore,
        key: &AtRestKey,
        sector: u32,
        chunks: &[(HeldChunk, [u8; 32])],
    ) -> [u8; 32] {
        for (c, root) in chunks {
            let record = encode_held_chunk(c.first_leaf, &c.commitments, &c.shares);
            cs.put_held_chunk(key, sector, root, &record).unwrap();
        }
        let chunk_roots: Vec<[u8; 32]> = chunks.iter().map(|(_, r)| *r).collect();
        let index = HeldIndex {
            id: SectorId {
                chain: [0; 32],
                key: 0,
                sector,
                owner: MemberId([1; 32]),
                basis: [0; 32],
            },
            commitments_root: commitments_root(chunks[0].0.first_leaf, 1, &chunk_roots),
            first_leaf: chunks[0].0.first_leaf,
            chunk_bits: 1,
            chunk_roots,
        };
        cs.put_held(sector, &index.commitments_root, &ledger::encode(&index))
            .unwrap();
        index.commitments_root
    }

    /// A sector kept a chunk at a time reads back whole; a missing or damaged chunk, an index
    /// of other chunks or one in the format before chunks is an error naming the sector, never
    /// a sector with leaves missing; a share is never in the store in the clear.
    #[test]
    fn a_held_sector_is_kept_a_chunk_at_a_time_and_read_back_whole() {
        let (_dir, mut cs) = store();
        let key = AtRestKey::derive(&[1; 32], &[2; 32]);
        let chunks = [chunk(8, 10), chunk(10, 11)];
        let root = keep(&mut cs, &key, 2, &chunks);
        let held = cs.held(&key, 2, &root).unwrap().unwrap();
        assert_eq!(held.first_leaf, 8);
        assert_eq!(held.commitments.len(), 4);
        assert_eq!(held.commitments[2], chunks[1].0.commitments[0]);
        let leaves: Vec<u64> = held.shares.iter().map(|(l, _)| *l).collect();
        assert_eq!(leaves, [9, 11]);
        assert_eq!(held.commitments_root, root);
        assert!(cs.held(&key, 2, &[7; 32]).unwrap().is_none());
        for item in cs.store.scan_prefix(HELD_CHUNKS, &[]).unwrap() {
            let (_, sealed) = item.unwrap();
            assert!(!sealed.windows(32).any(|w| w[0] == 10 && w[1..] == [0; 31]));
        }

        let corrupt = |cs: &ChainStore| cs.held(&key, 2, &root).unwrap_err().to_string();
        // Another node's at-rest key opens nothing.
        let other = AtRestKey::derive(&[1; 32], &[9; 32]);
        assert!(cs
            .held(&other, 2, &root)
            .unwrap_err()
            .to_string()
            .contains("held sector 2"));
        // A chunk missing.
        cs.store
            .delete(HELD_CHUNKS, &held_key(2, &chunks[1].1))
            .unwrap();
        assert!(corrupt(&cs).contains("missing"), "{}", corrupt(&cs));
        // A chunk sealed under another place.
        let sealed = cs
            .store
            .get(HELD_CHUNKS, &held_key(2, &chunks[0].1))
            .unwrap()
            .unwrap();
        cs.store
            .put(HELD_CHUNKS, &held_key(2, &chunks[1].1), &sealed)
            .unwrap();
        assert!(corrupt(&cs).contains("held sector 2"), "{}", corrupt(&cs));
        // An index whose chunks do not give its root, and a record of the old format.
        let mut index = cs.held_index_of(2, &root).unwrap().unwrap();
        index.chunk_roots.swap(0, 1);
        cs.put_held(2, &root, &ledger::encode(&index)).unwrap();
        assert!(corrupt(&cs).contains("do not give"), "{}", corrupt(&cs));
        cs.put_held(2, &root, &[0xab; 300]).unwrap();
        assert!(
            corrupt(&cs).contains("before 2026-12-02"),
            "{}",
            corrupt(&cs)
        );
    }

    /// The held record of a dealing that lost goes with every chunk it names; chunks of a
    /// sector that no kept index names (a dealing that did not complete here) go once a
    /// dealing of that sector is kept; chunks of a sector still being dealt stay.
    #[test]
    fn pruning_a_dealing_deletes_its_chunks_and_the_strays_of_kept_sectors() {
        let (_dir, mut cs) = store();
        let key = AtRestKey::derive(&[1; 32], &[2; 32]);
        let lost = keep(&mut cs, &key, 1, &[chunk(0, 1), chunk(2, 2)]);
        let kept = keep(&mut cs, &key, 2, &[chunk(4, 3), chunk(6, 4)]);
        // A chunk of sector 2 from a dealing that never completed here, and one of sector 3,
        // whose dealing is under way.
        let (stray, stray_root) = chunk(4, 5);
        let record = encode_held_chunk(stray.first_leaf, &stray.commitments, &stray.shares);
        cs.put_held_chunk(&key, 2, &stray_root, &record).unwrap();
        cs.put_held_chunk(&key, 3, &[6; 32], &record).unwrap();

        let (held, trees) = cs
            .prune_sectors(
                |sector, root, _| *sector == 1 && *root == lost,
                |sector, root| (*sector == 2 && *root == kept) || *sector == 3,
            )
            .unwrap();
        assert_eq!((held, trees), (1, 0));
        assert_eq!(cs.held_index().unwrap(), vec![(2, kept)]);
        let mut left = cs.held_chunk_index().unwrap();
        left.sort();
        assert_eq!(left, vec![(2, [3; 32]), (2, [4; 32]), (3, [6; 32])]);
        assert!(cs.held(&key, 2, &kept).unwrap().is_some());
        // The next key's dealing of sector 2 under way (the kept index is an older key's): its
        // chunks stay.
        cs.put_held_chunk(&key, 2, &stray_root, &record).unwrap();
        cs.prune_sectors(|_, _, _| false, |_, _| false).unwrap();
        assert!(cs.held_chunk_index().unwrap().contains(&(2, stray_root)));
        cs.store
            .delete(HELD_CHUNKS, &held_key(2, &stray_root))
            .unwrap();

        // A spent key's sector goes whole.
        cs.erase_sectors(&[(2, kept)], &[]).unwrap();
        assert_eq!(cs.held_chunk_index().unwrap(), vec![(3, [6; 32])]);
        assert!(cs.held_index().unwrap().is_empty());
    }
}
