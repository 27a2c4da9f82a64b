//! redb backend (what the node opens): one file, copy-on-write B-trees, one table per keyspace.
//! Every [`Store::write`] is one write transaction committed with `Durability::Immediate` (fsync
//! before `commit` returns) and crash-atomic, so batches over several keyspaces are all-or-nothing;
//! a new database is created under a temporary name and renamed into place, so a crash during
//! creation never leaves a file redb refuses (`docs/storage.md`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ::redb::{Database, Durability, ReadableDatabase, TableDefinition, TableError};

use super::{
    panic_to_error, prefix_end, validate_keyspace, Backend, Batch, KeyIter, Op, PanicGuard,
    ScanIter, Store, StoreError, ValueSlice,
};

/// File name of the database inside the store directory.
pub const FILE_NAME: &str = "seedfed.redb";
/// Where a new database is initialised before it is renamed to [`FILE_NAME`].
const NEW_FILE_NAME: &str = "seedfed.redb.new";
/// redb's page cache, in bytes (nine tenths for reads, one tenth for a transaction's writes).
/// redb's default is 1 GiB, and after every commit it moves the pages it wrote into the read
/// cache: a node that writes a block per height and a held sector of tens of MiB per sector
/// would keep everything it ever wrote resident, up to a gigabyte. The node reads a few records
/// per block (the tip, WAL, a held sector when signing starts; those it keeps decoded), so a
/// small cache costs it little (`docs/benchmarks.md`, "Memory at 2^20 leaves").
pub const CACHE_BYTES: usize = 16 << 20;

const BACKEND: Backend = Backend::Redb;

fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// Maps a redb error to a [`StoreError`], keeping corruption and I/O distinguishable.
fn map_err(op: &'static str, err: impl Into<::redb::Error>) -> StoreError {
    match err.into() {
        ::redb::Error::Corrupted(detail) => StoreError::Corrupt {
            backend: BACKEND,
            detail,
        },
        ::redb::Error::Io(source) => StoreError::Io {
            backend: BACKEND,
            op,
            source,
        },
        other => StoreError::Backend {
            backend: BACKEND,
            op,
            detail: other.to_string(),
        },
    }
}

/// A [`Store`] backed by a redb database file.
pub struct RedbStore {
    db: Database,
    guard: PanicGuard,
}

// Debug never prints stored bytes: the store holds shares and other secrets.
impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens or creates `dir/seedfed.redb`. A file that is not a valid redb database gives
    /// [`StoreError::Corrupt`] (or another error), never a panic.
    ///
    /// A new database is created as `seedfed.redb.new`, closed, fsync'd and then renamed into
    /// place: redb refuses a file whose creation was interrupted (it cannot tell it from
    /// garbage), and a node killed during its very first start must still be able to start.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let io = |op| {
            move |source| StoreError::Io {
                backend: BACKEND,
                op,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io("create store directory"))?;
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            let fresh = dir.join(NEW_FILE_NAME);
            match std::fs::remove_file(&fresh) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove unfinished new store")(e))
                }
                _ => {}
            }
            drop(open_db(dir, &fresh, |p| builder().create(p))?);
            std::fs::File::open(&fresh)
                .and_then(|f| f.sync_all())
                .map_err(io("sync new store"))?;
            std::fs::rename(&fresh, &path).map_err(io("rename new store"))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("sync store directory"))?;
        }
        Ok(Self {
            db: open_db(dir, &path, |p| builder().open(p))?,
            guard: PanicGuard::new(BACKEND),
        })
    }
}

/// redb's builder with the node's cache size ([`CACHE_BYTES`]).
fn builder() -> ::redb::Builder {
    let mut b = Database::builder();
    b.set_cache_size(CACHE_BYTES);
    b
}

/// Runs a redb open/create function, turning panics and errors into [`StoreError`]s.
fn open_db(
    dir: &Path,
    path: &Path,
    f: impl FnOnce(&Path) -> Result<Database, ::redb::DatabaseError>,
) -> Result<Database, StoreError> {
    let opened =
        catch_unwind(AssertUnwindSafe(|| f(path))).map_err(|p| panic_to_error(BACKEND, p))?;
    opened.map_err(|err| match err {
        ::redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            backend: BACKEND,
            path: dir.display().to_string(),
        },
        // A file that is too short or has a foreign header is reported as I/O by redb
        // (unexpected EOF) or as a bad header; both mean "not a valid store" here.
        ::redb::DatabaseError::Storage(::redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                || io.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::Corrupt {
                backend: BACKEND,
                detail: io.to_string(),
            }
        }
        other => map_err("open", other),
    })
}

impl RedbStore {
    /// `f` of the value stored under `key`, read in place.
    fn read_value<T>(
        &self,
        keyspace: &str,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| map_err("get", e))?;
        let table = match txn.open_table(table(keyspace)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(map_err("get", e)),
        };
        let value = table.get(key).map_err(|e| map_err("get", e))?;
        Ok(value.map(|v| f(v.value())))
    }

    fn write_inner(&self, batch: &Batch) -> Result<(), StoreError> {
        // A table can be open only once per transaction: group the operations by keyspace.
        // Order is kept within a keyspace, which is all that matters (keys never collide across
        // keyspaces).
        let mut by_keyspace: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
        for op in batch.ops() {
            by_keyspace.entry(op.keyspace()).or_default().push(op);
        }
        let mut txn = self.db.begin_write().map_err(|e| map_err("write", e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| map_err("write", e))?;
        for (keyspace, ops) in by_keyspace {
            let mut table = txn
                .open_table(table(keyspace))
                .map_err(|e| map_err("write", e))?;
            for op in ops {
                match op {
                    Op::Put { key, value, .. } => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(|e| map_err("put", e))?;
                    }
                    Op::Delete { key, .. } => {
                        table
                            .remove(key.as_slice())
                            .map_err(|e| map_err("delete", e))?;
                    }
                }
            }
        }
        // On an error above, dropping `txn` aborts it: nothing of the batch is committed.
        txn.commit().map_err(|e| map_err("commit", e))
    }

    /// The entries of `keyspace` under `prefix`, each made into a `T` by `f` (key, value) from
    /// the borrowed bytes: only what `f` copies is copied.
    #[allow(clippy::type_complexity)] // the iterator type of a scan, spelled out
    fn scan_inner<T: Send + 'static>(
        &self,
        keyspace: &str,
        prefix: &[u8],
        f: fn(&[u8], &[u8]) -> T,
    ) -> Result<Box<dyn Iterator<Item = Result<T, StoreError>> + Send>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| map_err("scan", e))?;
        let table = match txn.open_table(table(keyspace)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Box::new(std::iter::empty())),
            Err(e) => return Err(map_err("scan", e)),
        };
        let end = prefix_end(prefix);
        let end_bound = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        // The range owns its snapshot of the table, so it outlives `txn` and `table`.
        let range = table
            .range::<&[u8]>((Bound::Included(prefix), end_bound))
            .map_err(|e| map_err("scan", e))?;
        Ok(Box::new(range.map(move |item| {
            item.map(|(k, v)| f(k.value(), v.value()))
                .map_err(|e| map_err("scan", e))
        })))
    }
}

impl Store for RedbStore {
    fn backend(&self) -> Backend {
        BACKEND
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        validate_keyspace(keyspace)?;
        self.guard
            .run(|| self.read_value(keyspace, key, <[u8]>::to_vec))
    }

    fn get_slice(
        &self,
        keyspace: &str,
        key: &[u8],
        from: usize,
        max: usize,
    ) -> Result<Option<ValueSlice>, StoreError> {
        validate_keyspace(keyspace)?;
        self.guard
            .run(|| self.read_value(keyspace, key, |v| ValueSlice::of(v, from, max)))
    }

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        batch.validate()?;
        self.guard.run(|| self.write_inner(batch))
    }

    fn scan_prefix(&self, keyspace: &str, prefix: &[u8]) -> Result<ScanIter<'_>, StoreError> {
        validate_keyspace(keyspace)?;
        let inner = self
            .guard
            .run(|| self.scan_inner(keyspace, prefix, |k, v| (k.to_vec(), v.to_vec())))?;
        Ok(self.guard.iter(inner))
    }

    fn scan_keys(&self, keyspace: &str, prefix: &[u8]) -> Result<KeyIter<'_>, StoreError> {
        validate_keyspace(keyspace)?;
        let inner = self
            .guard
            .run(|| self.scan_inner(keyspace, prefix, |k, _| k.to_vec()))?;
        Ok(self.guard.iter(inner))
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every commit is already fsync'd (Durability::Immediate).
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's resident memory now (`VmRSS`, KiB; Linux).
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS line")
    }

    /// What a holder does with a 2^20-leaf key, scaled down: large records written, read back
    /// and scanned. redb's default cache (1 GiB) would keep every page written resident; the
    /// node's ([`CACHE_BYTES`]) keeps the growth to the cache plus a record at a time. Run by
    /// nextest in a process of its own, so other tests' allocations do not count.
    #[test]
    fn resident_memory_stays_near_the_cache_size_whatever_is_written() {
        const RECORD: usize = 8 << 20;
        const RECORDS: u8 = 12;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(dir.path()).expect("open");
        let before = rss_kib();
        for i in 0..RECORDS {
            let value = vec![i; RECORD];
            store.put("held", &[i], &value).expect("put");
            assert_eq!(
                store.get("held", &[i]).expect("get").as_deref(),
                Some(&value[..])
            );
        }
        let scanned: usize = store
            .scan_prefix("held", &[])
            .expect("scan")
            .map(|e| e.expect("entry").1.len())
            .sum();
        assert_eq!(scanned, RECORD * usize::from(RECORDS));
        let grown_mib = rss_kib().saturating_sub(before) / 1024;
        let written_mib = (RECORD * usize::from(RECORDS)) as u64 >> 20;
        assert!(
            grown_mib < written_mib / 2,
            "resident memory grew by {grown_mib} MiB after writing {written_mib} MiB (cache {} MiB)",
            CACHE_BYTES >> 20
        );
    }
}
