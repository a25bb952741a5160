#!/usr/bin/env bash
# Measures joining a network and an idle chain's disk growth:
#   1. join: a 4-validator loopback network whose genesis funds ACCOUNTS
#      (default 1,000,000) accounts runs BLOCKS (default 1,000) blocks and
#      snapshots the state there; a node that has never run then joins by
#      state sync, and again (wiped) by block sync from genesis.
#   2. idle-disk: one validator makes IDLE_BLOCKS (default 12,000) empty
#      blocks, archive and then pruned, stopped cleanly at half and at the
#      end; how much its table files grew in between.
# ONLY=join or ONLY=idle-disk runs one of them. Prints markdown rows; the
# numbers are this machine's. Every node is stopped on exit.
#
#   ./scripts/bench-statesync.sh
#   ACCOUNTS=100000 BLOCKS=5000 IDLE_BLOCKS=10000 ./scripts/bench-statesync.sh
#   ONLY=join BLOCKS=100000 BLOCK_INTERVAL_MS=0 ./scripts/bench-statesync.sh   # a long chain
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
cargo build --release --locked --workspace --bins >&2
BIN="$CARGO_TARGET_DIR/release/palisade"
if [ "${ONLY:-}" != idle-disk ]; then
  python3 scripts/bench_statesync.py "$BIN" join "${ACCOUNTS:-1000000}" "${BLOCKS:-1000}"
fi
if [ "${ONLY:-}" != join ]; then
  python3 scripts/bench_statesync.py "$BIN" idle-disk "${IDLE_BLOCKS:-12000}"
fi
