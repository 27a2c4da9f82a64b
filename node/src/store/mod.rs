//! The node's durable key-value store: one small trait ([`Store`]), several backends. When a write
//! returns `Ok` it is fsync'd; a [`Batch`] (puts and deletes over named keyspaces) is all-or-nothing
//! across a crash; prefix scans are in ascending key order; no backend panic escapes, and nothing
//! prints stored bytes. Backends: [`redb`](RedbStore) (what the node opens), `sled` 0.34 (cargo
//! feature, on by default so it is built and tested) and [`memory`](MemoryStore) (tests only).
//!
//! Contract, backends and crash tests in detail: `docs/storage.md`.

mod memory;
mod redb;
#[cfg(feature = "sled")]
mod sled;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use zeroize::Zeroize;

pub use self::memory::MemoryStore;
pub use self::redb::RedbStore;
#[cfg(feature = "sled")]
pub use self::sled::SledStore;

/// Longest accepted keyspace name, in bytes.
pub const MAX_KEYSPACE_LEN: usize = 64;

/// Errors from the store. Messages name the keyspace or path involved, never key or value bytes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A keyspace name was empty, too long, or used characters outside `[a-z0-9_-]`.
    #[error("invalid keyspace name {name:?}: {reason}")]
    InvalidKeyspace {
        /// The rejected name.
        name: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The backend name is not one of `redb`, `sled`, `memory`.
    #[error("unknown store backend {0:?} (expected redb, sled or memory)")]
    UnknownBackend(String),
    /// The backend exists but was not compiled into this binary.
    #[error("store backend {0} is not compiled in (enable the cargo feature `{0}`)")]
    BackendUnavailable(Backend),
    /// The store is already open (by this or another process).
    #[error("{backend} store at {path} is already open by another user")]
    Locked {
        /// Which backend.
        backend: Backend,
        /// The store directory.
        path: String,
    },
    /// The on-disk data is not a valid store (corrupted or not a store file).
    #[error("{backend} store is corrupt: {detail}")]
    Corrupt {
        /// Which backend.
        backend: Backend,
        /// What the backend reported.
        detail: String,
    },
    /// An I/O error from the file system.
    #[error("{backend} store I/O error during {op}")]
    Io {
        /// Which backend.
        backend: Backend,
        /// What the store was doing.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other error reported by the backend.
    #[error("{backend} store error during {op}: {detail}")]
    Backend {
        /// Which backend.
        backend: Backend,
        /// What the store was doing.
        op: &'static str,
        /// What the backend reported.
        detail: String,
    },
}

/// One operation of a [`Batch`]. Its `Debug` shows the keyspace and lengths, never bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value` in `keyspace`.
    Put {
        /// Keyspace name.
        keyspace: String,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// Remove `key` from `keyspace` (no error if it is absent).
    Delete {
        /// Keyspace name.
        keyspace: String,
        /// Key bytes.
        key: Vec<u8>,
    },
}

impl Op {
    /// The keyspace this operation touches.
    pub fn keyspace(&self) -> &str {
        match self {
            Op::Put { keyspace, .. } | Op::Delete { keyspace, .. } => keyspace,
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put {
                keyspace,
                key,
                value,
            } => write!(
                f,
                "Put({keyspace}, {} key bytes, {} value bytes)",
                key.len(),
                value.len()
            ),
            Op::Delete { keyspace, key } => {
                write!(f, "Delete({keyspace}, {} key bytes)", key.len())
            }
        }
    }
}

/// Several puts and deletes, possibly over several keyspaces, committed together by
/// [`Store::write`]: all or nothing, applied in order (a later operation on the same key wins).
/// Values may be secrets (shares), so they are zeroized when the batch is dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        for op in &mut self.ops {
            if let Op::Put { value, .. } = op {
                value.zeroize();
            }
        }
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, keyspace: &str, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(Op::Put {
            keyspace: keyspace.to_owned(),
            key: key.to_vec(),
            value: value.to_vec(),
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, keyspace: &str, key: &[u8]) -> &mut Self {
        self.ops.push(Op::Delete {
            keyspace: keyspace.to_owned(),
            key: key.to_vec(),
        });
        self
    }

    /// The operations, in the order they are applied.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Checks every keyspace name, so a bad batch is rejected before anything is written.
    pub fn validate(&self) -> Result<(), StoreError> {
        self.ops
            .iter()
            .try_for_each(|op| validate_keyspace(op.keyspace()))
    }
}

/// Part of a stored value ([`Store::get_slice`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ValueSlice {
    /// The whole value's length in bytes.
    pub total: usize,
    /// The bytes asked for that exist.
    pub bytes: Vec<u8>,
}

impl ValueSlice {
    /// `max` bytes of `value` from `from`, clamped to its end.
    pub fn of(value: &[u8], from: usize, max: usize) -> Self {
        let start = from.min(value.len());
        let end = start.saturating_add(max).min(value.len());
        ValueSlice {
            total: value.len(),
            bytes: value.get(start..end).unwrap_or_default().to_vec(),
        }
    }
}

impl fmt::Debug for ValueSlice {
    // Stored values may be shares: their bytes are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueSlice")
            .field("total", &self.total)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A key-value pair returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Iterator returned by [`Store::scan_prefix`]: entries in ascending key order.
pub type ScanIter<'a> = Box<dyn Iterator<Item = Result<Entry, StoreError>> + Send + 'a>;

/// Iterator returned by [`Store::scan_keys`]: keys in ascending order.
pub type KeyIter<'a> = Box<dyn Iterator<Item = Result<Vec<u8>, StoreError>> + Send + 'a>;

/// A durable, ordered key-value store with named keyspaces and atomic batches.
///
/// Durability: every method that writes returns `Ok` only after the write is committed to
/// stable storage (fsync); the [`memory`](MemoryStore) backend is the one exception and exists
/// for tests only. Nothing that depends on a write may leave the node before that `Ok`.
///
/// Closing: drop the store (the last `Arc`, or call [`Store::close`] on a `Box`) to close it;
/// writes are already durable, closing only lets the next open skip recovery work.
pub trait Store: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Reads one key; `None` if it (or its keyspace) does not exist.
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads at most `max` bytes of one key's value from byte `from` (fewer past its end; none
    /// from or past it), with the value's whole length; `None` if the key does not exist. The
    /// on-disk backends copy out only the bytes asked for, so a large value (a sector's tree)
    /// can be served a piece at a time without a copy of the whole value per piece.
    fn get_slice(
        &self,
        keyspace: &str,
        key: &[u8],
        from: usize,
        max: usize,
    ) -> Result<Option<ValueSlice>, StoreError> {
        Ok(self
            .get(keyspace, key)?
            .map(|v| ValueSlice::of(&v, from, max)))
    }

    /// Commits a batch atomically and durably: on `Ok` every operation is on disk; on `Err` or a
    /// crash before `Ok`, either all operations or none are visible after reopening.
    fn write(&self, batch: &Batch) -> Result<(), StoreError>;

    /// All entries of `keyspace` whose key starts with `prefix`, in ascending key order.
    /// An empty prefix scans the whole keyspace. The scan sees every write that returned before
    /// the call; writes made while iterating may or may not appear (redb and memory iterate a
    /// snapshot, sled does not).
    fn scan_prefix(&self, keyspace: &str, prefix: &[u8]) -> Result<ScanIter<'_>, StoreError>;

    /// The keys of [`Store::scan_prefix`], without their values: the on-disk backends copy
    /// out no value, so listing large values (sector trees, held records) costs their keys.
    fn scan_keys(&self, keyspace: &str, prefix: &[u8]) -> Result<KeyIter<'_>, StoreError> {
        Ok(Box::new(
            self.scan_prefix(keyspace, prefix)?
                .map(|entry| entry.map(|(k, _)| k)),
        ))
    }

    /// Forces everything to stable storage. Writes are already durable when they return, so
    /// this is a no-op for backends that fsync per commit; call it at shutdown anyway.
    fn flush(&self) -> Result<(), StoreError>;

    /// Durably sets `key` to `value` (a one-operation batch).
    fn put(&self, keyspace: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.put(keyspace, key, value);
        self.write(&batch)
    }

    /// Durably removes `key`; removing an absent key is not an error.
    fn delete(&self, keyspace: &str, key: &[u8]) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.delete(keyspace, key);
        self.write(&batch)
    }

    /// Flushes and closes the store.
    fn close(self: Box<Self>) -> Result<(), StoreError> {
        self.flush()
    }
}

/// The available backends. `redb` is the default and the one the node opens (no configuration
/// key selects another); the others are for code that calls [`open`] directly, such as tests.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// redb: ACID, copy-on-write B-tree in one file, fsync on every commit.
    #[default]
    Redb,
    /// sled 0.34 (cargo feature `sled`): log-structured; each write is followed by `flush()`.
    Sled,
    /// In memory only; loses everything on drop. For tests and simulations.
    Memory,
}

impl Backend {
    /// Every backend, compiled in or not.
    pub const ALL: [Backend; 3] = [Backend::Redb, Backend::Sled, Backend::Memory];

    /// The backend's name (used by `Display`, `FromStr`, serde and [`open_named`]).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Redb => "redb",
            Backend::Sled => "sled",
            Backend::Memory => "memory",
        }
    }

    /// Whether this binary was built with the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Redb | Backend::Memory => true,
            Backend::Sled => cfg!(feature = "sled"),
        }
    }

    /// Whether data survives closing and reopening the store.
    pub fn is_persistent(self) -> bool {
        !matches!(self, Backend::Memory)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| StoreError::UnknownBackend(s.to_owned()))
    }
}

/// Opens (creating if needed) the store of `backend` in directory `dir`.
///
/// Layout: redb uses the single file `dir/seedfed.redb`, sled the directory `dir/sled/`; the
/// memory backend ignores `dir`. Fails with [`StoreError::Locked`] if the store is already open,
/// [`StoreError::Corrupt`] if the files are not a valid store, and never panics on bad files.
pub fn open(dir: &Path, backend: Backend) -> Result<Box<dyn Store>, StoreError> {
    match backend {
        Backend::Redb => Ok(Box::new(RedbStore::open(dir)?)),
        #[cfg(feature = "sled")]
        Backend::Sled => Ok(Box::new(SledStore::open(dir)?)),
        #[cfg(not(feature = "sled"))]
        Backend::Sled => Err(StoreError::BackendUnavailable(Backend::Sled)),
        Backend::Memory => Ok(Box::new(MemoryStore::new())),
    }
}

/// [`open`] with the backend given by its name (`redb`, `sled`, `memory`).
pub fn open_named(dir: &Path, backend: &str) -> Result<Box<dyn Store>, StoreError> {
    open(dir, backend.parse()?)
}

/// Checks a keyspace name: 1 to [`MAX_KEYSPACE_LEN`] bytes of `[a-z0-9_-]`. The same names are
/// valid for every backend (redb table names, sled key prefixes).
pub fn validate_keyspace(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_KEYSPACE_LEN {
        "longer than 64 bytes"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        "only a-z, 0-9, '_' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidKeyspace {
        name: name.to_owned(),
        reason,
    })
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` if no
/// such string exists (the prefix is empty or all `0xff`). Used as the exclusive scan end.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Turns a panic caught from a backend into an error.
pub(crate) fn panic_to_error(
    backend: Backend,
    payload: Box<dyn std::any::Any + Send>,
) -> StoreError {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "backend panicked".to_owned());
    StoreError::Corrupt {
        backend,
        detail: format!("backend panicked: {detail}"),
    }
}

/// Keeps backend panics inside the store. redb and sled both panic on some corrupted data (found
/// by the conformance tests), and a node must report a damaged store, not crash on it. After
/// the first caught panic the backend's in-memory state is suspect, so every later call fails
/// with [`StoreError::Corrupt`] until the store is reopened.
#[derive(Debug)]
pub(crate) struct PanicGuard {
    backend: Backend,
    poisoned: AtomicBool,
}

impl PanicGuard {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            poisoned: AtomicBool::new(false),
        }
    }

    /// Runs `f`, turning a panic into an error and disabling the store.
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StoreError::Corrupt {
                backend: self.backend,
                detail: "disabled after an earlier backend panic; reopen the store".to_owned(),
            });
        }
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
            self.poisoned.store(true, Ordering::Release);
            Err(panic_to_error(self.backend, payload))
        })
    }

    /// Wraps a scan iterator so that each step runs under the guard; it ends after an error.
    #[allow(clippy::type_complexity)] // the iterator type of a scan, spelled out
    pub(crate) fn iter<'a, T, I>(
        &'a self,
        inner: I,
    ) -> Box<dyn Iterator<Item = Result<T, StoreError>> + Send + 'a>
    where
        T: Send + 'a,
        I: Iterator<Item = Result<T, StoreError>> + Send + 'a,
    {
        let mut inner = Some(inner);
        Box::new(std::iter::from_fn(move || {
            let it = inner.as_mut()?;
            match self.run(|| Ok(it.next())) {
                Ok(Some(Ok(entry))) => Some(Ok(entry)),
                Ok(None) => {
                    inner = None;
                    None
                }
                Ok(Some(Err(e))) | Err(e) => {
                    inner = None;
                    Some(Err(e))
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_non_ff_byte() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn keyspace_names_are_checked() {
        assert!(validate_keyspace("ledger").is_ok());
        assert!(validate_keyspace("leaf_shares-2").is_ok());
        for bad in ["", "Ledger", "a/b", "a b", "ü", &"x".repeat(65)] {
            assert!(
                matches!(
                    validate_keyspace(bad),
                    Err(StoreError::InvalidKeyspace { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn panic_guard_turns_panics_into_errors_and_disables_the_store() {
        let guard = PanicGuard::new(Backend::Memory);
        assert_eq!(guard.run(|| Ok(1)).ok(), Some(1));
        let hit = guard.run::<()>(|| panic!("bad page"));
        assert!(
            matches!(&hit, Err(StoreError::Corrupt { detail, .. }) if detail.contains("bad page")),
            "{hit:?}"
        );
        assert!(matches!(
            guard.run(|| Ok(2)),
            Err(StoreError::Corrupt { .. })
        ));

        let fresh = PanicGuard::new(Backend::Memory);
        let mut n = 0u8;
        let items: Vec<_> = fresh
            .iter(std::iter::from_fn(move || {
                n += 1;
                assert!(n < 3, "entry {n} is damaged");
                Some(Ok::<Entry, StoreError>((vec![n], vec![])))
            }))
            .collect();
        assert_eq!(items.len(), 3, "two entries, one error, then the end");
        assert!(items[..2].iter().all(Result::is_ok));
        assert!(items[2].is_err());
    }

    #[test]
    fn backend_names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().ok(), Some(b));
        }
        assert!(matches!(
            "rocksdb".parse::<Backend>(),
            Err(StoreError::UnknownBackend(_))
        ));
        assert_eq!(Backend::default(), Backend::Redb);
    }
}
