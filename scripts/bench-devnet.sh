#!/usr/bin/env bash
# Starts a 4-validator devnet on this machine (10,000 funded load-test
# accounts), sweeps offered load with `palisade bench`, prints a table and
# writes it to docs/benchmarks-latest.md. Saturation is the first rate where
# committed < 95% of offered. Every node is stopped on exit.
#
#   ./scripts/bench-devnet.sh                  # default sweep
#   RATES="500 1000 2000" DURATION=10 BLOCK_INTERVAL_MS=200 ./scripts/bench-devnet.sh
#   PER_CALL=1 ./scripts/bench-devnet.sh       # JSON-RPC batches of tx_submit
#                                              # instead of tx_submitBatch
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
RATES="${RATES:-500 1000 2000 3000 4000 5000 7500 10000 15000 20000}"
DURATION="${DURATION:-10}"
# Short blocks pipeline better under load (see docs/benchmarks.md).
BLOCK_INTERVAL_MS="${BLOCK_INTERVAL_MS:-50}"
# Clients that submit many transactions use tx_submitBatch (one batch
# signature check per call); PER_CALL=1 measures one tx_submit per tx.
submit_mode="--submit-batch"
[ "${PER_CALL:-0}" = 1 ] && submit_mode=""
N=4
BASE_P2P=37556 BASE_RPC=39545 BASE_METRICS=40615

cargo build --release --locked --workspace --bins >&2
BIN="$CARGO_TARGET_DIR/release/palisade"
DIR="$(mktemp -d -t palisade-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Refuse to run beside another network on these ports: its nodes would
# answer in place of ours and the numbers would be someone else's.
for ((i = 0; i < N; i++)); do
    for port in $((BASE_P2P + i)) $((BASE_RPC + i)) $((BASE_METRICS + i)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "port $port is in use (another devnet still running?); stop it first" >&2
            exit 1
        fi
    done
done
# Every validator must still be running.
check_nodes() {
    for ((i = 0; i < N; i++)); do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "validator $i is not running; its log ends:" >&2
            tail -5 "$DIR/node$i.log" >&2
            exit 1
        fi
    done
}
"$BIN" testnet --validators $N --output "$DIR/net" --bench-accounts 10000 \
    --block-interval-ms "$BLOCK_INTERVAL_MS" \
    --p2p-port $BASE_P2P --rpc-port $BASE_RPC --metrics-port $BASE_METRICS >/dev/null
for ((i = 0; i < N; i++)); do
    "$BIN" start --home "$DIR/net/node$i" 2>"$DIR/node$i.log" &
    pids+=("$!")
done
rpc=$(for ((i = 0; i < N; i++)); do printf '127.0.0.1:%d,' $((BASE_RPC + i)); done)
metrics=$(for ((i = 0; i < N; i++)); do printf '127.0.0.1:%d,' $((BASE_METRICS + i)); done)
rpc=${rpc%,} metrics=${metrics%,}
# Wait (bounded) for the first blocks.
for _ in $(seq 1 100); do
    if "$BIN" status --rpc "http://127.0.0.1:$BASE_RPC" 2>/dev/null | grep -q "height [1-9]"; then break; fi
    sleep 0.2
done

machine="$(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
out="docs/benchmarks-latest.md"
{
    echo "# Latest benchmark sweep"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $machine; 4 validators and the load generator on this one machine; ${DURATION} s per rate; block interval ${BLOCK_INTERVAL_MS} ms; submitted with ${submit_mode:-one tx_submit per transaction in JSON-RPC batches}."
    echo
    echo "| offered tx/s | committed tx/s | p50 ms | p95 ms | p99 ms | blocks/s | CPU s / 1k tx / node | max RSS MiB | disk B / tx / node |"
    echo "|---|---|---|---|---|---|---|---|---|"
} > "$out"
saturation=""
check_nodes
for rate in $RATES; do
    check_nodes
    json=$("$BIN" bench --rpc "$rpc" --metrics "$metrics" --rate "$rate" --duration-s "$DURATION" --json $submit_mode 2>/dev/null) || { echo "rate $rate: bench failed" >&2; break; }
    row=$(python3 scripts/bench_row.py "$json") && sat=0 || sat=$?
    echo "$row" | tee -a "$out"
    if [ "$sat" = 3 ] && [ -z "$saturation" ]; then
        saturation=$rate
        echo "saturated at offered $rate tx/s" >&2
        break
    fi
done
echo >> "$out"
echo "Saturation (first rate with committed < 95% of offered): ${saturation:-not reached}." >> "$out"
echo "wrote $out"
