#!/usr/bin/env bash
# The project's test command: every test of every crate (unit, property, integration, doc).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc
