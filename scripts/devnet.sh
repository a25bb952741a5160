#!/usr/bin/env bash
# Builds palisade and runs a local devnet: `palisade devnet` with 4
# validators (one process each, loopback ports) until Ctrl-C. Arguments are
# passed on, e.g. `./scripts/devnet.sh --validators 7 --dir /tmp/net`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Checks (and as root installs) what the build needs, and sets the target
# directory the test script shares.
# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
prereqs build
# The same build the tests use, so nothing is compiled twice.
cargo build --release --locked --workspace --bins >&2
exec "$CARGO_TARGET_DIR/release/palisade" devnet "$@"
