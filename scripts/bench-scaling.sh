#!/usr/bin/env bash
# Runs scripts/bench-devnet.sh's sweep on networks of 4, 7 and 10
# validators (COUNTS), and of one validator per core when this machine has
# more cores than that, one network after the other on this machine; then
# writes blocks/s, throughput, latency and CPU per transaction against the
# number of validators to OUT (docs/benchmarks-scaling-latest.md), from
# each sweep's reports (scripts/bench_scaling.py). Each sweep's own table
# goes beside it (docs/benchmarks-scaling-N.md). Every node of each
# network is stopped before the next starts.
#
#   ./scripts/bench-scaling.sh
#   COUNTS="4 7" RATES="1000 2000 4000 6000 8000" ./scripts/bench-scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
COUNTS="${COUNTS:-4 7 10}"
cores=$(nproc)
if [ "$cores" -gt 10 ] && ! grep -qw "$cores" <<<"$COUNTS"; then
    COUNTS="$COUNTS $cores"
fi
OUT="${OUT:-docs/benchmarks-scaling-latest.md}"
work="$(mktemp -d -t palisade-scaling.XXXXXX)"
trap 'rm -rf "$work"' EXIT
args=()
for n in $COUNTS; do
    echo "== $n validators" >&2
    # A sweep that fails (a validator died) still leaves its rows.
    VALIDATORS=$n OUT="docs/benchmarks-scaling-$n.md" REPORTS="$work/$n.jsonl" \
        ./scripts/bench-devnet.sh >&2 || echo "the sweep of $n validators stopped early" >&2
    args+=("$n" "$work/$n.jsonl")
done
python3 scripts/bench_scaling.py "${args[@]}" | tee "$OUT"
echo "wrote $OUT" >&2
