//! The per-sector records of [`ChainStore`]: the leaf shares this node holds of each sector
//! (sealed at rest, keyed by sector and commitments root), the sector trees it keeps (its own
//! and replicas, public, keyed by sector and sector root, read whole or a piece at a time), and
//! their deletion (dealings that lost, spent keys).

use tracing::warn;

use super::{ChainStore, StorageError, HELD, TREES};
use crate::at_rest::AtRestKey;
use crate::store::Batch;

impl ChainStore {
    /// Durably stores a held sector (the holder's shares and the sector's commitments), sealed
    /// with the node's at-rest key and bound to its place in the store.
    pub fn put_held(
        &mut self,
        key: &AtRestKey,
        sector: u32,
        commitments_root: &[u8; 32],
        record: &[u8],
    ) -> Result<(), StorageError> {
        let k = held_key(sector, commitments_root);
        self.store.put(HELD, &k, &key.seal(&k, record))?;
        Ok(())
    }

    /// The held sector stored under (`sector`, `commitments_root`), opened.
    pub fn held(
        &self,
        key: &AtRestKey,
        sector: u32,
        commitments_root: &[u8; 32],
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StorageError> {
        let k = held_key(sector, commitments_root);
        let Some(sealed) = self.store.get(HELD, &k)? else {
            return Ok(None);
        };
        key.open(&k, &sealed)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                what: format!("held sector {sector}"),
                reason: e.to_string(),
            })
    }

    /// Every (sector, commitments root) held.
    pub fn held_index(&self) -> Result<Vec<(u32, [u8; 32])>, StorageError> {
        self.sector_index(HELD)
    }

    /// Every (sector, sector root) whose tree is kept (ours, or as a holder or a replica).
    pub fn tree_index(&self) -> Result<Vec<(u32, [u8; 32])>, StorageError> {
        self.sector_index(TREES)
    }

    /// The (sector, root) keys of `keyspace` (held shares or trees).
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

    /// Deletes, in one write, the held records (by sector and commitments root) and the trees
    /// (by sector and sector root) of dealings that lost: `lost(sector, root, is_tree)`.
    /// Returns how many of each were deleted.
    pub fn prune_sectors(
        &mut self,
        lost: impl Fn(&u32, &[u8; 32], bool) -> bool,
    ) -> Result<(usize, usize), StorageError> {
        let held: Vec<(u32, [u8; 32])> = self
            .held_index()?
            .into_iter()
            .filter(|(sector, root)| lost(sector, root, false))
            .collect();
        let trees: Vec<(u32, [u8; 32])> = self
            .tree_index()?
            .into_iter()
            .filter(|(sector, root)| lost(sector, root, true))
            .collect();
        self.erase_sectors(&held, &trees)?;
        Ok((held.len(), trees.len()))
    }

    /// Deletes, in one write, the held records of `held` (by sector and commitments root) and
    /// the trees of `trees` (by sector and sector root): a spent key's. Absent ones are no-ops.
    pub fn erase_sectors(
        &mut self,
        held: &[(u32, [u8; 32])],
        trees: &[(u32, [u8; 32])],
    ) -> Result<(), StorageError> {
        let mut batch = Batch::new();
        for (sector, root) in held {
            batch.delete(HELD, &held_key(*sector, root));
        }
        for (sector, root) in trees {
            batch.delete(TREES, &held_key(*sector, root));
        }
        if !batch.is_empty() {
            self.store.write(&batch)?;
        }
        Ok(())
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
            .put(TREES, &held_key(sector, root), &keys.concat())?;
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
