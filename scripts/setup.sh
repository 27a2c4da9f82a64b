#!/usr/bin/env bash
# Installs what the build and tests need on a fresh machine (idempotent).
set -euo pipefail
if ! rustup component list --installed 2>/dev/null | grep -q '^rustfmt'; then rustup component add rustfmt; fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then rustup component add clippy; fi
if ! command -v cargo-nextest >/dev/null 2>&1; then cargo install cargo-nextest --locked; fi
# The fuzz smoke run (scripts/fuzz-smoke.sh) needs only cargo; the long runs use cargo-fuzz
# (about a minute to install on 2 cores).
if ! command -v cargo-fuzz >/dev/null 2>&1; then cargo install cargo-fuzz --locked; fi
