//! sled 0.34 backend (cargo feature `sled`): built and tested, never opened by the node binary. All
//! keyspaces share sled's default tree under a key prefix, so a [`Batch`] is one atomic
//! `apply_batch`; every write is followed by sled's `flush()` and a real `fdatasync` of its log. A
//! sentinel key turns a data file replaced by garbage into [`StoreError::Corrupt`]. Not covered:
//! power loss for pages sled writes to `blobs/`, partial damage (silently recovered by sled).
//!
//! Why each of these is needed, and what the damage tests observe: `docs/storage.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::{
    panic_to_error, validate_keyspace, Backend, Batch, KeyIter, Op, PanicGuard, ScanIter, Store,
    StoreError, ValueSlice,
};

/// Directory of the sled database inside the store directory.
pub const DIR_NAME: &str = "sled";

/// Marker file written once the sentinel key is durable.
const MARKER: &str = "created";

/// The sentinel key. Its length byte is 0, which no keyspace (1 to 64 bytes) produces.
const SENTINEL_KEY: &[u8] = b"\x00seedfed-store";
const SENTINEL_VALUE: &[u8] = b"v1";

const BACKEND: Backend = Backend::Sled;

fn map_err(op: &'static str, err: ::sled::Error) -> StoreError {
    match err {
        ::sled::Error::Io(source) => StoreError::Io {
            backend: BACKEND,
            op,
            source,
        },
        ::sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            backend: BACKEND,
            detail: format!("corruption detected at {at:?}"),
        },
        other => StoreError::Backend {
            backend: BACKEND,
            op,
            detail: other.to_string(),
        },
    }
}

/// The stored key of `key` in `keyspace` (the keyspace name is at most 64 bytes, see
/// [`validate_keyspace`], so its length fits the one-byte prefix).
fn stored_key(keyspace: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + keyspace.len() + key.len());
    out.push(keyspace.len() as u8);
    out.extend_from_slice(keyspace.as_bytes());
    out.extend_from_slice(key);
    out
}

/// A [`Store`] backed by a sled database directory.
pub struct SledStore {
    db: ::sled::Db,
    /// sled's log file, opened only to `fdatasync` it.
    log: std::fs::File,
    guard: PanicGuard,
}

// Debug never prints stored bytes: the store holds shares and other secrets.
impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens or creates the sled database in `dir/sled/`. sled answers some malformed files with
    /// a panic; that panic is caught here and reported as [`StoreError::Corrupt`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(DIR_NAME);
        std::fs::create_dir_all(&path).map_err(|source| StoreError::Io {
            backend: BACKEND,
            op: "create store directory",
            source,
        })?;
        let config = ::sled::Config::new().path(&path);
        let opened = catch_unwind(AssertUnwindSafe(|| config.open()))
            .map_err(|payload| panic_to_error(BACKEND, payload))?;
        let db = opened.map_err(|err| match err {
            // sled 0.34.7 reports a held file lock as a formatted `Other` error.
            ::sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock") => {
                StoreError::Locked {
                    backend: BACKEND,
                    path: dir.display().to_string(),
                }
            }
            other => map_err("open", other),
        })?;
        let log = std::fs::File::open(path.join("db")).map_err(|source| StoreError::Io {
            backend: BACKEND,
            op: "open log file",
            source,
        })?;
        let store = Self {
            db,
            log,
            guard: PanicGuard::new(BACKEND),
        };
        store.guard.run(|| store.check_sentinel(&path))?;
        Ok(store)
    }

    /// Writes the sentinel on first open; afterwards requires it (see `docs/storage.md`).
    fn check_sentinel(&self, path: &Path) -> Result<(), StoreError> {
        let marker = path.join(MARKER);
        let found = self.db.get(SENTINEL_KEY).map_err(|e| map_err("open", e))?;
        if found.as_deref() == Some(SENTINEL_VALUE) {
            return Ok(());
        }
        if marker.exists() {
            return Err(StoreError::Corrupt {
                backend: BACKEND,
                detail: "the store was created but its data is gone (sentinel missing)".into(),
            });
        }
        // New store, or its creation was interrupted before the marker was written.
        self.db
            .insert(SENTINEL_KEY, SENTINEL_VALUE)
            .map_err(|e| map_err("open", e))?;
        self.sync("open")?;
        let io = |source| StoreError::Io {
            backend: BACKEND,
            op: "write marker file",
            source,
        };
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    /// sled's flush, then a real `fdatasync` of its log (see `docs/storage.md`).
    fn sync(&self, op: &'static str) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| map_err(op, e))?;
        self.log.sync_data().map_err(|source| StoreError::Io {
            backend: BACKEND,
            op,
            source,
        })
    }
}

impl SledStore {
    /// The entries of `keyspace` under `prefix` (keys without the keyspace's prefix), each
    /// made into a `T` by `f` from the borrowed bytes.
    #[allow(clippy::type_complexity)] // the iterator type of a scan, spelled out
    fn scan_with<T: Send + 'static>(
        &self,
        keyspace: &str,
        prefix: &[u8],
        f: fn(&[u8], &[u8]) -> T,
    ) -> Result<Box<dyn Iterator<Item = Result<T, StoreError>> + Send + '_>, StoreError> {
        validate_keyspace(keyspace)?;
        let skip = 1 + keyspace.len();
        let iter = self
            .guard
            .run(|| Ok(self.db.scan_prefix(stored_key(keyspace, prefix))))?;
        Ok(self.guard.iter(iter.map(move |item| {
            item.map(|(k, v)| f(k.get(skip..).unwrap_or_default(), &v))
                .map_err(|e| map_err("scan", e))
        })))
    }

    /// `f` of the value stored under `key`, read in place.
    fn read_value<T>(
        &self,
        keyspace: &str,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        validate_keyspace(keyspace)?;
        self.guard.run(|| {
            let value = self
                .db
                .get(stored_key(keyspace, key))
                .map_err(|e| map_err("get", e))?;
            Ok(value.map(|v| f(&v)))
        })
    }
}

impl Store for SledStore {
    fn backend(&self) -> Backend {
        BACKEND
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_value(keyspace, key, <[u8]>::to_vec)
    }

    fn get_slice(
        &self,
        keyspace: &str,
        key: &[u8],
        from: usize,
        max: usize,
    ) -> Result<Option<ValueSlice>, StoreError> {
        self.read_value(keyspace, key, |v| ValueSlice::of(v, from, max))
    }

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        batch.validate()?;
        let mut sled_batch = ::sled::Batch::default();
        for op in batch.ops() {
            match op {
                Op::Put {
                    keyspace,
                    key,
                    value,
                } => sled_batch.insert(stored_key(keyspace, key), value.as_slice()),
                Op::Delete { keyspace, key } => sled_batch.remove(stored_key(keyspace, key)),
            }
        }
        self.guard.run(|| {
            self.db
                .apply_batch(sled_batch)
                .map_err(|e| map_err("write", e))?;
            self.sync("write")
        })
    }

    fn scan_prefix(&self, keyspace: &str, prefix: &[u8]) -> Result<ScanIter<'_>, StoreError> {
        self.scan_with(keyspace, prefix, |k, v| (k.to_vec(), v.to_vec()))
    }

    fn scan_keys(&self, keyspace: &str, prefix: &[u8]) -> Result<KeyIter<'_>, StoreError> {
        // sled's values are shared buffers: dropping them copies nothing.
        self.scan_with(keyspace, prefix, |k, _| k.to_vec())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.guard.run(|| self.sync("flush"))
    }
}
