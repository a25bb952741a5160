#!/usr/bin/env bash
# Starts a local devnet: N validators (default 4) on this machine, each a
# `palisade start` process on loopback ports. Ctrl-C stops them all.
#
#   ./scripts/devnet.sh              # 4 validators, homes in a temp dir
#   VALIDATORS=7 DEVNET_DIR=/tmp/net ./scripts/devnet.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N="${VALIDATORS:-4}"
DIR="${DEVNET_DIR:-$(mktemp -d -t palisade-devnet.XXXXXX)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"

cargo build --release --locked --workspace --bins >&2
BIN="$CARGO_TARGET_DIR/release/palisade"

if [ ! -d "$DIR/net" ]; then
    "$BIN" testnet --validators "$N" --output "$DIR/net"
fi

pids=()
stop() {
    trap - EXIT INT TERM
    echo "stopping ${#pids[@]} nodes" >&2
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

for ((i = 0; i < N; i++)); do
    "$BIN" start --home "$DIR/net/node$i" 2>"$DIR/node$i.log" &
    pids+=("$!")
done

echo
echo "devnet of $N validators running; homes and logs in $DIR"
for ((i = 0; i < N; i++)); do
    echo "  node$i  metrics http://127.0.0.1:$((9615 + i))/metrics  log $DIR/node$i.log"
done
echo "admin key (all roles, funded): $DIR/net/admin_key.json"
echo "Ctrl-C stops the devnet."
wait
