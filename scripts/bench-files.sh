#!/usr/bin/env bash
# Measures shared files on a 4-validator devnet on loopback:
#   1. one holder: node 0 publishes SIZE_MIB (default 1024) MiB of random
#      bytes; node 1 fetches it. Throughput (pieces verified and written),
#      CPU seconds per GB of the sender and the receiver, and node 0's block
#      times while it serves, against the same span idle.
#   2. capped holders: the nodes restart with uploads capped at CAP_MIB
#      (default 16) MiB/s each; a new CAP_SIZE_MIB (default 128) MiB file is
#      fetched by node 1 from node 0 alone, then node 2 (two holders), then
#      node 3 (three holders).
# Prints a markdown summary; the numbers are this machine's. Every node is
# stopped on exit.
#
#   ./scripts/bench-files.sh
#   SIZE_MIB=256 CAP_MIB=8 ./scripts/bench-files.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
SIZE_MIB="${SIZE_MIB:-1024}"
CAP_MIB="${CAP_MIB:-16}"
CAP_SIZE_MIB="${CAP_SIZE_MIB:-128}"
BLOCK_INTERVAL_MS="${BLOCK_INTERVAL_MS:-200}"
# Below Linux's ephemeral range (see bench-devnet.sh).
BASE_P2P=27756 BASE_RPC=28745 BASE_METRICS=29815
BENCH_NAME=palisade-files
START_ARGS=(--set files.upload_bytes_per_s=0 --set files.peer_upload_bytes_per_s=0)
# shellcheck source=scripts/bench-net.sh
source scripts/bench-net.sh

restart_capped() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
    local cap=$((CAP_MIB * 1024 * 1024))
    for ((i = 0; i < N; i++)); do
        "$BIN" start --home "$DIR/net/node$i" --set "files.upload_bytes_per_s=$cap" \
            --set "files.peer_upload_bytes_per_s=$cap" 2>>"$DIR/node$i.log" &
        pids+=("$!")
    done
}

python3 scripts/bench_files.py "$BIN" "$DIR" "$BASE_RPC" "$SIZE_MIB" "${pids[0]}" "${pids[1]}" single
check_nodes
restart_capped
python3 scripts/bench_files.py "$BIN" "$DIR" "$BASE_RPC" "$CAP_SIZE_MIB" "${pids[0]}" "${pids[1]}" capped "$CAP_MIB"
check_nodes
