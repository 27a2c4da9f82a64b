//! Conformance suite for every store backend: the same checks run against redb, sled and memory
//! (persistence and corrupt-file checks only against the on-disk backends).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::collections::BTreeMap;
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use seedfed_node::store::{self, Backend, Batch, Store, StoreError};

fn open(dir: &Path, backend: Backend) -> Box<dyn Store> {
    store::open(dir, backend).expect("open store")
}

/// The entries `scan_prefix` yields, after checking that `scan_keys` yields their keys.
fn scan(s: &dyn Store, keyspace: &str, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let entries = s
        .scan_prefix(keyspace, prefix)
        .expect("scan")
        .collect::<Result<Vec<_>, _>>()
        .expect("scan entries");
    let keys = s
        .scan_keys(keyspace, prefix)
        .expect("scan keys")
        .collect::<Result<Vec<_>, _>>()
        .expect("scan keys");
    assert!(
        keys.iter().eq(entries.iter().map(|(k, _)| k)),
        "scan_keys and scan_prefix disagree on {keyspace} {prefix:?}"
    );
    entries
}

fn get_put_delete(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    assert_eq!(s.backend(), backend);
    assert_eq!(s.get("ledger", b"k").unwrap(), None);
    s.put("ledger", b"k", b"v1").unwrap();
    assert_eq!(s.get("ledger", b"k").unwrap(), Some(b"v1".to_vec()));
    s.put("ledger", b"k", b"v2").unwrap();
    assert_eq!(s.get("ledger", b"k").unwrap(), Some(b"v2".to_vec()));
    // Keyspaces are separate, including names that are prefixes of each other.
    assert_eq!(s.get("ledge", b"k").unwrap(), None);
    assert_eq!(s.get("ledger2", b"k").unwrap(), None);
    s.put("ledger2", b"k", b"other").unwrap();
    assert_eq!(s.get("ledger", b"k").unwrap(), Some(b"v2".to_vec()));
    s.delete("ledger", b"k").unwrap();
    assert_eq!(s.get("ledger", b"k").unwrap(), None);
    assert_eq!(s.get("ledger2", b"k").unwrap(), Some(b"other".to_vec()));
    // Deleting an absent key (or in an unknown keyspace) is fine.
    s.delete("ledger", b"k").unwrap();
    s.delete("never-written", b"k").unwrap();
    // Empty key, empty value, large value.
    s.put("misc", b"", b"").unwrap();
    assert_eq!(s.get("misc", b"").unwrap(), Some(Vec::new()));
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    s.put("misc", b"big", &big).unwrap();
    assert_eq!(s.get("misc", b"big").unwrap(), Some(big));
}

/// `get_slice` copies out part of a value, clamped to its end, with the whole value's length;
/// a missing key (or keyspace) is `None`, not an empty slice.
fn get_slice_reads_part_of_a_value(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    assert_eq!(s.get_slice("trees", b"k", 0, 8).unwrap(), None);
    let value: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    s.put("trees", b"k", &value).unwrap();
    let n = value.len();
    for (from, max, want) in [
        (0, 8, &value[..8]),
        (1000, 32, &value[1000..1032]),
        (n - 5, 100, &value[n - 5..]),
        (n, 8, &value[..0]),
        (usize::MAX, usize::MAX, &value[..0]),
        (7, usize::MAX, &value[7..]),
        (3, 0, &value[..0]),
    ] {
        let got = s.get_slice("trees", b"k", from, max).unwrap().unwrap();
        assert_eq!(got.total, n);
        assert!(
            got.bytes == want,
            "from {from}, max {max}: {} bytes",
            got.bytes.len()
        );
    }
    assert_eq!(s.get_slice("trees", b"other", 0, 8).unwrap(), None);
    assert_eq!(s.get_slice("never-written", b"k", 0, 8).unwrap(), None);
    // Debug shows lengths, never the bytes.
    let shown = format!("{:?}", s.get_slice("trees", b"k", 0, 4).unwrap());
    assert!(!shown.contains("[0, 1, 2, 3]"), "{shown}");
}

/// Neither the store nor a batch prints stored bytes in `Debug` (values may be shares).
fn debug_never_prints_values(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    let mut batch = Batch::new();
    batch.put("shares", b"KEY-MARKER", b"SECRET-MARKER");
    s.write(&batch).unwrap();
    for shown in [format!("{s:?}"), format!("{batch:?}")] {
        assert!(
            !shown.contains("MARKER") && !shown.contains("83, 69, 67"),
            "Debug leaks bytes: {shown}"
        );
    }
}

fn invalid_keyspace_is_rejected(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    let bad = "Bad/Name";
    assert!(matches!(
        s.get(bad, b"k"),
        Err(StoreError::InvalidKeyspace { .. })
    ));
    assert!(matches!(
        s.put(bad, b"k", b"v"),
        Err(StoreError::InvalidKeyspace { .. })
    ));
    assert!(matches!(
        s.scan_prefix(bad, b""),
        Err(StoreError::InvalidKeyspace { .. })
    ));
    assert!(matches!(
        s.put(&"x".repeat(65), b"k", b"v"),
        Err(StoreError::InvalidKeyspace { .. })
    ));
}

fn batch_is_ordered_and_atomic(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    s.put("a", b"old", b"x").unwrap();
    let mut batch = Batch::new();
    batch
        .put("a", b"k1", b"1")
        .put("b", b"k1", b"b1")
        .delete("a", b"old")
        .put("a", b"k2", b"first")
        .put("a", b"k2", b"second")
        .put("a", b"k3", b"gone")
        .delete("a", b"k3");
    assert_eq!(batch.len(), 7);
    s.write(&batch).unwrap();
    assert_eq!(s.get("a", b"k1").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get("b", b"k1").unwrap(), Some(b"b1".to_vec()));
    assert_eq!(s.get("a", b"old").unwrap(), None);
    assert_eq!(s.get("a", b"k2").unwrap(), Some(b"second".to_vec()));
    assert_eq!(s.get("a", b"k3").unwrap(), None);

    // A batch with one bad operation is rejected as a whole: nothing of it is visible.
    let mut bad = Batch::new();
    bad.put("a", b"k4", b"4")
        .delete("a", b"k1")
        .put("NOT VALID", b"k", b"v")
        .put("b", b"k5", b"5");
    assert!(matches!(
        s.write(&bad),
        Err(StoreError::InvalidKeyspace { .. })
    ));
    assert_eq!(s.get("a", b"k4").unwrap(), None);
    assert_eq!(s.get("a", b"k1").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get("b", b"k5").unwrap(), None);

    // An empty batch is a no-op.
    s.write(&Batch::new()).unwrap();
    assert_eq!(scan(&*s, "a", b"").len(), 2);
}

fn prefix_scan_is_ordered(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    let keys: Vec<&[u8]> = vec![
        b"b",
        b"a\xff\xff",
        b"a",
        b"a\xff",
        b"ab",
        b"a\x00",
        b"",
        b"\xff",
        b"aa",
        b"abc",
        b"\xff\xff\x00",
    ];
    let mut model = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        let v = vec![i as u8; i + 1];
        s.put("scan", k, &v).unwrap();
        model.insert(k.to_vec(), v);
    }
    // Neighbouring keyspaces whose stored prefixes could collide must not leak in.
    s.put("sca", b"nb", b"x").unwrap();
    s.put("scan2", b"a", b"x").unwrap();
    s.put("scan-", b"a", b"x").unwrap();
    for prefix in [
        &b""[..],
        b"a",
        b"a\xff",
        b"ab",
        b"abc",
        b"abcd",
        b"\xff",
        b"\xff\xff",
        b"c",
    ] {
        let expected: Vec<_> = model
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(scan(&*s, "scan", prefix), expected, "prefix {prefix:?}");
    }
    assert!(scan(&*s, "unknown", b"").is_empty());
}

/// Random puts, deletes and batches against a `BTreeMap` model, compared by get and full scans.
fn matches_model(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let keyspaces = ["m0", "m1", "m2"];
    let mut model: BTreeMap<(&str, Vec<u8>), Vec<u8>> = BTreeMap::new();
    let rand_key = |rng: &mut ChaCha8Rng| {
        let len = (rng.next_u32() % 3) as usize;
        (0..len)
            .map(|_| (rng.next_u32() % 4) as u8 * 0x55)
            .collect::<Vec<u8>>()
    };
    for _ in 0..60 {
        let mut batch = Batch::new();
        for _ in 0..1 + rng.next_u32() % 4 {
            let ks = keyspaces[(rng.next_u32() % 3) as usize];
            let key = rand_key(&mut rng);
            if rng.next_u32() % 3 == 0 {
                batch.delete(ks, &key);
                model.remove(&(ks, key));
            } else {
                let value = rng.next_u64().to_le_bytes().to_vec();
                batch.put(ks, &key, &value);
                model.insert((ks, key), value);
            }
        }
        s.write(&batch).unwrap();
        for ks in keyspaces {
            let expected: Vec<_> = model
                .iter()
                .filter(|((k, _), _)| *k == ks)
                .map(|((_, key), v)| (key.clone(), v.clone()))
                .collect();
            assert_eq!(scan(&*s, ks, b""), expected);
        }
    }
    for ((ks, key), v) in &model {
        assert_eq!(s.get(ks, key).unwrap().as_ref(), Some(v));
    }
}

fn reopen_persists(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), backend);
        s.put("ledger", b"height", b"42").unwrap();
        let mut batch = Batch::new();
        batch
            .put("shares", b"leaf-1", b"share")
            .put("ledger", b"tmp", b"t");
        s.write(&batch).unwrap();
        s.delete("ledger", b"tmp").unwrap();
        s.close().unwrap();
    }
    {
        // Dropped without close: writes are durable already.
        let s = open(dir.path(), backend);
        assert_eq!(s.get("ledger", b"height").unwrap(), Some(b"42".to_vec()));
        assert_eq!(s.get("shares", b"leaf-1").unwrap(), Some(b"share".to_vec()));
        assert_eq!(s.get("ledger", b"tmp").unwrap(), None);
        s.put("ledger", b"height", b"43").unwrap();
    }
    let s = open(dir.path(), backend);
    assert_eq!(
        scan(&*s, "ledger", b""),
        vec![(b"height".to_vec(), b"43".to_vec())]
    );
}

fn second_open_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), backend);
    s.put("a", b"k", b"v").unwrap();
    let second = store::open(dir.path(), backend);
    assert!(
        matches!(second, Err(StoreError::Locked { .. })),
        "second open gave {second:?}"
    );
    assert_eq!(s.get("a", b"k").unwrap(), Some(b"v".to_vec()));
}

/// The store's main data file for a backend.
fn data_file(dir: &Path, backend: Backend) -> std::path::PathBuf {
    match backend {
        Backend::Redb => dir.join("seedfed.redb"),
        Backend::Sled => dir.join("sled").join("db"),
        Backend::Memory => unreachable!("memory has no files"),
    }
}

/// A data file full of garbage is refused with an error.
fn garbage_file_is_an_error(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), backend).close().unwrap();
    let file = data_file(dir.path(), backend);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut garbage = vec![0u8; 64 * 1024];
    rng.fill_bytes(&mut garbage);
    std::fs::write(&file, &garbage).unwrap();
    let result = store::open(dir.path(), backend);
    assert!(result.is_err(), "garbage store opened: {result:?}");
}

/// A data file truncated mid-way, or with its first page zeroed, never makes the store panic:
/// opening fails, or it opens and every read returns a value or an error.
fn damaged_file_is_an_error_not_a_panic(backend: Backend) {
    for damage in ["truncate", "zero-head", "flip-bytes"] {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path(), backend);
            for i in 0u32..200 {
                s.put("data", &i.to_be_bytes(), &[i as u8; 300]).unwrap();
            }
            s.close().unwrap();
        }
        let file = data_file(dir.path(), backend);
        let mut bytes = std::fs::read(&file).unwrap();
        match damage {
            "truncate" => bytes.truncate(bytes.len() / 2),
            "zero-head" => {
                let head = 4096.min(bytes.len());
                bytes[..head].fill(0);
            }
            _ => {
                let mut rng = ChaCha8Rng::seed_from_u64(3);
                for _ in 0..64 {
                    let at = (rng.next_u64() % bytes.len() as u64) as usize;
                    bytes[at] ^= 0xa5;
                }
            }
        }
        std::fs::write(&file, &bytes).unwrap();
        let outcome = match store::open(dir.path(), backend) {
            Err(e) => format!("open error: {e}"),
            Ok(s) => {
                let (mut intact, mut missing, mut errors) = (0, 0, 0);
                for i in 0u32..200 {
                    match s.get("data", &i.to_be_bytes()) {
                        Ok(Some(v)) => {
                            // Damage may lose records, but must never serve wrong bytes as data.
                            assert_eq!(v, vec![i as u8; 300], "{damage}: wrong value for {i}");
                            intact += 1;
                        }
                        Ok(None) => missing += 1,
                        Err(_) => errors += 1,
                    }
                }
                match s.scan_prefix("data", b"") {
                    Ok(iter) => errors += iter.filter(Result::is_err).count(),
                    Err(_) => errors += 1,
                }
                format!("opened: {intact} intact, {missing} missing, {errors} read errors")
            }
        };
        eprintln!("{backend} {damage}: {outcome}");
    }
}

macro_rules! conformance {
    ($module:ident, $backend:expr, [$($test:ident),* $(,)?]) => {
        mod $module {
            use super::*;
            $(
                #[test]
                fn $test() {
                    super::$test($backend);
                }
            )*
        }
    };
}

conformance!(
    redb,
    Backend::Redb,
    [
        get_put_delete,
        get_slice_reads_part_of_a_value,
        debug_never_prints_values,
        invalid_keyspace_is_rejected,
        batch_is_ordered_and_atomic,
        prefix_scan_is_ordered,
        matches_model,
        reopen_persists,
        second_open_is_refused,
        garbage_file_is_an_error,
        damaged_file_is_an_error_not_a_panic,
    ]
);

#[cfg(feature = "sled")]
conformance!(
    sled,
    Backend::Sled,
    [
        get_put_delete,
        get_slice_reads_part_of_a_value,
        debug_never_prints_values,
        invalid_keyspace_is_rejected,
        batch_is_ordered_and_atomic,
        prefix_scan_is_ordered,
        matches_model,
        reopen_persists,
        second_open_is_refused,
        garbage_file_is_an_error,
        damaged_file_is_an_error_not_a_panic,
    ]
);

conformance!(
    memory,
    Backend::Memory,
    [
        get_put_delete,
        get_slice_reads_part_of_a_value,
        debug_never_prints_values,
        invalid_keyspace_is_rejected,
        batch_is_ordered_and_atomic,
        prefix_scan_is_ordered,
        matches_model,
    ]
);
