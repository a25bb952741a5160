#!/usr/bin/env python3
"""Formats one `palisade bench --json` report as a markdown table row.
Exits 3 if committed throughput is below 95% of offered (saturation).

    bench_row.py JSON [RATE REPORTS]

With RATE and REPORTS, also appends the report, with the sweep's nominal
`rate` added, as one line to REPORTS (read by bench_summary.py)."""
import json
import sys

r = json.loads(sys.argv[1])
if len(sys.argv) == 4:
    with open(sys.argv[3], "a", encoding="utf-8") as reports:
        print(json.dumps(dict(r, rate=int(sys.argv[2]))), file=reports)


def f(v, d=2):
    return "n/a" if v is None else f"{v:.{d}f}"


print(
    "| {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.2f} | {} | {} | {} | {} |".format(
        r["offered_tps"],
        r["committed_tps"],
        r["latency_ms_p50"],
        r["latency_ms_p95"],
        r["latency_ms_p99"],
        r["blocks_per_s"],
        f(r["cpu_s_per_1000_tx_per_node"], 3),
        f(r["max_rss_mib"], 0),
        f(r["disk_bytes_per_tx_per_node"], 0),
        f(r.get("generator_cpu_s"), 1),
    )
)
sys.exit(3 if r["committed_tps"] < 0.95 * r["offered_tps"] else 0)
