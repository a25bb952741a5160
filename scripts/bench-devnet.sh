#!/usr/bin/env bash
# Starts a devnet of VALIDATORS (default 4) validators on this machine
# (10,000 funded load-test accounts), sweeps offered load with `palisade
# bench`, prints a table and writes it to OUT (docs/benchmarks-latest.md;
# REPORTS, if set, keeps each rate's JSON report, one per line). Saturation is the first rate where
# committed < 95% of offered; the table ends with a verdict on issue 7's
# targets (scripts/bench_summary.py). Every node is stopped on exit.
#
#   ./scripts/bench-devnet.sh                  # default sweep
#   RATES="500 1000 2000" DURATION=10 BLOCK_INTERVAL_MS=200 ./scripts/bench-devnet.sh
#   PER_CALL=1 ./scripts/bench-devnet.sh       # JSON-RPC batches of tx_submit
#                                              # instead of tx_submitBatch
#   WORKLOAD=erc20 ./scripts/bench-devnet.sh   # ERC-20 transfers in Ethereum
#                                              # transactions
#   VALIDATORS=7 ./scripts/bench-devnet.sh     # another network size
#                                              # (scripts/bench-scaling.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
# Steps of 1,000 around the knee: a 10 s point that lands on a jump (say
# 5,000 to 7,500) can tip the network into big blocks and stop the sweep
# a quarter below where finer steps saturate
# (docs/benchmarks/history/2026-12-04-r3-vote-path.md).
RATES="${RATES:-500 1000 2000 3000 4000 5000 6000 7000 8000 9000 10000 11000 12000 15000 20000}"
DURATION="${DURATION:-10}"
# The chain's default (docs/benchmarks.md, "Block interval"), so that the
# verdict is on what operators run; rounds before 2026-12-05 used 50 ms.
BLOCK_INTERVAL_MS="${BLOCK_INTERVAL_MS:-100}"
# Clients that submit many transactions use tx_submitBatch (one batch
# signature check per call); PER_CALL=1 measures one tx_submit per tx.
submit_mode="--submit-batch"
[ "${PER_CALL:-0}" = 1 ] && submit_mode=""
WORKLOAD="${WORKLOAD:-transfer}"
# Ethereum transactions go in JSON-RPC batches of eth_sendRawTransaction.
[ "$WORKLOAD" = erc20 ] && submit_mode=""
# Below Linux's ephemeral range (32768-60999): a port in it can be taken
# by another node's outgoing connection before its own node binds it.
BASE_P2P=27556 BASE_RPC=28545 BASE_METRICS=29615
BENCH_NAME=palisade-bench
# shellcheck source=scripts/bench-net.sh
source scripts/bench-net.sh

machine="$(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
out="${OUT:-docs/benchmarks-latest.md}"
{
    echo "# Latest benchmark sweep"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $machine; $N validators and the load generator on this one machine; ${DURATION} s per rate; block interval ${BLOCK_INTERVAL_MS} ms; workload ${WORKLOAD}; submitted with ${submit_mode:-one call per transaction in JSON-RPC batches}."
    echo
    echo "| offered tx/s | committed tx/s | p50 ms | p95 ms | p99 ms | blocks/s | CPU s / 1k tx / node | max RSS MiB | disk B / tx / node | generator CPU s | CPU steal % |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$out"
# On a virtual machine the hypervisor may run other guests on "our" cores
# (steal time): a sweep that had much of it measured a slower machine.
cpu_ticks() { awk '/^cpu /{t=0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat; }
steal_pct() { # before-ticks after-ticks
    echo "$1 $2" | awk '{d = $4 - $2; printf "%.1f", (d > 0 ? 100 * ($3 - $1) / d : 0)}'
}
saturation=""
reports="${REPORTS:-$DIR/reports.jsonl}"
: >"$reports"
for rate in $RATES; do
    check_nodes
    before=$(cpu_ticks)
    json=$("$BIN" bench --rpc "$rpc" --metrics "$metrics" --rate "$rate" --duration-s "$DURATION" --workload "$WORKLOAD" --json $submit_mode 2>/dev/null) || { echo "rate $rate: bench failed" >&2; break; }
    row=$(python3 scripts/bench_row.py "$json" "$rate" "$reports") && sat=0 || sat=$?
    row="$row $(steal_pct "$before" "$(cpu_ticks)") |"
    echo "$row" | tee -a "$out"
    if [ "$sat" = 3 ] && [ -z "$saturation" ]; then
        saturation=$rate
        echo "saturated at offered $rate tx/s" >&2
        break
    fi
done
echo >> "$out"
echo "Saturation (first rate with committed < 95% of offered): ${saturation:-not reached}." >> "$out"
echo >> "$out"
python3 scripts/bench_summary.py "$reports" "$saturation" | tee -a "$out"
echo "wrote $out"
