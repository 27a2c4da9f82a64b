#!/usr/bin/env bash
# Long fuzzing runs (docs/security.md, "Fuzzing"): each target, one after another, for FUZZ_RUNS
# executions (default 10^7) or FUZZ_SECONDS seconds (default: no limit), whichever comes first,
# from the committed corpus and regressions, at nice 10 (one fuzz process at a time; with
# FUZZ_JOBS=N, N processes share the target's corpus and FUZZ_RUNS between them: libFuzzer's
# -jobs, each process's log in fuzz/artifacts/<target>/fuzz-<i>.log).
# By default through cargo-fuzz (release build, debug assertions on, `--sanitizer none` for the
# stable toolchain). With FUZZ_BIN=<path> it runs that already-built all-targets binary instead
# (the `smoke` binary scripts/fuzz-smoke.sh builds), which needs no release build.
# New corpus entries go to fuzz/corpus-long/<target>, crashes and logs to fuzz/artifacts/<target>/
# (neither is committed). Prints each target's executions, exec/s, coverage and result.
# Usage: scripts/fuzz-long.sh [target...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs=${FUZZ_RUNS:-10000000}
seconds=${FUZZ_SECONDS:-0}
jobs=${FUZZ_JOBS:-1}
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
if [ -z "${FUZZ_BIN:-}" ]; then
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
    cargo fuzz build --sanitizer none
fi
# The file targets write a file per execution: memory-backed where possible.
SEEDFED_FUZZ_SCRATCH=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
export SEEDFED_FUZZ_SCRATCH
trap 'rm -rf "$SEEDFED_FUZZ_SCRATCH"' EXIT
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus-long/$t" "artifacts/$t"
    dirs=("$PWD/corpus-long/$t" "$PWD/corpus/$t")
    if [ -d "regressions/$t" ]; then dirs+=("$PWD/regressions/$t"); fi
    log="artifacts/$t/run.log"
    flags=(-runs="$((runs / jobs))" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$PWD/artifacts/$t/")
    if [ "$jobs" -gt 1 ]; then
        flags+=(-jobs="$jobs" -workers="$jobs")
        rm -f "artifacts/$t"/fuzz-*.log
    fi
    start=$(date +%s)
    if [ -n "${FUZZ_BIN:-}" ]; then
        cmd=(env SEEDFED_FUZZ_TARGET="$t" "$FUZZ_BIN" "${flags[@]}" "${dirs[@]}")
    else
        cmd=(cargo fuzz run --sanitizer none --fuzz-dir "$PWD" "$t" "${dirs[@]}" -- "${flags[@]}")
    fi
    # With -jobs, libFuzzer writes each process's log to fuzz-<i>.log in its working directory.
    if (cd "artifacts/$t" && nice -n 10 "${cmd[@]}") >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see fuzz/$log)"
        status=1
    fi
    secs=$(($(date +%s) - start))
    logs=("$log")
    if [ "$jobs" -gt 1 ]; then logs=("artifacts/$t"/fuzz-*.log); fi
    execs=$(cat "${logs[@]}" | grep -ao 'stat::number_of_executed_units: *[0-9]*' |
        grep -o '[0-9]*$' | awk '{ s += $1 } END { print (NR ? s : "?") }')
    rate=$(cat "${logs[@]}" | grep -ao 'stat::average_exec_per_sec: *[0-9]*' |
        grep -o '[0-9]*$' | awk '{ s += $1 } END { print (NR ? s : "?") }')
    cov=$(cat "${logs[@]}" | grep -ao 'cov: [0-9]*' | sort -t' ' -k2 -n | tail -1 || true)
    printf '%-18s %10s execs %7s exec/s %5ss %-10s %s\n' "$t" "$execs" "$rate" "$secs" "$cov" "$result"
done
exit $status
