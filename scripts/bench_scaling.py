#!/usr/bin/env python3
"""Summarizes scripts/bench-scaling.sh's sweeps as one markdown table.

    bench_scaling.py N REPORTS [N REPORTS ...]

Each REPORTS file holds one sweep's `palisade bench --json` reports, one
per line with the sweep's nominal `rate` added (bench_row.py writes them).
Per network size: the best committed rate and whether the sweep saturated
(committed below 95% of offered), blocks/s at the lowest rate, and p50/p99
latency and CPU per 1,000 transactions per node at the highest rate at or
below 70% of the best committed rate."""
import json
import os
import subprocess
import sys


def load(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(v, d=0):
    return "n/a" if v is None else f"{v:,.{d}f}"


def row(n, reports):
    if not reports:
        return f"| {n} | no rate measured | | | | |"
    best = max(reports, key=lambda r: r["committed_tps"])
    saturated = any(r["committed_tps"] < 0.95 * r["offered_tps"] for r in reports)
    low = min(reports, key=lambda r: r["rate"])
    knee = 0.7 * best["committed_tps"]
    below = [r for r in reports if r["offered_tps"] <= knee] or [low]
    at70 = max(below, key=lambda r: r["offered_tps"])
    return (
        f"| {n} | {fmt(best['committed_tps'])} ({'saturated' if saturated else 'not saturated'}) "
        f"| {fmt(low['blocks_per_s'], 1)} at {fmt(low['offered_tps'])} tx/s "
        f"| {fmt(at70['latency_ms_p50'])} / {fmt(at70['latency_ms_p99'])} ms at {fmt(at70['offered_tps'])} tx/s "
        f"| {fmt(at70.get('cpu_s_per_1000_tx_per_node'), 3)} |"
    )


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit(__doc__)
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print("# Scaling with the number of validators")
    print()
    print(f"All validators and the load generator on one machine of {cpu} cores; "
          "scripts/bench-devnet.sh's sweep per network size.")
    print()
    print("| validators | best committed tx/s | blocks/s (lowest rate) | p50 / p99 near 70% of best | CPU s / 1k tx / node there |")
    print("|---|---|---|---|---|")
    for n, path in zip(args[::2], args[1::2]):
        print(row(n, load(path)))


main()
