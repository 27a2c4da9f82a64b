//! Writes the seed corpus; not a fuzz target. It links libFuzzer like the targets (the crates
//! it uses are coverage-instrumented) and does its work in libFuzzer's init hook:
//! `SEEDFED_SEEDS_DIR=fuzz/corpus <target dir>/seeds -runs=0` puts each target's valid seed
//! inputs in `fuzz/corpus/<target>/`, named by content hash. Without the variable it does
//! nothing.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        if let Some(dir) = std::env::var_os("SEEDFED_SEEDS_DIR") {
            match seedfed_fuzz::seeds::write(std::path::Path::new(&dir)) {
                Ok(n) => eprintln!("wrote {n} seeds under {}", dir.to_string_lossy()),
                Err(e) => {
                    eprintln!("cannot write seeds: {e}");
                    std::process::exit(1);
                }
            }
        }
    },
    |_data: &[u8]| {}
);
