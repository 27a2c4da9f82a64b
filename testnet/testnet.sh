#!/usr/bin/env bash
# Local multi-process testnet on loopback.
#   testnet/testnet.sh up [--nodes N] [--dir DIR] [--foreground]
#   testnet/testnet.sh down [--dir DIR]
# Builds the release binaries, then runs seedfed-testnet from target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p seedfed-node -p seedfed-bootstrap -p seedfed-testnet --bins
exec target/release/seedfed-testnet "$@"
