#!/usr/bin/env bash
# The project's test command: every test of every crate (doc tests, then unit, property and
# integration tests through nextest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --doc --quiet
# Alone, before the others (it runs cargo on this target dir and may relink target/debug/seedfed*
# that other tests start): `seedfed-testnet up`'s nested build and a plain build leave each
# other's artifacts fresh. Same package selection as below, so no test is rebuilt for it.
cargo nextest run --workspace --run-ignored only -E 'binary(nested_build)'
# Everything else; its summary is the run's last line.
cargo nextest run --workspace --no-fail-fast "$@"
