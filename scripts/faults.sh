#!/usr/bin/env bash
# Runs the fault and adversarial scenarios on real node processes
# (tests/tests/it/faults.rs and network.rs) and writes a summary table to
# docs/reliability.md, below its marker line (the hand-kept table of attacks
# above it stays). Scenarios that cut links make network namespaces and
# need root and iproute2; without them they say SKIPPED and pass (in CI,
# CI=true, they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
# Full scenario lengths (SIGSTOP 30 s, isolation 60 s, split 30 s); CI
# runs the same scenarios held briefly.
export PALISADE_FAULTS_FULL="${PALISADE_FAULTS_FULL:-1}"
cargo build --release --locked --workspace --bins >&2
log="$(mktemp -t palisade-faults.XXXXXX)"
set +e
cargo nextest run --release --locked -p palisade-tests --no-fail-fast --test-threads 1 \
    --success-output final -E 'test(/faults::|network::/)' 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
python3 - "$log" <<'PY'
import re, sys, datetime, platform, os
text = open(sys.argv[1]).read()
rows = []
for m in re.finditer(r"^\s+(PASS|FAIL|SIGTERM|TIMEOUT)\s+\[\s*([\d.]+)s\]\s+\([^)]*\)\s+palisade-tests::it\s+(\S+)", text, re.M):
    verdict, secs, name = m.groups()
    rows.append((name, verdict.lower(), secs))
seen = {}
for r in rows:
    seen[r[0]] = r
rows = sorted(seen.values())
marker = "<!-- scripts/faults.sh writes everything below this line -->"
doc = open("docs/reliability.md").read()
head = doc.split(marker)[0].rstrip() + "\n\n" if marker in doc else "# Reliability\n\n"
out = [marker, "", "## Fault scenarios: last run", "",
       "Fault and adversarial scenarios on real `palisade` processes (4 validators on this machine),",
       "run by `scripts/faults.sh`. While a scenario runs, a checker compares block hashes across",
       "nodes, watches mempool and memory bounds and collects any double sign a node detects;",
       "afterwards every node's ledger is audited: each block's commit certificate verifies with",
       "more than two thirds of its height's voting power, all nodes hold the same blocks (and so",
       "state roots), no validator's precommits name two blocks at one height and round, no",
       "transaction is committed twice, and every transaction a node acknowledged (served a",
       "receipt for) is in the chain exactly once. After each fault heals every node must reach",
       "the heal height + 10 within 60 s, and no node may panic. Which node is hit, in what order",
       "and after how long comes from a seed each scenario logs; replay one with",
       "`PALISADE_FAULT_SEED=<seed> scripts/faults.sh`.",
       "",
       ("This run held the faults at full length (`PALISADE_FAULTS_FULL=1`: SIGSTOP 30 s, isolation 60 s, "
        "2|2 split 30 s); CI runs the same scenarios with short holds."
        if os.environ.get("PALISADE_FAULTS_FULL") == "1" else
        "This run used the short holds CI uses (set `PALISADE_FAULTS_FULL=1` for SIGSTOP 30 s, "
        "isolation 60 s, 2|2 split 30 s)."),
       "", f"Last run: {datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ}, {os.cpu_count()} cores, {platform.platform()}.", "",
       "| scenario | result | seconds |", "|---|---|---|"]
for name, verdict, secs in rows:
    out.append(f"| `{name}` | {verdict} | {secs} |")
seeds = sorted(set(re.findall(r"fault schedule seed for (\S+): (\d+)", text)))
if seeds:
    out += ["", "Seeds of this run: " + ", ".join(f"{name} `{seed}`" for name, seed in seeds) + "."]
skips = sorted(set(re.findall(r"SKIPPED: (.*)", text)))
if skips:
    out += ["", "Some scenarios skipped themselves (they pass without running): " + "; ".join(skips)]
open("docs/reliability.md", "w").write(head + "\n".join(out) + "\n")
print(f"wrote docs/reliability.md ({len(rows)} scenarios)")
PY
exit "$status"
