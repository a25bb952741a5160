#!/usr/bin/env python3
"""Judges a sweep of `palisade bench --json` reports against issue 7's
targets and prints the verdict as markdown.

    bench_summary.py REPORTS [SATURATION]

REPORTS holds one JSON report per line, each with the sweep's nominal
`rate` added; SATURATION is the nominal rate the sweep saturated at (the
first with committed < 95% of offered), absent if it never did.

The latency targets hold at 70% of saturation. A sweep rarely has a rate
exactly there, so both swept rates either side are shown, and a target
counts as met only if it holds at both: near the knee latency can jump
between neighbouring rates, and the lower one alone would flatter.
"""
import json
import sys

THROUGHPUT_MIN = 10_000
P50_MAX_MS = 150
P99_MAX_MS = 500


def verdict(ok):
    return "met" if ok else "missed"


def judge(rows, saturation):
    lines = [
        "Targets (issue 7: 4 validators and the load generator on one "
        "2-core machine):"
    ]
    if not rows:
        return lines + ["- no rate was measured"]
    best = max(rows, key=lambda r: r["committed_tps"])
    lines.append(
        "- throughput ≥ {:,} committed tx/s: best {:,.0f} (offered {:,.0f}): {}".format(
            THROUGHPUT_MIN,
            best["committed_tps"],
            best["offered_tps"],
            verdict(best["committed_tps"] >= THROUGHPUT_MIN),
        )
    )
    if saturation is None:
        lines.append(
            "- latency at 70% of saturation: the sweep did not saturate; "
            "sweep higher rates to judge it"
        )
        return lines
    at = 0.7 * saturation
    below = [r for r in rows if r["rate"] <= at]
    above = [r for r in rows if at < r["rate"] < saturation]
    side = [r for r in (max(below, key=lambda r: r["rate"], default=None),
                        min(above, key=lambda r: r["rate"], default=None))
            if r is not None]
    if not side:
        lines.append(
            "- latency at 70% of saturation ({:,.0f} tx/s): no rate swept "
            "below saturation".format(at)
        )
        return lines
    rates = " and ".join("{:,}".format(r["rate"]) for r in side)
    for name, key, limit in (
        ("p50", "latency_ms_p50", P50_MAX_MS),
        ("p99", "latency_ms_p99", P99_MAX_MS),
    ):
        values = " / ".join("{:,.0f}".format(r[key]) for r in side)
        ok = all(r[key] <= limit for r in side)
        lines.append(
            "- {} ≤ {} ms at 70% of saturation ({:,.0f} tx/s; swept {}): "
            "{} ms: {}".format(name, limit, at, rates, values, verdict(ok))
        )
    return lines


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    saturation = int(argv[2]) if len(argv) == 3 and argv[2] else None
    print("\n".join(judge(rows, saturation)))


if __name__ == "__main__":
    main(sys.argv)
