#!/usr/bin/env bash
# Runs Palisade's whole test suite: unit, property, simulation and
# end-to-end tests. Everything uses the release profile, the same one the
# devnet and benchmarks use, so the (slow) RocksDB build happens once.
set -euo pipefail
cd "$(dirname "$0")/.."
# Checks (and as root installs) what the build and tests need, and sets
# the target directory the devnet script shares.
# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
prereqs test

# End-to-end tests start the real binary; build it first.
cargo build --release --locked --workspace --bins

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --release --locked --workspace --no-fail-fast "$@"
else
    cargo test --release --locked --workspace --no-fail-fast "$@"
fi
