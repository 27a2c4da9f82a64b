#!/bin/sh
# The fuzz crate's rustc wrapper (.cargo/config.toml): adds libFuzzer's coverage
# instrumentation (the flags cargo-fuzz passes) to seedfed's own crates and the fuzz targets,
# and to nothing else, so a plain `cargo build` here makes working fuzzers while reusing the
# dependencies the workspace's test build compiled (scripts/fuzz-smoke.sh). Under cargo-fuzz,
# which instruments everything itself, it adds nothing.
rustc="$1"
shift
case " $* " in
*"sanitizer-coverage"*) ;;
*" --crate-name seedfed_"* | *"fuzz_targets/"* | *"src/bin/"*)
    exec "$rustc" "$@" \
        -Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares
    ;;
esac
exec "$rustc" "$@"
