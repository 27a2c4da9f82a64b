//! The simulation end to end: its files verify in an independent LMS implementation (hbs-lms),
//! and the same seed gives the same bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

use hbs_lms::Sha256_256;
use seedfed_testnet::simulate::{run, SimArgs};

fn small(out: &Path, seed: u64) -> SimArgs {
    SimArgs {
        nodes: 5,
        height: 10,
        sector_levels: 2,
        threshold: 3,
        holders: 4,
        seed,
        messages: 2,
        threads: 2,
        out: out.to_path_buf(),
        quiet: true,
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn outputs_verify_in_hbs_lms_and_are_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let report = run(small(a.path(), 7)).unwrap();
    run(small(b.path(), 7)).unwrap();

    // Same seed, same bytes.
    let fa = files(a.path());
    assert_eq!(fa, files(b.path()));
    // 2 messages + 1 after repair, each with a signature, plus the public key and its (empty:
    // no audit runs) list of retired leaves.
    assert_eq!(fa.len(), 2 + 2 * 3);
    assert_eq!(
        std::fs::read(a.path().join("seedfed.pub.retired")).unwrap(),
        b""
    );

    let public = std::fs::read(a.path().join("seedfed.pub")).unwrap();
    for i in 0..3 {
        let msg = std::fs::read(a.path().join(format!("msg-{i}"))).unwrap();
        let sig = std::fs::read(a.path().join(format!("msg-{i}.sig"))).unwrap();
        assert!(
            hbs_lms::verify::<Sha256_256>(&msg, &sig, &public).is_ok(),
            "hbs-lms rejects signature {i}"
        );
        let mut tampered = msg.clone();
        tampered.push(b'!');
        assert!(hbs_lms::verify::<Sha256_256>(&tampered, &sig, &public).is_err());
    }

    // Each leaf used once; the Byzantine holder was caught; a repair happened.
    let mut used = report.leaves_used.clone();
    used.dedup();
    assert_eq!(used.len(), report.leaves_used.len());
    assert!(report.caught.is_some());
    assert!(report.repaired.1 > 0);
}

#[test]
fn different_seed_gives_a_different_key() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ra = run(small(a.path(), 1)).unwrap();
    let rb = run(small(b.path(), 2)).unwrap();
    assert_ne!(ra.public_key, rb.public_key);
    assert_ne!(ra.beacon, rb.beacon);
}

#[test]
fn bad_parameters_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut args = small(d.path(), 1);
    args.height = 11;
    let err = run(args).unwrap_err().to_string();
    assert!(err.contains("--height"), "{err}");
    let mut args = small(d.path(), 1);
    args.holders = 5; // == nodes: no replacement holder possible
    assert!(run(args).unwrap_err().to_string().contains("--holders"));
    let mut args = small(d.path(), 1);
    args.threshold = 1;
    assert!(run(args).unwrap_err().to_string().contains("--threshold"));
}
