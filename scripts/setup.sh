#!/usr/bin/env bash
# Installs what the build and tests need on a fresh machine (idempotent).
set -euo pipefail
if ! rustup component list --installed 2>/dev/null | grep -q '^rustfmt'; then rustup component add rustfmt; fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then rustup component add clippy; fi
if ! command -v cargo-nextest >/dev/null 2>&1; then cargo install cargo-nextest --locked; fi
# Chromium (headless) for the status page's browser test (node/tests/it/status_page.rs). Where it
# cannot be installed, that test skips with the reason printed.
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null) \
      || echo "setup: chromium could not be installed; the status page's browser test will skip" >&2
  else
    echo "setup: no chromium and no root apt-get; the status page's browser test will skip" >&2
  fi
fi
# The fuzz smoke run (scripts/fuzz-smoke.sh) needs only cargo; scripts/fuzz-long.sh installs
# cargo-fuzz for the long runs itself.
# iproute2 (`ip netns`) for the across-hosts test (testnet/tests/hosts.rs); where it cannot be
# installed, that test skips with the reason printed.
if ! command -v ip >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null) \
      || echo "setup: iproute2 could not be installed; the across-hosts test will skip" >&2
  else
    echo "setup: no ip command and no root apt-get; the across-hosts test will skip" >&2
  fi
fi
