#!/usr/bin/env bash
# CI's fuzz smoke run: builds every fuzz target (one coverage-instrumented binary, `smoke`,
# reusing the dependencies the test build compiled) and runs each target briefly from its
# committed seed corpus (fuzz/corpus/<target>) and crash regressions (fuzz/regressions/<target>),
# which libFuzzer replays first. Any crash, failed check, timeout or leak fails the run.
# FUZZ_SMOKE_RUNS (default 3000) sets the executions per target. Long runs: scripts/fuzz-long.sh.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs=${FUZZ_SMOKE_RUNS:-3000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
cargo build --locked --quiet --bin smoke
bin="$CARGO_TARGET_DIR/debug/smoke"
scratch=$(mktemp -d)
# The file targets write a file per execution: memory-backed where possible.
SEEDFED_FUZZ_SCRATCH=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
export SEEDFED_FUZZ_SCRATCH
trap 'rm -rf "$scratch" "$SEEDFED_FUZZ_SCRATCH"' EXIT
failed=0
for f in fuzz_targets/*.rs; do
    t=$(basename "$f" .rs)
    dirs=("corpus/$t")
    if [ -d "regressions/$t" ]; then dirs+=("regressions/$t"); fi
    mkdir -p "$scratch/$t"
    start=$(date +%s%N)
    # New inputs go to the scratch directory (first), never into the committed corpus.
    if SEEDFED_FUZZ_TARGET="$t" "$bin" -runs="$runs" -seed=1 -timeout=10 -rss_limit_mb=2048 \
        -max_total_time=60 -artifact_prefix="$scratch/$t-" "$scratch/$t" "${dirs[@]}" \
        >"$scratch/$t.log" 2>&1; then
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        printf '%-18s ok   %s (%d.%03ds)\n' "$t" "$(grep -o 'Done [0-9]* runs' "$scratch/$t.log")" \
            $((ms / 1000)) $((ms % 1000))
    else
        echo "$t FAILED:"
        grep -A3 -m1 "panicked at" "$scratch/$t.log" | cut -c1-300 || true
        grep -E "^(SUMMARY|==[0-9]+== ERROR)|Test unit written|^Base64" "$scratch/$t.log" || tail -20 "$scratch/$t.log"
        failed=1
    fi
done
exit $failed
