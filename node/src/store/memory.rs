//! In-memory backend for tests and in-process simulations.
//!
//! Same semantics as the disk backends (keyspaces, atomic ordered batches, ordered prefix scans
//! over a snapshot) except durability: everything is lost when the store is dropped. Never use
//! it where the durability contract of [`Store`] matters.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use super::{prefix_end, validate_keyspace, Backend, Batch, Op, ScanIter, Store, StoreError};

type Keyspaces = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A [`Store`] that keeps everything in a `BTreeMap` behind a mutex.
#[derive(Default)]
pub struct MemoryStore {
    keyspaces: Mutex<Keyspaces>,
}

// Debug never prints stored bytes: the store holds shares and other secrets.
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Keyspaces>, StoreError> {
        self.keyspaces.lock().map_err(|_| StoreError::Backend {
            backend: Backend::Memory,
            op: "lock",
            detail: "a writer panicked while holding the lock".to_owned(),
        })
    }
}

impl Store for MemoryStore {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        validate_keyspace(keyspace)?;
        Ok(self
            .lock()?
            .get(keyspace)
            .and_then(|ks| ks.get(key))
            .cloned())
    }

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        batch.validate()?;
        // Validation is the only failure point, so applying under one lock is all-or-nothing.
        let mut keyspaces = self.lock()?;
        for op in batch.ops() {
            match op {
                Op::Put {
                    keyspace,
                    key,
                    value,
                } => {
                    keyspaces
                        .entry(keyspace.clone())
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                Op::Delete { keyspace, key } => {
                    if let Some(ks) = keyspaces.get_mut(keyspace) {
                        ks.remove(key);
                    }
                }
            }
        }
        Ok(())
    }

    fn scan_prefix(&self, keyspace: &str, prefix: &[u8]) -> Result<ScanIter<'_>, StoreError> {
        validate_keyspace(keyspace)?;
        let keyspaces = self.lock()?;
        let end = match prefix_end(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        let entries: Vec<_> = keyspaces
            .get(keyspace)
            .map(|ks| {
                ks.range::<Vec<u8>, _>((Bound::Included(prefix.to_vec()), end))
                    .map(|(k, v)| Ok((k.clone(), v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Box::new(entries.into_iter()))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
