//! Every fuzz target in one binary, for CI's smoke run (scripts/fuzz-smoke.sh): one link
//! instead of one per target. `SEEDFED_FUZZ_TARGET=<name>` picks the target (the names of
//! `fuzz_targets/`); the long runs use the per-target binaries through cargo-fuzz.
#![no_main]

use std::sync::OnceLock;

static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();

libfuzzer_sys::fuzz_target!(
    init: {
        let name = std::env::var("SEEDFED_FUZZ_TARGET").unwrap_or_default();
        match seedfed_fuzz::target(&name) {
            Some(f) => {
                let _ = TARGET.set(f);
            }
            None => {
                eprintln!("SEEDFED_FUZZ_TARGET={name:?} names no target");
                std::process::exit(2);
            }
        }
    },
    |data: &[u8]| {
        if let Some(f) = TARGET.get() {
            f(data)
        }
    }
);
