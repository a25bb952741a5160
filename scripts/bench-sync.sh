#!/usr/bin/env bash
# Measures block sync: a 4-validator devnet takes RATE x DURATION transfers from
# `palisade bench`, then validator 3 is stopped, its data/ deleted and
# restarted, and timed until it reports the height the network had when it
# was restarted. Prints the replay rate (transactions per second, process
# start included). Every node is stopped on exit.
#
#   ./scripts/bench-sync.sh                 # 40,000 transfers at 2,500 tx/s
#   RATE=3000 DURATION=20 ./scripts/bench-sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
RATE="${RATE:-2500}"
DURATION="${DURATION:-16}"
BLOCK_INTERVAL_MS="${BLOCK_INTERVAL_MS:-50}"
# Below Linux's ephemeral range (see bench-devnet.sh).
BASE_P2P=27656 BASE_RPC=28645 BASE_METRICS=29715
BENCH_NAME=palisade-sync
# shellcheck source=scripts/bench-net.sh
source scripts/bench-net.sh
"$BIN" bench --rpc "$rpc" --rate "$RATE" --duration-s "$DURATION" --submit-batch >&2
check_nodes

last=$((N - 1))
kill -TERM "${pids[$last]}"
wait "${pids[$last]}" 2>/dev/null || true
rm -rf "$DIR/net/node$last/data"
target=$(height $BASE_RPC)
txs=$(python3 - "$BASE_RPC" "$target" <<'PY'
import json, sys, urllib.request
port, target = int(sys.argv[1]), int(sys.argv[2])
total = 0
for h in range(1, target + 1):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_getBlock", "params": [h]}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        total += len(json.load(r)["result"]["block"]["txs"])
print(total)
PY
)
start=$(date +%s.%N)
"$BIN" start --home "$DIR/net/node$last" 2>"$DIR/node$last.restart.log" &
pids[$last]=$!
port=$((BASE_RPC + last))
got=0
for _ in $(seq 1 1200); do
    h=$(height $port || true)
    if [ -n "$h" ] && [ "$h" -ge "$target" ]; then got=1; break; fi
    sleep 0.05
done
end=$(date +%s.%N)
[ "$got" = 1 ] || { echo "validator $last did not reach height $target within 60 s" >&2; exit 1; }
python3 - "$start" "$end" "$target" "$txs" <<'PY'
import sys
start, end, target, txs = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = end - start
print(f"re-synced {target} blocks, {txs} transactions in {s:.2f} s: {txs / s:,.0f} tx/s replayed (process start included)")
PY
