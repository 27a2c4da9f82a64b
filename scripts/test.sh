#!/usr/bin/env bash
# The project's test command: every test of every crate (doc tests, then unit, property and
# integration tests through nextest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --doc --quiet
cargo nextest run --workspace --no-fail-fast "$@"
