#!/usr/bin/env bash
# Long deterministic-simulation soak of the consensus engine: SOAK_SEEDS
# seeds (default 100,000) for each of 4, 7 and 10 validators, starting at
# SOAK_START (default 1,000,000, past the seeds CI runs). Any failing seed is
# printed with the command that replays it with a full trace.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SEEDS="${SOAK_SEEDS:-100000}"
export SOAK_START="${SOAK_START:-1000000}"
echo "consensus soak: $SOAK_SEEDS seeds x {4,7,10} validators from seed $SOAK_START"
exec cargo test --release --locked -p palisade-consensus --test it soak -- --ignored --nocapture
